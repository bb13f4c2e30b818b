"""Bulk proof export (CSV or JSON Lines) in constant memory, and its offline verification.

An export is the account's events in chain order, each with its content, personal values
in clear (where not erased), salt and hashes, followed by one signed manifest: filters,
count, first/last seq, a digest of every entry hash in order, and the chain head at export
time. Removing, reordering or editing any row, or cutting the tail, makes verification
fail and name the row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import String, Text, cast, select

from flexmail.clock import iso, now
from flexmail.domain import csvsafe, ledger
from flexmail.domain.addresses import match_key
from flexmail.extensions import db
from flexmail.models import ConsentEvent, Subscription
from flexmail.services import audit, signing
from flexmail.services.accounts import Principal
from flexmail.services.context import hash_key
from flexmail.services.errors import ValidationFailed
from flexmail.services.ledger import head

FORMAT = "flexmail-proof-export/1"
COLUMNS = ("seq", "event_id", "at", "type", "account_id", "subscription_id", "list_id", "source", "email",
           "ip", "user_agent", "details", "details_hash", "commitments", "salt", "prev_hash", "content_hash",
           "entry_hash", "redacted", "tombstone")
_JSON_COLUMNS = {"details", "commitments", "redacted"}
_INT_COLUMNS = {"seq", "event_id", "account_id", "subscription_id", "list_id"}
BATCH = 2000


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


def start_export(request: ExportRequest, *, principal: Principal | None) -> Iterator[str]:
    """Check the request, audit it, and return the stream of text chunks."""
    if request.fmt not in ("csv", "jsonl"):
        raise ValidationFailed("Invalid input.", fields={"format": ["csv or jsonl"]})
    if request.since and request.until and request.since > request.until:
        raise ValidationFailed("Invalid input.", fields={"since": ["since is after until"]})
    if principal is not None:
        audit.record(principal, "proof.export", {
            "list_id": request.list_id, "since": iso(request.since), "until": iso(request.until),
            "format": request.fmt})
    return _stream(request)


def _query(request: ExportRequest):
    # JSON columns are read as their text: no parse and re-serialise per row.
    columns = [ConsentEvent.seq, ConsentEvent.id, ConsentEvent.at, cast(ConsentEvent.type, String),
               ConsentEvent.account_id, ConsentEvent.subscription_id, ConsentEvent.list_id, ConsentEvent.source,
               Subscription.email, ConsentEvent.ip, ConsentEvent.user_agent, cast(ConsentEvent.details, Text),
               cast(ConsentEvent.commitments, Text), ConsentEvent.salt, ConsentEvent.prev_hash,
               ConsentEvent.content_hash, ConsentEvent.entry_hash, cast(ConsentEvent.redacted, Text),
               ConsentEvent.tombstoned_at, ConsentEvent.details_hash]
    query = (select(*columns).outerjoin(Subscription, Subscription.id == ConsentEvent.subscription_id)
             .where(ConsentEvent.account_id == request.account_id).order_by(ConsentEvent.seq))
    if request.list_id is not None:
        query = query.where(ConsentEvent.list_id == request.list_id)
    if request.since is not None:
        query = query.where(ConsentEvent.at >= request.since)
    if request.until is not None:
        query = query.where(ConsentEvent.at < request.until)
    return query


def _rows(request: ExportRequest) -> Iterator[tuple]:
    """Rows straight from a server-side cursor: memory stays flat however many there are."""
    # A read-only connection of its own: on SQLite it starts a deferred transaction
    # (database.py), so a long export does not hold the write lock.
    with db.engine.connect().execution_options(stream_results=True, yield_per=BATCH, flexmail_readonly=True) as conn:
        yield from conn.execute(_query(request))


def _manifest(request: ExportRequest, count: int, first: int | None, last: int | None, digest: str,
              head_at_start: dict) -> dict:
    return signing.sign({
        "format": FORMAT, "account_id": request.account_id, "contiguous": request.contiguous,
        "filters": {"list_id": request.list_id, "since": iso(request.since), "until": iso(request.until)},
        "count": count, "first_seq": first, "last_seq": last, "rows_digest": digest,
        "head": head_at_start, "generated_at": iso(now()),
    })


def _csv_cells(r) -> list:
    """Every user-controlled value formula-escaped (J1-J2); ids, times and hashes cannot start a formula."""
    esc = csvsafe.escape
    return [r[0], r[1], iso(r[2]), r[3], r[4], r[5], r[6], esc(r[7]), esc(r[8]), esc(r[9]), esc(r[10]),
            esc(r[11] or "null"), r[19], r[12] or "null", r[13], r[14], r[15], r[16], r[17] or "[]",
            "true" if r[18] is not None else "false"]


def _json_line(r) -> str:
    scalars = json.dumps({
        "seq": r[0], "event_id": r[1], "at": iso(r[2]), "type": r[3], "account_id": r[4],
        "subscription_id": r[5], "list_id": r[6], "source": r[7], "email": r[8], "ip": r[9],
        "user_agent": r[10], "details_hash": r[19], "salt": r[13], "prev_hash": r[14], "content_hash": r[15],
        "entry_hash": r[16],
        "tombstone": r[18] is not None,
    }, ensure_ascii=False, separators=(",", ":"))
    return (f'{scalars[:-1]},"details":{r[11] or "null"},"commitments":{r[12] or "null"},'
            f'"redacted":{r[17] or "[]"}}}\n')


def _stream(request: ExportRequest) -> Iterator[str]:
    head_at_start = head(request.account_id)
    digest = ledger.rows_digest_builder()
    count, first, last = 0, None, None
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    is_csv = request.fmt == "csv"
    if is_csv:
        writer.writerow(COLUMNS)
    limit = head_at_start["count"]
    for r in _rows(request):
        if r[0] > limit:
            break  # events appended while we stream belong to the next export
        count += 1
        first = r[0] if first is None else first
        last = r[0]
        digest.update(r[16])
        if is_csv:
            writer.writerow(_csv_cells(r))
        else:
            buffer.write(_json_line(r))
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    manifest = _manifest(request, count, first, last, digest.hexdigest(), head_at_start)
    if is_csv:
        writer.writerow(["manifest", json.dumps(manifest, sort_keys=True)] + [""] * (len(COLUMNS) - 2))
    else:
        buffer.write(json.dumps({"manifest": manifest}, sort_keys=True) + "\n")
    yield buffer.getvalue()


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


def verify_export(lines: Iterable[str], *, head_document: dict | None = None, fmt: str | None = None,
                  public_key: str | None = None) -> ExportCheck:
    """Verify an export file, row by row, against its signed manifest (and a signed head).

    Fails naming the (1-based data) row for an edited field, a removed or reordered row,
    and fails for a changed, missing or foreign manifest and for a tail cut against the head.
    """
    lines = iter(lines)
    first_line = next(lines, "")
    fmt = fmt or ("csv" if first_line.startswith('"seq"') else "jsonl")
    sink: dict = {}
    rows = (_parse_csv if fmt == "csv" else _parse_jsonl)(_chain([first_line], lines), sink)
    digest = ledger.rows_digest_builder()
    contiguous_hint = {"value": None}

    def checked_rows():
        for row in rows:
            digest.update(row.get("entry_hash") or "")
            if row.get("email"):
                row = {**row, "email": match_key(row["email"])}
            yield row

    try:
        # A contiguous export is checked link by link; the manifest says which it is, but it
        # comes last, so first assume "filtered" checks (own hashes, order) and then, for a
        # contiguous manifest, the links were checked by the continuity of seq below.
        results = list(ledger.verify_rows(_track_links(checked_rows(), contiguous_hint), contiguous=False,
                                          pepper=hash_key()))
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        return ExportCheck(False, 0, f"unreadable export: {exc}")
    result = results[-1]
    if not result.ok:
        return ExportCheck(False, result.count, result.error, result.row)
    manifest = sink.get("manifest")
    if manifest is None:
        return ExportCheck(False, result.count, "the manifest is missing (the file was cut)")
    if not signing.verify(manifest, public_key):
        return ExportCheck(False, result.count, "the manifest signature is not valid")
    if manifest.get("contiguous") and contiguous_hint["value"] is not None:
        return ExportCheck(False, result.count, contiguous_hint["value"][1], contiguous_hint["value"][0])
    if manifest.get("count") != result.count or manifest.get("rows_digest") != digest.hexdigest():
        return ExportCheck(False, result.count,
                           f"rows were removed or added: the manifest lists {manifest.get('count')}, "
                           f"the file has {result.count}")
    if head_document is not None:
        if not signing.verify(head_document, public_key):
            return ExportCheck(False, result.count, "the head signature is not valid")
        if head_document.get("account_id") != manifest.get("account_id"):
            return ExportCheck(False, result.count, "the head is of another account")
        if manifest.get("contiguous") and (result.last_seq or 0) < head_document["count"]:
            return ExportCheck(False, result.count,
                               f"the export ends at entry {result.last_seq} but the head is at "
                               f"{head_document['count']}: its tail is missing")
        if (manifest.get("contiguous") and result.last_seq == head_document["count"]
                and result.last_hash != head_document["head_hash"]):
            return ExportCheck(False, result.count, "the last entry does not match the head")
    return ExportCheck(True, result.count, f"OK: {result.count} entries verified")


def _track_links(rows: Iterator[dict], hint: dict) -> Iterator[dict]:
    """Remember the first break in seq/prev_hash continuity (fatal only for a contiguous export)."""
    previous = None
    for position, row in enumerate(rows, start=1):
        if hint["value"] is None:
            if previous is None:
                broken = row["seq"] != 1 or row["prev_hash"] != ledger.GENESIS
            else:
                broken = row["seq"] != previous["seq"] + 1 or row["prev_hash"] != previous["entry_hash"]
            if broken:
                hint["value"] = (position, "a row before this one is missing (the chain is broken here)")
        previous = row
        yield row


def _chain(*iterables):
    for iterable in iterables:
        yield from iterable
