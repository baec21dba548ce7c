"""Pure text handling for knowledge: turning documents into snippets (HTML to text, titles)
and questions into search terms, and composing an extractive answer from what was found."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

# Words too common to say what a question or conversation is about.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just let me more most my myself no nor not now of off on once only or other our
    ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    hi hello hey please thanks thank get got can't cannot dont don't im i'm want need know tell
    anyone help use using""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}|\n(?=\s*[-*#\d])")
MAX_TERMS = 16


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def search_terms(text: str) -> list[str]:
    """The distinct meaningful words of a question, in order, at most MAX_TERMS."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def stem(word: str) -> str:
    """A crude stem, enough to match "passwords" with "password" when choosing sentences."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


class _HtmlText(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
         "footer", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr", "title"}
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self.heading = ""
        self._stack: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        if tag in self._BLOCK:
            self.parts.append("\n")
        self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        if tag in self._BLOCK:
            self.parts.append("\n")
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        current = self._stack[-1] if self._stack else ""
        if current == "title" and not self.title:
            self.title = data.strip()
            return
        if current == "h1" and not self.heading:
            self.heading = data.strip()
        if not self._skipping:
            self.parts.append(data)


@dataclass(frozen=True)
class Document:
    title: str
    content: str


def _tidy(text: str) -> str:
    text = text.replace("\x00", "").replace("\r\n", "\n")
    lines = [re.sub(r"[ \t\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_document(html: str, fallback_title: str) -> Document:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    title = parser.title or parser.heading or fallback_title
    return Document(
        title=_tidy(title)[:300] or fallback_title, content=_tidy("".join(parser.parts))
    )


def markdown_document(markdown: str, fallback_title: str) -> Document:
    content = _tidy(markdown)
    for line in content.split("\n"):
        match = re.match(r"#{1,6}\s+(.+)", line)
        if match:
            return Document(title=match.group(1).strip("# ")[:300], content=content)
    return Document(title=fallback_title[:300], content=content)


def text_document(text: str, fallback_title: str) -> Document:
    return Document(title=fallback_title[:300], content=_tidy(text))


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and len(s.strip()) > 1]


@dataclass(frozen=True)
class Passage:
    """Text of one retrieved snippet, numbered as it is cited in the answer."""

    number: int
    title: str
    content: str


def extractive_answer(
    question: str, passages: list[Passage], max_sentences: int = 4
) -> tuple[str, list[int]]:
    """The sentences of the retrieved passages that share the most words with the question,
    in their original order, each followed by its source number ("… [1]"); and the numbers
    of the passages cited."""
    wanted = {stem(t) for t in search_terms(question)}
    scored: list[tuple[float, int, int, str]] = []
    for passage in passages:
        for position, sentence in enumerate(sentences(passage.content)):
            stems = {stem(w) for w in words(sentence)}
            overlap = len(wanted & stems)
            if overlap:
                # Earlier passages rank higher; long sentences do not win by length alone.
                score = overlap - 0.1 * passage.number - 0.001 * position
                scored.append((score, passage.number, position, sentence))
    if not scored:  # matched on the title only: lead with the passage's opening
        first = passages[0]
        scored = [(0.0, first.number, i, s) for i, s in enumerate(sentences(first.content)[:2])]
    best = sorted(sorted(scored, reverse=True)[:max_sentences], key=lambda s: (s[1], s[2]))
    lines = [f"{sentence.rstrip()} [{number}]" for _score, number, _pos, sentence in best]
    cited = sorted({number for _s, number, _p, _t in best})
    sources = "; ".join(f"[{p.number}] {p.title}" for p in passages if p.number in cited)
    answer = "Here is what our knowledge base says:\n\n" + "\n".join(lines)
    return f"{answer}\n\nSources: {sources}", cited


NO_ANSWER = (
    "I'm sorry, I could not find anything about that in our knowledge base. Could you "
    "rephrase the question, or ask a member of our team?"
)
