"""RFC 3464 delivery status notifications and their RFC 6533 SMTPUTF8 form
(``message/global-delivery-status``), including one-block DSNs (AOL and others put the
per-message and the first per-recipient fields together) and DSN parts inside a
``multipart/mixed`` (some MTAs do not say ``multipart/report``)."""

from __future__ import annotations

import re
from email.message import Message

from flexmail.domain.bounces import mta
from flexmail.domain.bounces.heuristics import written_recipients
from flexmail.domain.bounces.mime import bounce_text, header_blocks, original_message_id, snippet, walk_outer
from flexmail.domain.bounces.results import Report, Result, clean_diagnostic, decide
from flexmail.domain.bounces.vocabulary import BounceClass

#: Reporting MTAs whose refusals are a rule's action, not a mailbox lookup: Amazon SES
#: receiving answers with the bounce action of the domain owner's receipt rule, whose text
#: is a template the owner picked ("Mailbox does not exist", "Mailbox full"...). Sisimai
#: (Lhost::ReceivingSES) reads "Mailbox does not exist" there as ``filtered``.
RULE_ACTION_MTA = re.compile(r"\binbound-smtp\.[a-z0-9-]+\.amazonaws\.com\b", re.I)

DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")


def typed_address(value) -> str | None:
    """``rfc822; someone@example.com`` -> ``someone@example.com`` (also ``utf-8;`` of RFC 6533)."""
    if not value:
        return None
    value = str(value)
    try:  # compat32 keeps raw UTF-8 (RFC 6533 fields) as surrogate escapes
        value = value.encode("ascii", "surrogateescape").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    kind, sep, address = value.partition(";")
    if not sep:
        kind, address = "rfc822", kind
    address = " ".join(address.split()).strip().strip("<>").strip()
    if address.startswith("@") and ":" in address:
        address = address.rsplit(":", 1)[1].strip()  # RFC 5321 source route <@relay:user@domain>
    if kind.strip().lower() not in ("rfc822", "utf-8", "x-unknown", "unknown") or "@" not in address:
        return None
    if address.startswith("@"):
        return None  # no local part (Sendmail writes "@host" when it lost it): not a recipient
    return address


def dsn_parts(message: Message) -> list[Message]:
    return [p for p in walk_outer(message) if p.get_content_type() in DSN_TYPES]


def read(message: Message) -> Report | None:
    """Per-recipient results of a DSN, or None when the message has no DSN part (or no
    recipient in it)."""
    parts = dsn_parts(message)
    if not parts:
        return None
    message_id = original_message_id(message)
    human = bounce_text(message)
    results = []
    single = sum(len(_recipient_groups(header_blocks(p))) for p in parts) == 1
    for part in parts:
        blocks = header_blocks(part)
        rule_action = bool(blocks) and bool(RULE_ACTION_MTA.search(str(blocks[0].get("Reporting-MTA", ""))))
        per_message = {k.strip().title(): v for k, v in blocks[0].items()} if blocks else {}
        for block in _recipient_groups(blocks):
            final = typed_address(block.get("Final-Recipient"))
            original = typed_address(block.get("Original-Recipient"))
            address = original or final
            if address is None and single:
                address = final = _written_recipient(message, human)
            if address is None:
                continue
            action = str(block.get("Action", "") or "").strip().lower() or None
            diagnostic = clean_diagnostic(block.get("Diagnostic-Code"))
            context = _context(human, final or address) or (human if single else None)
            reason, klass, status = decide(status=str(block.get("Status", "") or ""), diagnostic=diagnostic,
                                           action=action, context=context, recipient=final or address,
                                           vouched=_vouched(message, human, final or address, diagnostic,
                                                            context, {**per_message, **block}))
            if rule_action and klass == BounceClass.HARD:
                reason, klass = "filtered", BounceClass.SOFT
            results.append(Result(address, reason, klass, status, diagnostic, message_id, action, "dsn"))
    if not results:
        return None
    return Report("dsn", tuple(_dedupe(results)), message_id)


def _vouched(message: Message, human: str, address: str, diagnostic: str | None, context: str | None,
             fields: dict) -> bool:
    """The report's format says the refusal is the MTA's own verdict on the mailbox:
    PowerMTA's ``X-PowerMTA-BounceCategory: bad-mailbox`` (its classification of the
    remote reply, Sisimai's Lhost::PowerMTA), or ``mta.vouches``."""
    if str(fields.get("X-Powermta-Bouncecategory", "") or "").strip().lower() == "bad-mailbox":
        return True
    words = " ".join(w for w in (diagnostic, context) if w)
    return mta.vouches(message, human, address, words, mta.hosts(human, fields)) is not None


def _written_recipient(message: Message, human: str) -> str | None:
    """The one failed address the human-readable part names, for a DSN whose only
    recipient field is unusable (no local part)."""
    found = written_recipients(message, human)
    return found[0] if len(found) == 1 else None


def _context(human: str, address: str) -> str | None:
    return snippet(human, address) if human else None


def _recipient_groups(blocks: list[Message]) -> list[dict]:
    """Per-recipient field groups. Usually one block each; some MTAs (AOL) write the
    per-message fields and several recipients in one block, so a new group starts at
    each repeated ``Final-Recipient``."""
    groups: list[dict] = []
    for block in blocks:
        current: dict = {}
        for name, value in block.items():
            key = name.strip().title()
            if key in ("Final-Recipient", "Original-Recipient") and key in current:
                groups.append(current)
                current = {}
            current.setdefault(key, value)
        groups.append(current)
    return [g for g in groups if "Final-Recipient" in g or "Original-Recipient" in g]


def _dedupe(results: list[Result]) -> list[Result]:
    seen: dict[str, Result] = {}
    for result in results:
        key = (result.recipient or "").lower()
        if key not in seen:
            seen[key] = result
    return list(seen.values())
