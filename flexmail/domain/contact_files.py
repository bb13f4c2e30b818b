"""Reading a contact import: CSV with a header, or JSON Lines, into classified rows.

A row either carries existing proof of consent (signup time and IP, confirmation time and
IP, source, wording: imported as proof, subscribed) or is a real signup the marketer's own
form took (time, IP, user agent, form URL: pending, and a confirmation mail). A row with
neither is refused: a confirmation mail to an address that never asked is itself
unsolicited mail (standards D8, E3). Mailchimp's export columns (``OPTIN_TIME``,
``OPTIN_IP``, ``CONFIRM_TIME``, ``CONFIRM_IP``) are understood. Formula-looking cells are
refused as in the suppression import (standards J1). Problems never repeat the row's text.
"""

from __future__ import annotations

import csv
import datetime as dt
import ipaddress
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from flexmail.domain.suppression_files import FORMULA_PROBLEM, FORMULA_START, detect

FIELDS = ("email", "signup_at", "signup_ip", "confirmed_at", "confirm_ip", "source", "consent_text",
          "user_agent", "form_url")
ALIASES = {
    "email address": "email", "e-mail": "email", "email_address": "email",
    "optin_time": "signup_at", "optin_ip": "signup_ip", "confirm_time": "confirmed_at",
    "signup_time": "signup_at", "confirmed_time": "confirmed_at", "confirmation_ip": "confirm_ip",
    "consent": "consent_text", "wording": "consent_text",
}
NEITHER = ("Neither existing proof (signup and confirmation time and IP, source, consent wording) nor a "
           "signup your form took (signup time, IP, user agent, form URL).")


@dataclass(frozen=True)
class Row:
    number: int
    #: ``proof`` or ``signup`` (None when refused).
    kind: str | None
    values: dict
    problem: str | None = None


def _name(header: str) -> str:
    key = header.strip().strip('"').strip().lower()
    return ALIASES.get(key, key)


def read_records(lines: Iterable[str]) -> Iterator[tuple[int, dict | None, str | None]]:
    """``(line, {field: value}, problem)`` for every data line of a CSV (with a header) or
    JSON Lines file (detected by a first line starting with ``{``), read incrementally from
    ``lines`` (a text file opened with ``newline=""``, or a list of lines)."""
    lines = iter(lines)
    leading = []
    first = ""
    for raw in lines:
        leading.append(raw)
        if raw.strip():
            first = raw
            break
    if not first:
        return
    stream = itertools.chain(leading, lines)
    if first.lstrip().startswith("{"):
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                yield number, None, "The line is not valid JSON."
                continue
            if not isinstance(record, dict):
                yield number, None, "The line is not a JSON object."
                continue
            yield number, {_name(str(k)): v for k, v in record.items()}, None
        return
    layout = detect(first.rstrip("\r\n"))
    reader = csv.reader(stream, delimiter=layout.delimiter)
    header, previous_end = None, 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            start, previous_end = previous_end + 1, reader.line_num
            yield start, None, "The line is not valid CSV."
            continue
        start, previous_end = previous_end + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [_name(c) for c in cells]
            if "email" not in header:
                yield start, None, "The header has no email column."
                return
            continue
        yield start, {name: cells[i] for i, name in enumerate(header) if i < len(cells)}, None


def count_records(lines: Iterable[str]) -> int:
    """How many data records ``read_records`` yields for ``lines``, without classifying them."""
    return sum(1 for _ in read_records(lines))


def _time(value, name: str, now: dt.datetime) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} is not an ISO 8601 time.") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if parsed > now + dt.timedelta(minutes=5):
        raise ValueError(f"{name} is in the future.")
    return parsed.astimezone(dt.UTC)


def _ip(value, name: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise ValueError(f"{name} is not an IP address.") from None


def classify(number: int, record: dict, *, now: dt.datetime, max_signup_age: dt.timedelta) -> Row:
    """Decide what a record is; ``Row.problem`` says why it is refused."""
    values = {}
    for name in FIELDS:
        raw = record.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        if not isinstance(raw, str):
            return Row(number, None, {}, f"{name} must be a string.")
        if raw.startswith("'") and raw[1:2] and raw[1] in "=+-@\t\r":
            raw = raw[1:]  # escaped by a careful export; the value follows the quote
        elif raw.startswith(FORMULA_START):
            return Row(number, None, {}, FORMULA_PROBLEM)
        values[name] = raw.strip()
    if len(values.get("consent_text", "")) > 10_000:
        return Row(number, None, {}, "consent_text is longer than 10000 characters.")
    if "email" not in values:
        return Row(number, None, {}, "No address in the email column.")
    has = set(values)
    try:
        if "confirmed_at" in has:
            missing = [f for f in ("signup_at", "signup_ip", "confirm_ip", "source", "consent_text") if f not in has]
            if missing:
                return Row(number, None, {}, f"Incomplete proof: {', '.join(missing)} missing.")
            values["signup_at"] = _time(values["signup_at"], "signup_at", now)
            values["confirmed_at"] = _time(values["confirmed_at"], "confirmed_at", now)
            if values["confirmed_at"] < values["signup_at"]:
                return Row(number, None, {}, "confirmed_at is before signup_at.")
            values["signup_ip"] = _ip(values["signup_ip"], "signup_ip")
            values["confirm_ip"] = _ip(values["confirm_ip"], "confirm_ip")
            return Row(number, "proof", values)
        if {"signup_at", "signup_ip", "user_agent", "form_url"} <= has:
            values["signup_at"] = _time(values["signup_at"], "signup_at", now)
            if values["signup_at"] < now - max_signup_age:
                return Row(number, None, {}, "The signup is too old to be confirmed now.")
            values["signup_ip"] = _ip(values["signup_ip"], "signup_ip")
            parts = urlsplit(values["form_url"])
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return Row(number, None, {}, "form_url is not an http(s) URL.")
            return Row(number, "signup", values)
    except ValueError as exc:
        return Row(number, None, {}, str(exc))
    return Row(number, None, {}, NEITHER)
