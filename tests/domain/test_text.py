"""Documents to snippets, questions to search terms, and the extractive composer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.text import (
    Passage,
    extractive_answer,
    html_document,
    markdown_document,
    search_terms,
)
from keyplane.services.end_users import merge_patch


def test_html_title_and_text() -> None:
    document = html_document(
        "<html><head><title> Pricing </title><script>alert(1)</script></head><body>"
        "<h1>Plans</h1><p>Standard costs 10&nbsp;€.</p><ul><li>One</li><li>Two</li></ul>"
        "</body></html>",
        "fallback",
    )
    assert document.title == "Pricing"
    assert "alert" not in document.content
    assert "Standard costs 10\xa0€." in document.content
    assert "One\n" in document.content
    assert html_document("<h1>Only a heading</h1><p>x</p>", "f").title == "Only a heading"
    assert html_document("<p>no title</p>", "page").title == "page"


def test_markdown_title_is_the_first_heading() -> None:
    assert markdown_document("intro\n\n## Setup\n\ntext", "f").title == "Setup"
    assert markdown_document("no heading", "readme").title == "readme"


def test_search_terms_drop_stopwords_and_repeats() -> None:
    assert search_terms("How do I reset my password? Password RESET!") == ["reset", "password"]
    assert search_terms("how do I?") == []


def test_the_answer_quotes_relevant_sentences_with_citations() -> None:
    passages = [
        Passage(1, "Passwords", "Click Forgot password. We are closed on Sundays."),
        Passage(2, "Email", "The reset email arrives within minutes."),
    ]
    answer, cited = extractive_answer("How do I reset my password?", passages)
    assert "Click Forgot password. [1]" in answer
    assert "The reset email arrives within minutes. [2]" in answer
    assert "Sundays" not in answer
    assert cited == [1, 2]
    assert answer.endswith("Sources: [1] Passwords; [2] Email")


def test_merge_patch_merges_and_removes() -> None:
    stored = {"tier": "pro", "address": {"city": "Oslo", "zip": "0150"}, "ltv": 5}
    patch = {"tier": None, "address": {"zip": "0151"}, "status": "active"}
    assert merge_patch(stored, patch) == {
        "address": {"city": "Oslo", "zip": "0151"},
        "ltv": 5,
        "status": "active",
    }
    assert stored["tier"] == "pro"  # the stored value is not mutated


@given(st.text(max_size=300))
def test_terms_are_plain_words(question: str) -> None:
    for term in search_terms(question):
        assert term
        assert all(c.isalnum() for c in term)


@given(st.text(max_size=500))
def test_any_html_parses(html: str) -> None:
    document = html_document(html, "t")
    assert "\x00" not in document.content
    assert document.title
