"""Reading the parts of a report leniently (compat32: real bounces are rarely clean MIME)."""

from __future__ import annotations

import re
from email import message_from_bytes, message_from_string, policy
from email.message import Message

RETURNED_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers",
                  "message/partial")
MESSAGE_ID_RE = re.compile(r"^\s*Message-I[dD]\s*:\s*(<[^<>\s]+>|[^\s<>]+@[^\s<>]+)", re.MULTILINE | re.IGNORECASE)


def parse(raw: bytes) -> Message | None:
    try:
        if not raw.isascii():
            # SMTPUTF8 reports (RFC 6533) carry raw UTF-8; parsed from bytes, the email
            # package would lose it in nested message/* parts.
            try:
                return message_from_string(raw.decode("utf-8"), policy=policy.compat32)
            except UnicodeDecodeError:
                pass
        return message_from_bytes(raw, policy=policy.compat32)
    except Exception:  # the email package is lenient; what it still refuses is no report
        return None


def text_of(part: Message) -> str:
    """The decoded text of a non-multipart part ('' when there is none)."""
    payload = part.get_payload(decode=True)
    if payload is None:
        inner = part.get_payload()
        if isinstance(inner, list):
            return "\n\n".join(str(p) for p in inner)
        return inner if isinstance(inner, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def walk_outer(message: Message):
    """Every part of the report, without descending into a returned message."""
    stack = [message]
    while stack:
        part = stack.pop(0)
        yield part
        if part is not message and part.get_content_type() in RETURNED_TYPES:
            continue
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            stack[0:0] = [p for p in payload if isinstance(p, Message)]


def returned_headers(message: Message) -> Message | None:
    """The returned message (``message/rfc822``, ``message/global``) or its headers."""
    for part in walk_outer(message):
        ctype = part.get_content_type()
        if part is message:
            continue
        if ctype in ("message/rfc822", "message/global", "message/partial"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                return inner[0]
            if isinstance(inner, str):
                return message_from_string(inner, policy=policy.compat32)
        if ctype in ("text/rfc822-headers", "message/global-headers"):
            return message_from_string(text_of(part).lstrip(), policy=policy.compat32)
    return None


def normalize_message_id(value) -> str | None:
    if not value:
        return None
    text = "".join(str(value).split())
    if not text or "@" not in text:
        return None
    return text if text.startswith("<") else f"<{text.strip('<>')}>"


def original_message_id(message: Message) -> str | None:
    """The Message-ID of the returned message: its headers, else a ``Message-ID:`` line
    quoted in the text of a non-standard bounce (never the report's own)."""
    returned = returned_headers(message)
    if returned is not None and returned.get("Message-ID"):
        return normalize_message_id(returned.get("Message-ID"))
    for part in walk_outer(message):
        if part.is_multipart() or part is message and message.is_multipart():
            continue
        body = text_of(part) if part is not message else text_of(message)
        found = MESSAGE_ID_RE.search(body)
        if found:
            return normalize_message_id(found.group(1))
    return None


def header_blocks(part: Message) -> list[Message]:
    """The field blocks of a ``message/(global-)delivery-status`` or ``feedback-report`` part."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and all(isinstance(p, Message) for p in payload):
        blocks = []
        for block in payload:
            blocks.append(block)
            rest = block.get_payload()
            if isinstance(rest, str) and rest.strip():
                # message/global-delivery-status is parsed as one message: the first block its
                # headers and the per-recipient blocks its "body".
                blocks += _split_blocks(rest)
        return blocks
    return _split_blocks(text_of(part))


def unescape(text: str) -> str:
    """Raw UTF-8 that the email package kept as surrogate escapes, as text."""
    try:
        return text.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text


def _split_blocks(text: str) -> list[Message]:
    text = unescape(text).replace("\r\n", "\n")
    return [message_from_string(chunk.strip("\n") + "\n", policy=policy.compat32)
            for chunk in re.split(r"\n[ \t]*\n", text) if chunk.strip()]


#: Where a non-standard bounce starts quoting the returned message: nothing after it is
#: the reporting MTA's own words.
RETURNED_MARKERS = re.compile(
    r"^.*(?:below this line is a copy of the message|this is a copy of the message|original message follows|"
    r"included is a copy of the message|original message headers|below is a copy of the original message|"
    r"-+ ?original message ?-+|-+ ?returned message ?-+|unsent message below|"
    r"message headers follow|the original message (?:was|is) (?:attached|below)|"
    r"^received: ?from ).*$", re.IGNORECASE | re.MULTILINE)
#: Lines of context after an address that belong to its diagnostic.
CONTEXT_LINES = 8


def bounce_text(message: Message) -> str:
    """The text the reporting MTA wrote (its text parts before any returned message),
    cut where it starts quoting the returned message."""
    texts = []
    for part in walk_outer(message):
        if part.is_multipart() or part.get_content_type() not in ("text/plain", "text/html", "text/enriched"):
            continue
        if part.get_content_type() == "text/html" and texts:
            continue  # the plain alternative said it already
        text = text_of(part)
        if part.get_content_type() == "text/html":
            text = re.sub(r"<[^>]+>", " ", text)
        texts.append(text)
    if not texts and not message.is_multipart():
        texts.append(text_of(message))
    text = "\n".join(texts).replace("\r\n", "\n")
    cut = RETURNED_MARKERS.search(text)
    return text[:cut.start()] if cut else text


def snippet(text: str, address: str) -> str | None:
    """The words near ``address``: its paragraph's start and the lines after it, up to the
    next paragraph that names another address."""
    lower = text.lower()
    index = lower.find(address.lower())
    if index < 0:
        return None
    start = text.rfind("\n", 0, index) + 1
    lines = []
    for number, line in enumerate(text[start:].splitlines()[:CONTEXT_LINES]):
        if number and "@" in line and address.lower() not in line.lower() and not line.strip().startswith(
                ("Remote", "Diagnostic", "host", "Host", "said", "5", "4")):
            if re.search(r"^\s*<?[^\s@<>]+@[^\s@<>]+>?:?\s*$|^\s*<[^\s@<>]+@[^\s@<>]+>:", line):
                break  # the next recipient's paragraph
        lines.append(line)
    return " ".join(lines)
