"""Keys in client-side code (issue 11, the guide's "Never Use in Client-Side Code"): a request
that carries a key and comes from a web page (an Origin header, or the Sec-Fetch-* headers
every current browser sends) is refused, unless the key is a test key its owner marked for
browser use. Each refusal raises an alert on the key, "this key was used from a web page at
<origin>": whoever can open that page can read the key."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keyplane.adapters.memory.lru import LRUCache
from keyplane.domain.errors import SecretKeyInBrowser
from keyplane.domain.keys import VerifiedKey
from keyplane.services.alerts import AlertSpec, raise_alert

log = structlog.get_logger(__name__)
ALERT_KIND = "browser_use"


def browser_origin(headers: Mapping[str, str]) -> str | None:
    """Where a browser request came from, or None for a request that shows no sign of a
    browser. Header names are lower case (Starlette's Headers)."""
    origin = headers.get("origin")
    if origin:
        return origin[:200]
    # Browsers send Sec-Fetch-Site and Sec-Fetch-Dest with Sec-Fetch-Mode. Sec-Fetch-Mode alone
    # is no browser: Node.js's built-in fetch (undici, so the JavaScript SDK) sends
    # "sec-fetch-mode: cors" on every request, from servers.
    if headers.get("sec-fetch-site") or headers.get("sec-fetch-dest"):
        referer = headers.get("referer") or ""
        return referer[:200] or "an unknown page"
    return None


class BrowserGuard:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        # (key, origin, hour) already alerted by this process: repeats cost no database write.
        self._alerted: LRUCache[tuple[str, str, str], bool] = LRUCache(10_000)

    async def check(
        self,
        key: VerifiedKey,
        origin: str | None,
        project_id: int | None,
        ip: str | None,
        user_agent: str | None,
    ) -> None:
        if origin is None or key.allow_browser:
            return
        await self._alert(key, origin, project_id, ip, user_agent)
        kind = f"sk_{key.mode}_"
        raise SecretKeyInBrowser(
            f"This request came from a web page ({origin}) and carries a secret {kind} key. "
            "Secret keys belong on servers: anyone who opens the page can read the key. Call "
            "keyplane from your backend (browser → your backend → keyplane) and rotate this "
            "key if it is in the page's code. For local experiments, a test key can be marked "
            "for browser use (allow_browser).",
            origin=origin,
        )

    async def _alert(
        self,
        key: VerifiedKey,
        origin: str,
        project_id: int | None,
        ip: str | None,
        user_agent: str | None,
    ) -> None:
        hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")
        seen = (key.id, origin, hour)
        if self._alerted.get(seen):
            return
        spec = AlertSpec(
            kind=ALERT_KIND,
            severity="high",
            message=f"This key was used from a web page at {origin}; the request was refused. "
            "If the page's code holds the key, anyone can read it: rotate it and move the "
            "calls to a backend.",
            window=f"{hour}|{origin}",
            org_id=key.org_id,
            project_id=key.project_id or project_id,
            key_id=key.id,
            details={"origin": origin},
            ip=ip,
            user_agent=user_agent,
        )
        try:
            async with self._sessions() as db:
                await raise_alert(db, spec)
                await db.commit()
        except Exception:  # the refusal stands even when the alert cannot be stored now
            log.exception("browser_use_alert_failed", key_id=key.id)
            return
        self._alerted.put(seen, True)
