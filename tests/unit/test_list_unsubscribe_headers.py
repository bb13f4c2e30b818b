"""The List-Unsubscribe headers in the bytes of a generated message, as RFC 2369/8058 and
mail clients read them (standards A1, B1-B5, K1)."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_bytes, policy

import pytest

from flexmail.mail.compose import POLICY, compose
from flexmail.mail.headers import (
    FoldedHeader,
    fold_uri_list,
    list_unsubscribe_headers,
    mailto_uri,
)
from flexmail.mail.transports import get_transport

NAME = b"List-Unsubscribe:"


def _message_bytes(headers: dict) -> bytes:
    mail = compose(sender_name="Acme News", sender_email="news@acme.example", to="Reader@example.com",
                   subject="Weekly News", text="Hello\n", html="<p>Hello</p>", message_id="<m1@flexmail.test>",
                   date=dt.datetime(2026, 11, 23, tzinfo=dt.UTC), extra_headers=headers)
    return mail.as_bytes(policy=POLICY)


def _header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0] + b"\r\n"


def _field(block: bytes, name: bytes) -> list[bytes]:
    """The physical lines of the one field ``name`` in a header block."""
    lines = block.split(b"\r\n")
    start = [i for i, line in enumerate(lines) if line.lower().startswith(name.lower())]
    assert len(start) == 1, f"{name!r} appears {len(start)} times"
    field = [lines[start[0]]]
    for line in lines[start[0] + 1:]:
        if not line.startswith((b" ", b"\t")):
            break
        field.append(line)
    return field


def _check(data: bytes, url: str, mailto_address: str | None) -> None:
    block = _header_block(data)
    assert b"=?" not in block  # no RFC 2047 encoded word anywhere in the header (K1/B2)
    assert all(len(line) <= 998 for line in block.split(b"\r\n"))
    lines = _field(block, NAME)
    # Folded only at the space after a comma, never inside a URI (B3).
    for before, after in zip(lines, lines[1:], strict=False):
        assert before.endswith(b",") and after.startswith(b" <")
    value = b"".join(lines)[len(NAME):].decode("ascii")
    uris = re.findall(r"<([^<>]*)>", value)
    assert re.fullmatch(r"\s*<[^<>\s]+>(\s*,\s*<[^<>\s]+>)*\s*", value), value  # B1: only <URI>s, comma-separated
    assert uris[0] == url and uris[0].startswith(("https://", "http://"))  # the web URI first
    if mailto_address:
        assert uris == [url, f"mailto:{mailto_address}?subject=unsubscribe"]
    assert _field(block, b"List-Unsubscribe-Post:") == [b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"]
    parsed = message_from_bytes(data, policy=policy.default)
    assert len(parsed.get_all("List-Unsubscribe")) == 1 and len(parsed.get_all("List-Unsubscribe-Post")) == 1
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [u.strip() for u in re.findall(r"<([^<>]*)>", str(parsed["List-Unsubscribe"]))] == uris
    legacy = message_from_bytes(data, policy=policy.compat32)
    assert re.findall(r"<([^<>]*)>", re.sub(r"\r?\n", "", legacy["List-Unsubscribe"])) == uris


TOKEN = "WzEyMzQ1Njc4OSw5ODc2NTQzMjFd.8i8x3Uh7Yq3ok6ZzLr1ZKxzmjZI"
MAILTO = "unsub-4ptc4vbunbcjytgnumnpmzayeiaxmprrrc7sm@flexmail.example"
#: Padding that makes the first physical line ``List-Unsubscribe: <URL>,`` exactly 998 octets.
LONGEST_PAD = 998 - len("List-Unsubscribe: <https://flexmail.example//unsubscribe/" + TOKEN + ">,")


def _url(pad: int) -> str:
    return "https://flexmail.example/" + "p" * pad + "/unsubscribe/" + TOKEN


@pytest.mark.parametrize("url", [
    _url(0), "https://a.example/u/x", _url(600), _url(LONGEST_PAD),
], ids=["typical", "short", "long", "exactly-998"])
def test_headers_in_message_bytes_parse_as_rfc_2369_and_8058_require(url):
    """The bytes hold one literal <https>, <mailto> field (no encoded words, folding only after the
    comma, lines <= 998) and one byte-exact List-Unsubscribe-Post."""
    data = _message_bytes(list_unsubscribe_headers(url, MAILTO))
    _check(data, url, MAILTO)


def test_the_longest_foldable_uri_is_accepted_and_one_more_octet_refused():
    """A URI whose line is exactly 998 octets is written as is; one octet more has no legal fold and raises."""
    data = _message_bytes(list_unsubscribe_headers(_url(LONGEST_PAD), MAILTO))
    assert max(len(line) for line in _field(_header_block(data), NAME)) == 998
    with pytest.raises(ValueError, match="998"):
        list_unsubscribe_headers(_url(LONGEST_PAD + 1), MAILTO)


def test_values_that_fit_stay_on_one_line_and_joined_lines_keep_78():
    """A field that fits in 78 columns is not folded; URIs are only joined on a line while it stays within 78."""
    short = _message_bytes(list_unsubscribe_headers("https://a.io/u", "u@a.io"))
    assert _field(_header_block(short), NAME) == [
        b"List-Unsubscribe: <https://a.io/u>, <mailto:u@a.io?subject=unsubscribe>"]
    folded = _message_bytes(list_unsubscribe_headers("https://a.example/u/" + "x" * 30,
                                                     "unsub-abcdefghijklmnop@a.example"))
    lines = _field(_header_block(folded), NAME)
    assert len(lines) == 2 and all(len(line) <= 78 for line in lines)


def test_https_only_header_without_mailto():
    """Without a mailto the field is the single https URI."""
    url = _url(0)
    data = _message_bytes(list_unsubscribe_headers(url))
    _check(data, url, None)
    assert b"mailto:" not in _header_block(data)


def test_headers_survive_a_real_smtp_transport_byte_exact(smtp_sink):
    """What the SMTP relay receives still carries the literal field (the transport does not re-encode it)."""
    url = _url(300)
    mail = compose(sender_name="Acme", sender_email="news@acme.example", to="reader@example.com", subject="Hi",
                   text="Hello\n", html=None, message_id="<m2@flexmail.test>", date=dt.datetime.now(dt.UTC),
                   extra_headers=list_unsubscribe_headers(url, MAILTO))
    get_transport(smtp_sink.url).send(mail)
    (envelope,) = smtp_sink.envelopes
    _check(envelope.original_content or envelope.content, url, MAILTO)


def test_a_uri_too_long_for_any_legal_line_is_refused():
    """A URI that cannot fit in 998 octets cannot be folded legally, so it is an error, not a broken header."""
    with pytest.raises(ValueError, match="998"):
        list_unsubscribe_headers(_url(2000), MAILTO)


@pytest.mark.parametrize("url", [
    "https://flexmail.example/unsubscribe/a b",
    "https://flexmail.example/unsubscribe/a\r\nBcc: x@example.com",
    "https://flexmail.example/unsubscribe/a>,<https://evil.example/",
    "https://flexmail.example/unsubscribe/a,b",
    "https://flexmail.example/unsubscribe/ü",
    "javascript:alert(1)",
    "",
], ids=["space", "crlf-injection", "angle-bracket", "comma", "non-ascii", "not-http", "empty"])
def test_uris_that_would_break_the_field_are_refused(url):
    """Whitespace, line breaks, brackets, commas, non-ASCII or a non-web first URI raise instead of
    producing a header a client would misread."""
    with pytest.raises(ValueError):
        list_unsubscribe_headers(url, MAILTO)


def test_mailto_uri_percent_encodes_per_rfc_6068():
    """Characters RFC 6068 reserves are percent-encoded in the address and the subject."""
    assert mailto_uri("unsub-abc@flexmail.example") == "mailto:unsub-abc@flexmail.example?subject=unsubscribe"
    assert mailto_uri("a/b?c@x.example", subject="stop & go") == "mailto:a%2Fb%3Fc@x.example?subject=stop%20%26%20go"


def test_folded_header_reads_back_unfolded():
    """As a string the header is its one-line value; only serialising folds it."""
    lines = fold_uri_list("List-Unsubscribe", ["https://a.example/" + "x" * 80, "mailto:u@a.example"])
    assert len(lines) == 2
    header = FoldedHeader("List-Unsubscribe", "<https://a.example/" + "x" * 80 + ">, <mailto:u@a.example>", lines)
    assert "\n" not in str(header)
    assert header.fold(policy=POLICY) == "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("ids,mailto_line_max", [((123456, None), 78), ((123456, 7890), 78),
                                                  ((2**40, 2**40), 998)])
def test_app_links_fit_in_a_mailto_local_part_and_header(app, ids, mailto_line_max):
    """The app's links stay short: a local part of at most 64 octets, a mailto line within 78 columns for
    realistic ids (998 at worst), and a URL line far below the 998 limit."""
    from flexmail.services.optout.unsubscribe import link_headers

    with app.app_context():
        links = link_headers(ids[0], campaign_id=ids[1])
    local = links.mailto.split("@")[0]
    assert len(local) <= 64 and re.fullmatch(r"unsub-[a-z2-7]+", local)
    data = _message_bytes(links.headers)
    _check(data, links.url, links.mailto)
    url_line, mailto_line = _field(_header_block(data), NAME)
    assert len(mailto_line) <= mailto_line_max and len(url_line) <= 120
