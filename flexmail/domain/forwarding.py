"""What a forward may contain: the marketer's sanitised HTML, the forwarder's plain words.

A forward-to-a-friend form is a classic spam relay (standards H6): whatever a stranger
types goes out under the marketer's name. So the forwarder gets no HTML and no links at
all: a name of at most 64 characters and a note of at most 512 (H5), both plain text,
links and addresses replaced by a marker, no line breaks in the name (it is never put in a
header, and refusing CR/LF keeps it that way should anyone try). The campaign's own HTML
is the marketer's and is shown to friends, so it is sanitised too: no script, style
element, event handler, form, frame or non-http(s) link.
"""

from __future__ import annotations

import html as html_module
import re
import unicodedata
from urllib.parse import quote

import idna
import nh3

MAX_FRIENDS = 5
MAX_NAME = 64
MAX_NOTE = 512
LINK_REMOVED = "[link removed]"

#: How a list's subscribers forward (standards H2): ``server``, we send the friends a mail;
#: ``client``, the page opens the forwarder's own mail program and we never see a friend.
SERVER, CLIENT = "server", "client"
FORWARD_MODES = (SERVER, CLIENT)
#: Campaign text put into a prepared mail's body: mail programs and operating systems cut
#: long mailto: links (about 2,000 characters on Windows), so a campaign without a web page
#: is given in its first lines only.
MAILTO_MAX_TEXT = 1200


def _mailto_value(value: str) -> str:
    """RFC 6068: line breaks as CRLF, then UTF-8 percent-encoded, everything but the
    unreserved characters (so ``% / ? # [ ] & ; =`` and space are encoded, space as %20)."""
    crlf = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return quote(crlf, safe="", encoding="utf-8")


def mailto_link(*, subject: str, body: str) -> str:
    """A ``mailto:`` URI with no recipient (the forwarder chooses them in their mail program),
    and the given subject and body (RFC 6068 section 2, 5)."""
    return f"mailto:?subject={_mailto_value(subject)}&body={_mailto_value(body)}"


def shorten(text: str, limit: int = MAILTO_MAX_TEXT) -> str:
    """``text`` cut at a word boundary before ``limit`` characters, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(None, 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip() + " …"

#: A scheme URL (any scheme: http, ftp, javascript, data...), a "www." host, an address,
#: or a bare host name with a top-level label of letters or punycode ("cheap-pills.example/x",
#: "evil.рф"). It is matched on the UTS-46 mapping of the text (see ``_uts46_view``).
_LINK = re.compile(
    r"(?:\b[a-z][a-z0-9+.\-]*:(?://)?\S+)"
    r"|(?:\bwww\.\S+)"
    r"|(?:\S+@\S+)"
    r"|(?:\b[\w\-]+(?:\.[\w\-]+)*\.(?P<tld>xn--[a-z0-9\-]{1,59}|[^\W\d_]{2,63})\b(?P<path>[/?#]\S*)?)",
    re.IGNORECASE,
)
#: The ideographic full stop ends sentences in Chinese and Japanese: between two words of
#: those scripts it is prose, not a domain dot (unless a path follows).
_IDEOGRAPHIC_STOP = "\u3002"
_TAG = re.compile(r"<[^>]{0,200}>")
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t]{2,}")


class TextRefused(ValueError):
    """The text cannot be used; ``reason`` says why without repeating it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _drop_format_characters(text: str, *, keep_newlines: bool) -> str:
    """Remove control and format characters (bidi overrides, zero-width joiners...)."""
    out = []
    for char in text:
        if char == "\n" and keep_newlines:
            out.append(char)
        elif char == "\t":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            continue
        else:
            out.append(char)
    return "".join(out)


def _uts46_view(text: str) -> tuple[str, list[int]]:
    """``text`` as a resolver would read a host name in it (UTS-46 mapping: fullwidth and
    ideographic dots become ".", fullwidth letters ASCII, case folded, ignorables dropped),
    and for each character of the mapping the index of the character it came from."""
    mapped, source = [], []
    for index, char in enumerate(text):
        if char.isascii():
            out = char.lower()
        else:
            try:
                out = idna.uts46_remap(char, std3_rules=False, transitional=False)
            except idna.IDNAError:  # disallowed in host names: it cannot be part of one
                out = char
        mapped.append(out)
        source.extend([index] * len(out))
    return "".join(mapped), source


def _is_link(match: re.Match, text: str, source: list[int]) -> bool:
    tld = match.group("tld")
    if tld and not tld.isascii() and not match.group("path"):
        return text[source[match.start("tld") - 1]] != _IDEOGRAPHIC_STOP
    return True


def strip_links(text: str) -> str:
    """Replace every URL, host name and address in ``text`` by ``[link removed]``.

    Links are judged on the UTS-46 mapping of the text, the way a mail client or browser
    resolves them, so "evil。com", "ｅｖｉｌ．ｃｏｍ" and "evil.рф/x" are links too; what
    is replaced is the original text of each.
    """
    text = _TAG.sub("", text)
    mapped, source = _uts46_view(text)
    spans = [(source[m.start()], source[m.end() - 1] + 1) for m in _LINK.finditer(mapped)
             if m.end() > m.start() and _is_link(m, text, source)]
    for start, end in reversed(spans):
        text = text[:start] + LINK_REMOVED + text[end:]
    return text


def clean_name(raw: str | None) -> str | None:
    """The forwarder's name as typed, or ``None``; refuses line breaks and over-long names."""
    if raw is None:
        return None
    if any(c in raw for c in "\r\n\0\x0b\x0c\x85\u2028\u2029"):
        raise TextRefused("The name must be on one line.")
    text = unicodedata.normalize("NFC", raw).strip()
    if len(text) > MAX_NAME:
        raise TextRefused(f"At most {MAX_NAME} characters.")
    text = _SPACES.sub(" ", strip_links(_drop_format_characters(text, keep_newlines=False))).strip()
    return text or None


def clean_note(raw: str | None) -> str | None:
    """The note as plain text without links, or ``None``; refuses more than 512 characters."""
    if raw is None:
        return None
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if len(text) > MAX_NOTE:
        raise TextRefused(f"At most {MAX_NOTE} characters.")
    text = strip_links(_drop_format_characters(text, keep_newlines=True))
    text = _BLANK_LINES.sub("\n\n", "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n")))
    return text.strip() or None


#: Inline styles are how mail HTML is written, but nothing that can move content over
#: ours (position, z-index) or load anything (url() is not a property value we allow).
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "line-height", "letter-spacing", "text-align", "text-decoration", "text-transform",
    "vertical-align", "white-space", "margin", "margin-top", "margin-right", "margin-bottom",
    "margin-left", "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-style", "border-width", "border-radius", "border-collapse", "width", "max-width",
    "min-width", "height", "max-height", "min-height", "display",
}
_TAGS = (nh3.ALLOWED_TAGS - {"area", "map"}) | {"font", "tfoot"}
_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "title", "lang", "dir", "align"},
    "font": {"color", "face", "size"},
    "td": set(nh3.ALLOWED_ATTRIBUTES["td"]) | {"width", "valign", "bgcolor"},
    "table": set(nh3.ALLOWED_ATTRIBUTES["table"]) | {"width", "cellpadding", "cellspacing", "border", "bgcolor"},
}


def sanitize_html(html: str) -> str:
    """The marketer's HTML with only safe tags, attributes, styles and http(s)/mailto links."""
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     filter_style_properties=_STYLE_PROPERTIES, strip_comments=True,
                     link_rel="noopener noreferrer")


def html_to_text(html: str) -> str:
    """A plain-text reading of (sanitised) HTML for the text part of a mail."""
    text = nh3.clean(re.sub(r"(?i)<br\s*/?>|</(?:p|div|h[1-6]|li|tr|table|blockquote)>", "\n", html),
                     tags=set(), clean_content_tags={"script", "style"})
    lines = (_SPACES.sub(" ", line).strip() for line in html_module.unescape(text).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
