"""An optional OpenAI-compatible chat provider (`POST {base}/chat/completions`) that writes
`generate`'s answer from the retrieved snippets. Configured with KEYPLANE_LLM_BASE_URL,
KEYPLANE_LLM_API_KEY and KEYPLANE_LLM_MODEL; never required."""

from __future__ import annotations

from typing import Any

import httpx

from keyplane.domain.text import Passage
from keyplane.settings import Settings

SYSTEM = (
    "You are a support assistant. Answer the user's last question using only the numbered "
    "knowledge snippets below, and cite them as [n]. If they do not contain the answer, say "
    "so politely."
)


class ProviderFailed(Exception):
    """The provider could not be reached or answered something unusable."""


def _context(passages: list[Passage]) -> str:
    return "\n\n".join(f"[{p.number}] {p.title}\n{p.content[:4000]}" for p in passages)


async def answer(
    settings: Settings, history: list[tuple[str, str]], passages: list[Passage]
) -> str:
    """The provider's answer to the conversation `history` (role, content) given `passages`."""
    assert settings.llm_base_url is not None
    messages: list[dict[str, str]] = [
        {"role": "system", "content": f"{SYSTEM}\n\n{_context(passages)}"}
    ]
    messages += [
        {"role": "user" if role == "user" else "assistant", "content": content}
        for role, content in history[-20:]
    ]
    headers = {}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    url = settings.llm_base_url.rstrip("/") + "/chat/completions"
    try:
        async with httpx.AsyncClient(timeout=settings.llm_timeout_seconds, trust_env=False) as c:
            response = await c.post(
                url, headers=headers, json={"model": settings.llm_model, "messages": messages}
            )
        response.raise_for_status()
        body: Any = response.json()
        content = body["choices"][0]["message"]["content"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
        # Never the error's text: it may quote the request, and so the API key.
        if isinstance(error, httpx.HTTPStatusError):
            raise ProviderFailed(f"HTTP {error.response.status_code}") from None
        raise ProviderFailed(type(error).__name__) from None
    if not isinstance(content, str) or not content.strip():
        raise ProviderFailed("empty answer")
    return content.strip()
