"""Bulk proof export (CSV or JSON Lines) in constant memory, and its offline verification.

An export is the account's sealed events in tree order (``seq`` = leaf index + 1), each
with its content, personal values in clear (where not erased), salt and hashes, followed
by one signed manifest on the last line: filters, count, first/last seq, the SHA-256 of
every byte before the manifest line, and the signed tree head the export was cut at. A
whole-tree export recomputes that head's root from its rows; removing, reordering or
editing a row, or cutting the tail, makes verification fail and name the row.

On PostgreSQL the rows are formatted, formula-escaped and quoted by the database itself
(``COPY (SELECT ...) TO STDOUT`` through psycopg), and the stream is hashed as it passes;
SQLite takes a Python path that writes the same columns.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import String, Text, cast, func, select

from flexmail.clock import iso, now
from flexmail.domain import csvsafe, ledger
from flexmail.domain.addresses import match_key
from flexmail.extensions import db
from flexmail.models import ConsentEvent, Subscription
from flexmail.services.evidence import audit, sealing, signing
from flexmail.services.evidence.ledger import head
from flexmail.services.marketer.accounts import Principal
from flexmail.services.platform.context import hash_key
from flexmail.services.platform.errors import ValidationFailed

FORMAT = "flexmail-proof-export/2"
COLUMNS = ("seq", "event_id", "at", "type", "account_id", "subscription_id", "list_id", "source", "email",
           "ip", "user_agent", "details", "details_hash", "commitments", "salt", "content_hash", "prev_hash",
           "entry_hash", "redacted", "tombstone")
_JSON_COLUMNS = {"details", "commitments", "redacted"}
_INT_COLUMNS = {"seq", "event_id", "account_id", "subscription_id", "list_id"}
BATCH = 2000
CHUNK = 256 * 1024
CSV_HEADER = (",".join(f'"{c}"' for c in COLUMNS) + "\n").encode()


@dataclass(frozen=True)
class ExportRequest:
    account_id: int
    list_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    fmt: str = "jsonl"

    @property
    def contiguous(self) -> bool:
        return self.list_id is None and self.since is None and self.until is None


def start_export(request: ExportRequest, *, principal: Principal | None) -> Iterator[bytes]:
    """Check the request, audit it, seal what was written so far, and return the byte stream."""
    if request.fmt not in ("csv", "jsonl"):
        raise ValidationFailed("Invalid input.", fields={"format": ["csv or jsonl"]})
    if request.since and request.until and request.since > request.until:
        raise ValidationFailed("Invalid input.", fields={"since": ["since is after until"]})
    if principal is not None:
        audit.record(principal, "proof.export", {
            "list_id": request.list_id, "since": iso(request.since), "until": iso(request.until),
            "format": request.fmt})
    sealing.seal(request.account_id)
    signed_head = head(request.account_id)
    span = _span(request, signed_head["tree_size"])
    db.session.commit()  # end the request's transaction: the stream outlives it
    stream = _stream(request, signed_head, span)
    # Start the query now, so an error is an error answer, not a response cut short.
    try:
        first = next(stream)
    except Exception as exc:
        # SQLSTATE class 22 (data exception): a filter value PostgreSQL cannot take.
        if str(getattr(exc, "sqlstate", "") or "").startswith("22"):
            raise ValidationFailed("Invalid input.", fields={"since": ["out of range"]}) from None
        raise
    return itertools.chain([first], stream)


def _filters(request: ExportRequest, tree_size: int) -> list:
    where = [ConsentEvent.account_id == request.account_id, ConsentEvent.seq >= 1, ConsentEvent.seq <= tree_size]
    if request.list_id is not None:
        where.append(ConsentEvent.list_id == request.list_id)
    if request.since is not None:
        where.append(ConsentEvent.at >= request.since)
    if request.until is not None:
        where.append(ConsentEvent.at < request.until)
    return where


def _span(request: ExportRequest, tree_size: int) -> tuple[int, int | None, int | None]:
    """Count, first and last seq of the rows (fixed: a sealed place never changes)."""
    if request.contiguous:
        return tree_size, (1 if tree_size else None), (tree_size or None)
    count, first, last = db.session.execute(
        select(func.count(), func.min(ConsentEvent.seq), func.max(ConsentEvent.seq))
        .where(*_filters(request, tree_size))).one()
    return count, first, last


def _manifest_line(request: ExportRequest, span: tuple, digest: str, signed_head: dict) -> bytes:
    count, first, last = span
    manifest = signing.sign({
        "format": FORMAT, "account_id": request.account_id, "contiguous": request.contiguous,
        "filters": {"list_id": request.list_id, "since": iso(request.since), "until": iso(request.until)},
        "count": count, "first_seq": first, "last_seq": last, "data_sha256": digest,
        "head": signed_head, "generated_at": iso(now()),
    })
    if request.fmt == "csv":
        out = io.StringIO()
        csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(
            ["manifest", json.dumps(manifest, sort_keys=True)] + [""] * (len(COLUMNS) - 2))
        return out.getvalue().encode()
    return (json.dumps({"manifest": manifest}, sort_keys=True) + "\n").encode()


def _stream(request: ExportRequest, signed_head: dict, span: tuple) -> Iterator[bytes]:
    digest = hashlib.sha256()
    source = _pg_chunks if db.engine.dialect.name == "postgresql" else _python_chunks
    for chunk in source(request, signed_head["tree_size"]):
        digest.update(chunk)
        yield chunk
    yield _manifest_line(request, span, digest.hexdigest(), signed_head)


# --- PostgreSQL: rows formatted by COPY --------------------------------------------------

def _sql_escape(expr: str) -> str:
    """csvsafe.escape in SQL: a leading ' for a cell that would start a formula (or starts with ')."""
    return (f"CASE WHEN left({expr}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r', E'\\n', '''') "
            f"THEN '''' || {expr} ELSE {expr} END")


#: clock.iso in SQL: UTC, microseconds only when not zero, then Z (one to_char per row).
_SQL_AT = ("replace(to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || 'Z'")


def _json_value(expr: str, kind: str) -> str:
    """SQL text of one JSON value (``null`` for NULL): numbers as they are, text through to_json."""
    if kind == "int":
        return f"coalesce(({expr})::text, 'null')"
    if kind == "json":
        return f"coalesce(({expr})::text, 'null')"
    return f"coalesce(to_json({expr})::text, 'null')"


def _pg_sql(request: ExportRequest) -> str:
    where = "e.account_id = %(account)s AND e.seq BETWEEN 1 AND %(size)s"
    if request.list_id is not None:
        where += " AND e.list_id = %(list_id)s"
    if request.since is not None:
        where += " AND e.at >= %(since)s"
    if request.until is not None:
        where += " AND e.at < %(until)s"
    source = f"FROM consent_events e LEFT JOIN subscriptions s ON s.id = e.subscription_id WHERE {where} ORDER BY e.seq"
    if request.fmt == "csv":
        cells = ["e.seq", "e.id", _SQL_AT, "e.type", "e.account_id", "e.subscription_id", "e.list_id",
                 _sql_escape("e.source"), _sql_escape("s.email"), _sql_escape("e.ip"), _sql_escape("e.user_agent"),
                 _sql_escape("coalesce(e.details::text, 'null')"), "e.details_hash",
                 "coalesce(e.commitments::text, 'null')", "e.salt", "e.content_hash", "e.prev_hash", "e.entry_hash",
                 "coalesce(e.redacted::text, '[]')", "CASE WHEN e.tombstoned_at IS NULL THEN 'false' ELSE 'true' END"]
        return f"COPY (SELECT {', '.join(cells)} {source}) TO STDOUT (FORMAT csv, FORCE_QUOTE *)"
    pairs = [("seq", "e.seq", "int"), ("event_id", "e.id", "int"), ("at", _SQL_AT, "text"),
             ("type", "e.type", "text"), ("account_id", "e.account_id", "int"),
             ("subscription_id", "e.subscription_id", "int"), ("list_id", "e.list_id", "int"),
             ("source", "e.source", "text"), ("email", "s.email", "text"), ("ip", "e.ip", "text"),
             ("user_agent", "e.user_agent", "text"), ("details", "e.details", "json"),
             ("details_hash", "e.details_hash", "text"), ("commitments", "e.commitments", "json"),
             ("salt", "e.salt", "text"), ("content_hash", "e.content_hash", "text"),
             ("prev_hash", "e.prev_hash", "text"), ("entry_hash", "e.entry_hash", "text"),
             ("redacted", "coalesce(e.redacted::text, '[]')", "json"),
             ("tombstone", "CASE WHEN e.tombstoned_at IS NULL THEN 'false' ELSE 'true' END", "json")]
    parts = [f"'{'{' if i == 0 else ','}\"{key}\":' || {_json_value(expr, kind)}"
             for i, (key, expr, kind) in enumerate(pairs)]
    line = " || ".join(parts) + " || '}'"
    # One JSON text per row, concatenated (json_build_object costs more). CSV mode with a quote
    # and a delimiter that JSON text never holds (it escapes control characters) writes it
    # verbatim, where text mode would double every backslash.
    return (f"COPY (SELECT {line} {source}) TO STDOUT "
            "(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')")


def _pg_chunks(request: ExportRequest, tree_size: int) -> Iterator[bytes]:
    params = {"account": request.account_id, "size": tree_size, "list_id": request.list_id,
              "since": request.since, "until": request.until}
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        buffer = bytearray(CSV_HEADER if request.fmt == "csv" else b"")
        with cursor.copy(_pg_sql(request), params) as copy:
            for block in copy:
                buffer += block
                if len(buffer) >= CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
        raw.rollback()
        if buffer:
            yield bytes(buffer)
    finally:
        raw.close()


# --- SQLite (and any other backend): the same columns from Python ------------------------

def _query(request: ExportRequest, tree_size: int):
    # JSON columns are read as their text: no parse and re-serialise per row.
    columns = [ConsentEvent.seq, ConsentEvent.id, ConsentEvent.at, cast(ConsentEvent.type, String),
               ConsentEvent.account_id, ConsentEvent.subscription_id, ConsentEvent.list_id, ConsentEvent.source,
               Subscription.email, ConsentEvent.ip, ConsentEvent.user_agent, cast(ConsentEvent.details, Text),
               ConsentEvent.details_hash, cast(ConsentEvent.commitments, Text), ConsentEvent.salt,
               ConsentEvent.content_hash, ConsentEvent.prev_hash, ConsentEvent.entry_hash,
               cast(ConsentEvent.redacted, Text), ConsentEvent.tombstoned_at]
    return (select(*columns).outerjoin(Subscription, Subscription.id == ConsentEvent.subscription_id)
            .where(*_filters(request, tree_size)).order_by(ConsentEvent.seq))


def _csv_cells(r) -> list:
    """Every user-controlled value formula-escaped (J1-J2); ids, times and hashes cannot start a formula."""
    esc = csvsafe.escape
    return [r[0], r[1], iso(r[2]), r[3], r[4], r[5], r[6], esc(r[7]), esc(r[8]), esc(r[9]), esc(r[10]),
            esc(r[11] or "null"), r[12], r[13] or "null", r[14], r[15], r[16], r[17], r[18] or "[]",
            "true" if r[19] is not None else "false"]


def _json_line(r) -> str:
    scalars = json.dumps({
        "seq": r[0], "event_id": r[1], "at": iso(r[2]), "type": r[3], "account_id": r[4],
        "subscription_id": r[5], "list_id": r[6], "source": r[7], "email": r[8], "ip": r[9],
        "user_agent": r[10], "details_hash": r[12], "salt": r[14], "content_hash": r[15], "prev_hash": r[16],
        "entry_hash": r[17], "tombstone": r[19] is not None,
    }, ensure_ascii=False, separators=(",", ":"))
    return (f'{scalars[:-1]},"details":{r[11] or "null"},"commitments":{r[13] or "null"},'
            f'"redacted":{r[18] or "[]"}}}\n')


def _python_chunks(request: ExportRequest, tree_size: int) -> Iterator[bytes]:
    """Rows straight from a server-side cursor: memory stays flat however many there are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    is_csv = request.fmt == "csv"
    if is_csv:
        yield CSV_HEADER
    # A read-only connection of its own: on SQLite it starts a deferred transaction
    # (database.py), so a long export does not hold the write lock.
    with db.engine.connect().execution_options(stream_results=True, yield_per=BATCH, flexmail_readonly=True) as conn:
        for r in conn.execute(_query(request, tree_size)):
            if is_csv:
                writer.writerow(_csv_cells(r))
            else:
                buffer.write(_json_line(r))
            if buffer.tell() > CHUNK:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


# --- verification -----------------------------------------------------------------------

@dataclass
class ExportCheck:
    ok: bool
    count: int
    message: str
    row: int | None = None


def _parse_csv(lines: Iterable[str], sink: dict) -> Iterator[dict]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise ValueError("not a Flexmail proof export (CSV header differs)")
    for cells in reader:
        if cells and cells[0] == "manifest":
            sink["manifest"] = json.loads(cells[1])
            continue
        if len(cells) != len(COLUMNS):
            raise ValueError(f"row has {len(cells)} cells, expected {len(COLUMNS)}")
        row = {}
        for column, cell in zip(COLUMNS, cells, strict=True):
            text = csvsafe.unescape(cell)
            if column in _JSON_COLUMNS:
                row[column] = json.loads(text) if text else None
            elif column in _INT_COLUMNS:
                row[column] = int(text) if text else None
            elif column == "tombstone":
                row[column] = text == "true"
            else:
                row[column] = text if text != "" else None
        yield row


def _parse_jsonl(lines: Iterable[str], sink: dict) -> Iterator[dict]:
    for line in lines:
        if not line.strip():
            continue
        obj = json.loads(line)
        if "manifest" in obj and len(obj) == 1:
            sink["manifest"] = obj["manifest"]
            continue
        yield obj


def _all_but_last_hashed(lines: Iterable[str], digest) -> Iterator[str]:
    """Pass lines through, hashing each one except the last (the manifest line)."""
    previous = None
    for line in lines:
        if previous is not None:
            digest.update(previous.encode())
        previous = line
        yield line


def verify_export(lines: Iterable[str], *, head_document: dict | None = None, fmt: str | None = None,
                  public_key: str | None = None) -> ExportCheck:
    """Verify an export file row by row, then against its signed manifest and tree head, and
    (with ``head_document``, a signed head held elsewhere) against that head.

    Fails naming the (1-based data) row for an edited field, a removed or reordered row,
    and fails for a changed, missing or foreign manifest, for rows that do not hash to the
    signed root, for a tail cut against a later head, and for history rewritten under an
    earlier one.
    """
    lines = iter(lines)
    first_line = next(lines, "")
    fmt = fmt or ("csv" if first_line.startswith('"seq"') else "jsonl")
    sink: dict = {}
    digest = hashlib.sha256()
    stream = _all_but_last_hashed(_chain([first_line], lines), digest)
    rows = (_parse_csv if fmt == "csv" else _parse_jsonl)(stream, sink)
    hint = {"value": None}

    def checked_rows():
        for row in rows:
            if row.get("email"):
                row = {**row, "email": match_key(row["email"])}
            yield row

    snapshot = head_document.get("tree_size") if isinstance(head_document, dict) else None
    try:
        # The manifest (last) says whether the export is the whole tree; rows are checked as
        # a filtered export first, and breaks in seq are remembered for a whole-tree one.
        results = list(ledger.verify_rows(_track_links(checked_rows(), hint), contiguous=False,
                                          pepper=hash_key(), snapshot_at=snapshot))
    except (ValueError, KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        return ExportCheck(False, 0, f"unreadable export: {exc}")
    result = results[-1]
    if not result.ok:
        return ExportCheck(False, result.count, result.error, result.row)
    manifest = sink.get("manifest")
    if manifest is None:
        return ExportCheck(False, result.count, "the manifest is missing (the file was cut)")
    if not signing.verify(manifest, public_key):
        return ExportCheck(False, result.count, "the manifest signature is not valid")
    cut_at = manifest.get("head") or {}
    if not signing.verify(cut_at, public_key) or cut_at.get("account_id") != manifest.get("account_id"):
        return ExportCheck(False, result.count, "the tree head in the manifest is not validly signed")
    whole = manifest.get("contiguous")
    if whole and hint["value"] is not None:
        return ExportCheck(False, result.count, hint["value"][1], hint["value"][0])
    if manifest.get("count") != result.count:
        return ExportCheck(False, result.count, f"rows were removed or added: the manifest lists "
                           f"{manifest.get('count')}, the file has {result.count}")
    if manifest.get("data_sha256") != digest.hexdigest():
        return ExportCheck(False, result.count, "rows were removed, added or changed: the file's digest "
                           "differs from the signed one")
    if whole and (result.count != cut_at.get("tree_size") or result.root != cut_at.get("root_hash")):
        return ExportCheck(False, result.count, "the rows do not hash to the root of the signed tree head")
    if head_document is not None:
        problem = _against_head(head_document, manifest, result, public_key)
        if problem:
            return ExportCheck(False, result.count, problem)
    return ExportCheck(True, result.count, f"OK: {result.count} entries verified"
                       + (f" (tree of {cut_at.get('tree_size')}, root {cut_at.get('root_hash')})" if whole else ""))


def _against_head(held: dict, manifest: dict, result: ledger.Verification, public_key: str | None) -> str | None:
    """A signed head the auditor holds: a later one shows a cut tail, an earlier one must be a
    prefix of the exported tree (same root over its first leaves), or history was rewritten."""
    if not signing.verify(held, public_key):
        return "the head signature is not valid"
    if held.get("account_id") != manifest.get("account_id"):
        return "the head is of another account"
    if not manifest.get("contiguous"):
        return None
    size = held.get("tree_size")
    if not isinstance(size, int):
        return "the head has no tree size"
    if size > result.count:
        return (f"the export ends at entry {result.last_seq or 0} but the head is at {size}: "
                "its tail is missing")
    if result.prefix_root != held.get("root_hash"):
        return (f"the first {size} entries do not hash to the given head's root: "
                "the history it signed was rewritten")
    return None


def _track_links(rows: Iterator[dict], hint: dict) -> Iterator[dict]:
    """Remember the first break in seq continuity (fatal only for a whole-tree export)."""
    previous = None
    for position, row in enumerate(rows, start=1):
        if hint["value"] is None:
            if previous is None:
                broken = row.get("seq") != 1
            else:
                broken = row.get("seq") != (previous.get("seq") or 0) + 1 or (
                    ledger.is_legacy(row) and ledger.is_legacy(previous)
                    and row["prev_hash"] != previous.get("entry_hash"))
            if broken:
                hint["value"] = (position, "a row before this one is missing (the tree is broken here)")
        previous = row
        yield row


def _chain(*iterables):
    for iterable in iterables:
        yield from iterable
