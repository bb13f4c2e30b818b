"""Prepared forwards for the person's own mail program: RFC 6068 mailto: links and their length."""

from __future__ import annotations

from urllib.parse import unquote

from flexmail.domain.forwarding import MAILTO_MAX_TEXT, mailto_link, shorten


def test_mailto_has_no_recipient_and_encodes_everything_but_unreserved_characters():
    """No "to" part; RFC 6068 reserved characters, space (%20, never +), non-ASCII (UTF-8) and line breaks
    (CRLF, whatever the input used) are percent-encoded; the decoding gives the texts back."""
    link = mailto_link(subject="A & B = C? #1; 50% [x] / é", body="line one\nline two\rthree\r\nfour")
    assert link.startswith("mailto:?subject=")
    subject, body = link.removeprefix("mailto:?subject=").split("&body=")
    assert subject == "A%20%26%20B%20%3D%20C%3F%20%231%3B%2050%25%20%5Bx%5D%20%2F%20%C3%A9"
    assert body == "line%20one%0D%0Aline%20two%0D%0Athree%0D%0Afour"
    assert unquote(body) == "line one\r\nline two\r\nthree\r\nfour"


def test_long_text_is_cut_at_a_word():
    """Text over the limit is cut at a word boundary with an ellipsis; short text is kept whole."""
    assert shorten("short text") == "short text"
    cut = shorten("word " * 1000)
    assert len(cut) <= MAILTO_MAX_TEXT + 2 and cut.endswith("word …")
