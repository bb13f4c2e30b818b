"""The opt-out spool: no opt-out is lost, or refused, while the database is down.

The unsubscribe entry points (one-click, page, mailto) are wrapped here. When the database
cannot be reached, the request is appended to a local, append-only file instead (one
fsync'd, checksummed line: ``domain.spool``) and the caller answers "accepted" (202 / SMTP
250). ``drain`` applies the lines later, each with its ORIGINAL time, through the very same
service functions, and exactly once:

- each line carries a random id; the unsubscribe and a ``spool_applied`` row with that id
  commit in ONE transaction, and a line whose id is already there is skipped. A drain that
  dies between applying a line and noting it locally applies nothing twice next time;
- one drainer at a time per spool directory (``drain.lock``, non-blocking: a second
  process finds it busy and leaves); new lines go to ``optouts.jsonl``, and the drainer
  claims that file by renaming it under ``append.lock`` (which every appender holds while
  writing), so no line is written into a file that is being drained;
- a line that cannot be applied (its checksum or JSON is bad, its token is not genuine) is
  moved to ``rejected.jsonl`` with the reason and reported (``status``, the drain's log
  line); a line that fails for another reason stays where it is and is tried again.

Files are made 0600 in a 0700 directory: they hold unsubscribe tokens, like the database.
Tokens never appear in a log line; lines are named by their random id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from flexmail import clock
from flexmail.domain import spool as lines
from flexmail.domain.tokens import Purpose, TokenError
from flexmail.extensions import db
from flexmail.models import SpoolApplied
from flexmail.services.optout import unsubscribe
from flexmail.services.platform.availability import is_database_unavailable, reset_session
from flexmail.services.platform.context import RequestMeta, signer
from flexmail.services.platform.errors import BadToken

log = logging.getLogger(__name__)

PENDING = "optouts.jsonl"
REJECTED = "rejected.jsonl"
CLAIMED_PREFIX = "claimed-"


class SpoolUnavailable(Exception):
    """The spool cannot take the line (disk full, over FLEXMAIL_SPOOL_MAX_BYTES)."""


@dataclass(frozen=True)
class Spooled:
    """The opt-out was written to the spool; it takes effect when the database is back."""

    id: str
    method: str
    all_lists: bool = False


# --- files ---------------------------------------------------------------------------------

def spool_dir() -> Path:
    configured = current_app.config.get("SPOOL_DIR")
    path = Path(configured) if configured else Path(current_app.instance_path) / "spool"
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _open_private(path: Path, flags: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC, 0o600)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(name: str, *, blocking: bool = True):
    """An flock on ``<spool>/<name>``; yields False when non-blocking and already held."""
    fd = _open_private(spool_dir() / name, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _append_bytes(path: Path, data: bytes) -> None:
    """Append ``data`` and fsync it (and the directory, when the file is new)."""
    new = not path.exists()
    fd = _open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        size = os.fstat(fd).st_size
        if size:
            # A torn last line (power loss) must not swallow this one: start on a new line.
            with open(path, "rb") as handle:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        _fsync_dir(path.parent)


def append(record: dict) -> str:
    """Write one opt-out durably; returns its line id. ``SpoolUnavailable`` if it cannot."""
    line_id = uuid.uuid4().hex
    data = lines.encode({"id": line_id, **record})
    directory = spool_dir()
    try:
        with _locked("append.lock"):
            pending = directory / PENDING
            size = pending.stat().st_size if pending.exists() else 0
            if size + len(data) > current_app.config["SPOOL_MAX_BYTES"]:
                raise SpoolUnavailable("the spool is full (FLEXMAIL_SPOOL_MAX_BYTES)")
            _append_bytes(pending, data)
    except OSError as exc:
        raise SpoolUnavailable(f"the spool cannot be written ({type(exc).__name__})") from exc
    return line_id


def _meta_record(meta: RequestMeta) -> dict:
    return {"at": clock.iso(meta.at), "ip": meta.ip, "user_agent": meta.user_agent}


# --- the wrapped entry points ----------------------------------------------------------------

def _spool(record: dict, meta: RequestMeta, error: BaseException) -> str:
    reset_session()
    try:
        line_id = append({**record, **_meta_record(meta)})
    except SpoolUnavailable:
        log.error("database unavailable (%s) AND the opt-out spool failed: %s opt-out not recorded",
                  type(error).__name__, record["method"])
        raise error from None
    log.warning("database unavailable (%s): %s opt-out spooled as %s", type(error).__name__,
                record["method"], line_id)
    return line_id


def _check_link(token: str) -> None:
    """``BadToken`` unless ``token`` is a genuine unsubscribe link token (no database)."""
    try:
        ids = signer().loads_untimed(Purpose.UNSUBSCRIBE, token)
    except TokenError:
        raise BadToken("invalid") from None
    if len(ids) > 2:
        raise BadToken("invalid")


def unsubscribe_by_token(token: str, *, meta: RequestMeta, method: str, all_lists: bool = False,
                         reason: str | None = None):
    """``unsubscribe.unsubscribe_by_token``, or a ``Spooled`` when the database is down.

    The token is checked (signature, no database) before anything is spooled: a link
    that is not ours is ``BadToken`` whether the database is up or not.
    """
    try:
        return unsubscribe.unsubscribe_by_token(token, meta=meta, method=method, all_lists=all_lists,
                                                reason=reason)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        error = exc
    _check_link(token)
    all_lists = all_lists and method == "page"
    line_id = _spool({"kind": "link", "method": method, "token": token, "all_lists": all_lists,
                      "reason": reason}, meta, error)
    return Spooled(line_id, method, all_lists)


def view_unsubscribe_link(token: str):
    """``unsubscribe.view_unsubscribe_link``, or ``None`` when the database is down and the
    token is genuine: the page then shows its form without the subscription's details."""
    try:
        return unsubscribe.view_unsubscribe_link(token)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
    reset_session()
    _check_link(token)
    return None


def unsubscribe_by_mailto(address: str, *, meta: RequestMeta, message_sha256: str | None = None) -> bool:
    """``unsubscribe.unsubscribe_by_mailto``, spooling when the database is down."""
    try:
        return unsubscribe.unsubscribe_by_mailto(address, meta=meta, message_sha256=message_sha256)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        error = exc
    if not unsubscribe.is_unsubscribe_address(address):
        return False
    _spool({"kind": "mailto", "method": "mailto", "address": address, "message_sha256": message_sha256},
           meta, error)
    return True


# --- applying the spool ------------------------------------------------------------------------

@dataclass
class DrainResult:
    applied: int = 0
    #: Lines whose id the database already had (applied by an earlier, interrupted drain).
    already: int = 0
    rejected: int = 0
    #: Lines left for a later drain (the database went away again, or an unexpected error).
    left: int = 0
    busy: bool = False
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"applied": self.applied, "already_applied": self.already, "rejected": self.rejected,
                "left": self.left, "busy": self.busy}


class _Stop(Exception):
    """The database went away during the drain: keep the rest for later."""


def _claim(directory: Path) -> None:
    """Move the pending file aside (under the appenders' lock) so the drain owns its lines."""
    with _locked("append.lock"):
        pending = directory / PENDING
        if pending.exists() and pending.stat().st_size:
            pending.rename(directory / f"{CLAIMED_PREFIX}{time.time_ns():020d}.jsonl")
            _fsync_dir(directory)


def _done_numbers(done_path: Path) -> set[int]:
    if not done_path.exists():
        return set()
    return {int(n) for n in done_path.read_text().split() if n.isdigit()}


def _reject(directory: Path, raw: bytes, reason: str, *, source: str, number: int) -> None:
    entry = {"rejected_at": clock.iso(clock.now()), "reason": reason, "file": source, "line_number": number,
             "line": raw.rstrip(b"\r\n").decode("utf-8", "replace")}
    _append_bytes(directory / REJECTED, json.dumps(entry, sort_keys=True).encode() + b"\n")


def _already_applied(line_id: str) -> bool:
    return db.session.get(SpoolApplied, line_id) is not None


def _apply(record: dict) -> None:
    """Apply one record with its original time, and its marker, in one transaction."""
    at = dt.datetime.fromisoformat(record["at"])
    meta = RequestMeta(record.get("ip"), record.get("user_agent"), at)
    db.session.add(SpoolApplied(id=record["id"], method=record["method"], received_at=at))
    # The service's own unit of work commits the marker with the unsubscribe. When it has
    # nothing to write (a subscription that no longer exists), this commit writes the marker.
    if record["kind"] == "link":
        unsubscribe.unsubscribe_by_token(record["token"], meta=meta, method=record["method"],
                                         all_lists=bool(record.get("all_lists")), reason=record.get("reason"))
    elif not unsubscribe.unsubscribe_by_mailto(record["address"], meta=meta,
                                               message_sha256=record.get("message_sha256")):
        raise BadToken("invalid")
    db.session.commit()
    if not _already_applied(record["id"]):
        # The service retried its transaction (a "stop all" race) and the retry began
        # without our marker: note it now.
        db.session.add(SpoolApplied(id=record["id"], method=record["method"], received_at=at))
        db.session.commit()


def _drain_line(directory: Path, raw: bytes, *, source: str, number: int, result: DrainResult) -> bool:
    """Handle one line; True when it is settled (applied, already applied or rejected)."""
    try:
        record = lines.decode(raw)
    except lines.CorruptLine as exc:
        _reject(directory, raw, f"corrupt: {exc}", source=source, number=number)
        result.rejected += 1
        return True
    try:
        if _already_applied(record["id"]):
            result.already += 1
            return True
        _apply(record)
    except BadToken:
        reset_session()
        _reject(directory, raw, "not a genuine unsubscribe token", source=source, number=number)
        result.rejected += 1
        return True
    except Exception as exc:
        reset_session()
        if is_database_unavailable(exc):
            raise _Stop from exc
        log.exception("spool line %s could not be applied; it stays in the spool", record["id"])
        result.errors.append(record["id"])
        return False
    result.applied += 1
    return True


def _mark_done(done_path: Path, number: int) -> None:
    """Note locally that line ``number`` is settled (the database marker is the authority)."""
    _append_bytes(done_path, f"{number}\n".encode())


def _drain_file(directory: Path, path: Path, result: DrainResult) -> None:
    done_path = path.with_suffix(".done")
    done = _done_numbers(done_path)
    raw_lines = [raw for raw in path.read_bytes().split(b"\n") if raw.strip()]
    stopped = False
    for number, raw in enumerate(raw_lines, start=1):
        if number in done:
            continue
        if stopped:
            result.left += 1
            continue
        try:
            settled = _drain_line(directory, raw, source=path.name, number=number, result=result)
        except _Stop:
            stopped = True
            result.left += 1
            continue
        if settled:
            _mark_done(done_path, number)
            done.add(number)
        else:
            result.left += 1
    if len(done) >= len(raw_lines):
        path.unlink()
        done_path.unlink(missing_ok=True)
        _fsync_dir(directory)
    if stopped:
        raise _Stop


def drain() -> DrainResult:
    """Apply every spooled opt-out that the database has not seen yet, oldest first."""
    directory = spool_dir()
    result = DrainResult()
    with _locked("drain.lock", blocking=False) as mine:
        if not mine:
            result.busy = True
            return result
        _claim(directory)
        for path in sorted(directory.glob(f"{CLAIMED_PREFIX}*.jsonl")):
            try:
                _drain_file(directory, path, result)
            except _Stop:
                log.warning("spool drain stopped: the database is unavailable again")
                for rest in sorted(directory.glob(f"{CLAIMED_PREFIX}*.jsonl")):
                    if rest.name > path.name:
                        result.left += _count_pending(rest)
                break
    if result.applied or result.already or result.rejected or result.left:
        log.info("spool drain: %d applied, %d already applied, %d rejected, %d left",
                 result.applied, result.already, result.rejected, result.left)
    return result


# --- reporting ---------------------------------------------------------------------------------

def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for raw in path.read_bytes().split(b"\n") if raw.strip())


def _count_pending(path: Path) -> int:
    return _count_lines(path) - len(_done_numbers(path.with_suffix(".done")))


def status() -> dict:
    """Counts from the files alone (no database needed): waiting and rejected lines."""
    directory = spool_dir()
    pending = _count_lines(directory / PENDING)
    pending += sum(_count_pending(p) for p in directory.glob(f"{CLAIMED_PREFIX}*.jsonl"))
    return {"directory": str(directory), "pending": pending, "rejected": _count_lines(directory / REJECTED)}
