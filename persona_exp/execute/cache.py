"""The persistent LLM-call cache: SQLite in WAL mode, one row per finished call.

Why SQLite: it is in the standard library, survives `kill -9` (every finished
call is committed on its own, so a rerun continues where a run stopped), and
WAL mode lets two processes share one cache while both write. Only answers are
stored; an error is never cached, so a rerun retries exactly the failed calls.
Nothing secret is stored: rows hold the key, the answer, token usage (with the
latency the call had), the model name the provider reported and a timestamp.

Leases keep two processes on one cache from paying twice for a call: before
sending a miss, a runner takes a lease on its key (see ``take``), which it gets
only when the call has no answer and no other process holds a live lease on it.
A lease lapses at ``expires_at`` unless renewed, so a killed process's leases
free their calls again; on the same machine sooner: a lease whose owner process
is gone (``kill -9``, a crash) is free at once, so a rerun never waits for it. A lease is released when its call finishes, answered or
not (a failed call is then sent by whichever process asks next).

Batches (``execution: batch``, see execute.batch) are recorded here too: one
row per submitted batch (the provider's batch id, provider, endpoint, model,
the name of the variable holding its key but never a key, state, times) and the
call keys each holds. A call in a live batch (not yet collected, not
abandoned) is never put into another one, so a killed run resumes polling
instead of paying twice. A claim is taken in one transaction before anything is
uploaded; its row says ``submitting`` until the provider's id is known.

A SQLite error never surfaces as a traceback: a damaged file is a DataError
(exit 2) naming the file and what to do, a full disk a CacheWriteError (exit 1)
saying how many answers this run stored, since a rerun continues from them.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from persona_exp.errors import DataError, ExecutionError, PersonaExpError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key        TEXT PRIMARY KEY,
    response   TEXT NOT NULL,
    usage      TEXT NOT NULL,
    model      TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
"""

# Created on the first lease, so that reading a cache (`plan`, `cache stats`) never writes to it.
_LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    key        TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""

# Created on the first batch, like the leases. ``state`` is the provider's status
# (validating, in_progress, finalizing, completed, failed, expired, cancelling,
# cancelled), or ``submitting`` before the provider gave an id, ``lost`` when the
# answer to a submission was lost and the provider could not be asked whether it
# took the batch (looked up again before its calls are submitted anew), or
# ``abandoned`` (never submitted); ``collected_at`` is set once the answers are in ``calls``.
_BATCHES = """
CREATE TABLE IF NOT EXISTS batches (
    local_id     TEXT PRIMARY KEY,
    batch_id     TEXT,
    provider     TEXT NOT NULL,
    api_base     TEXT,
    api_version  TEXT,
    key_env      TEXT,
    model        TEXT NOT NULL,
    role         TEXT NOT NULL,
    owner        TEXT NOT NULL,
    state        TEXT NOT NULL,
    calls        INTEGER NOT NULL,
    answered     INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    input_file   TEXT,
    output_file  TEXT,
    error_file   TEXT,
    note         TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    collected_at REAL
);
CREATE TABLE IF NOT EXISTS batch_calls (
    batch TEXT NOT NULL,
    key   TEXT NOT NULL,
    PRIMARY KEY (batch, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batch_calls_key ON batch_calls (key);
"""
_BATCH_FIELDS = ("local_id", "batch_id", "provider", "api_base", "api_version", "key_env", "model", "role", "owner", "state", "calls",
                 "answered", "failed", "input_file", "output_file", "error_file", "note", "created_at", "updated_at", "collected_at")
_LIVE = "b.collected_at IS NULL AND b.state != 'abandoned'"

# A lease is this owner's, or free: none, or lapsed. One statement, so taking one is atomic.
_TAKE = (
    "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
    "WHERE leases.owner = excluded.owner OR leases.expires_at <= ?"
)

def process_alive(pid: int) -> bool:
    """Whether a process of this machine runs (or may: one we may not signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# SQLite's default limit on bound parameters is 32766 on current builds, 999 on old ones.
_BATCH = 900


STORED = 0  # answers this process has committed, for the message of an interrupted run

_T = TypeVar("_T")


class CacheWriteError(ExecutionError):
    """The cache could not take an answer (a full disk, a lock held too long):
    the run failed, not its input, so exit 1; rerunning continues from the
    answers stored."""

    exit_code = 1


@dataclass(frozen=True)
class CachedCall:
    key: str
    response: str
    usage: dict[str, Any]
    model: str
    created_at: float


def damaged(path: Path | str, detail: str, *, hint: bool = True) -> DataError:
    """The error for a cache file SQLite cannot read: what is wrong and what to do."""
    check = f"; `persona-exp cache check --path {path}` checks a cache file" if hint else ""
    return DataError(
        f"{path}: the call cache is damaged or not a persona-exp cache (SQLite: {detail}). Move it aside "
        f"(e.g. mv {path} {path}.damaged) and rerun the same command, which starts a new cache and sends the calls it held again{check}."
    )


def _guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """Turns the SQLite errors of a cache operation into persona-exp errors."""

    @functools.wraps(method)
    def wrapper(self: "CallCache", *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    return wrapper


class CallCache:
    """Key -> finished LLM call. Safe to share between processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.in_memory = str(path) == ":memory:"  # a scratch cache: its answers are thrown away
        # whose leases: this machine and process, and this cache object in it
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self._leasing = False  # the leases table is known to exist (this object took a lease)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = None
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            if self._db is not None:
                self._db.close()
            raise self._error(exc) from None

    def _error(self, exc: sqlite3.DatabaseError) -> PersonaExpError:
        """A full disk and a busy cache are run failures (exit 1: rerun later);
        an unreadable or unwritable file is bad input (exit 2)."""
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc)
        if name.startswith("SQLITE_FULL") or "disk is full" in text:
            return CacheWriteError(
                f"{self.path}: the disk is full (SQLite: {text}). The {STORED:,} answers this run stored are in the cache; "
                "free some space (or set output.cache to a file on another disk) and rerun the same command: it continues from there."
            )
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
            return CacheWriteError(
                f"{self.path}: the call cache stayed locked by another process for over a minute (SQLite: {text}). "
                f"The {STORED:,} answers this run stored are in the cache; rerun the same command once the other process is done."
            )
        if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) or "readonly" in text:
            return DataError(f"{self.path}: the call cache cannot be opened or written (SQLite: {text}); "
                             "check the file's and its folder's permissions, or set output.cache to another path.")
        return damaged(self.path, text)

    def close(self) -> None:
        try:
            self.release_all()
        except PersonaExpError:
            pass  # leases lapse on their own
        self._leasing = False
        self._db.close()

    def __enter__(self) -> "CallCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @_guarded
    def put(self, key: str, response: str, usage: dict[str, Any] | None = None, model: str = "") -> None:
        """Stores one finished call, committed at once (autocommit mode)."""
        global STORED
        self._db.execute(
            "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?)",
            (key, response, json.dumps(usage or {}, sort_keys=True), model, time.time()),
        )
        if not self.in_memory:
            STORED += 1

    @_guarded
    def get(self, key: str) -> CachedCall | None:
        row = self._db.execute("SELECT * FROM calls WHERE key = ?", (key,)).fetchone()
        return None if row is None else CachedCall(row[0], row[1], json.loads(row[2]), row[3], row[4])

    @_guarded
    def get_many(self, keys: Iterable[str]) -> dict[str, CachedCall]:
        """Bulk lookup: cache hits never need a round trip per call."""
        found: dict[str, CachedCall] = {}
        keys = sorted(set(keys))  # in key order, lookups walk the B-tree instead of jumping around it
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            for row in self._db.execute(f"SELECT * FROM calls WHERE key IN ({marks})", batch):
                found[row[0]] = CachedCall(row[0], row[1], json.loads(row[2]), row[3], row[4])
        return found

    @_guarded
    def contains_many(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are cached (without loading the answers)."""
        hits: set[str] = set()
        keys = sorted(set(keys))
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            hits.update(r[0] for r in self._db.execute(f"SELECT key FROM calls WHERE key IN ({marks})", batch))
        return hits

    @_guarded
    def take(self, keys: Iterable[str], seconds: float) -> tuple[dict[str, CachedCall], set[str]]:
        """Leases for ``seconds`` those of ``keys`` that have no answer and no
        live lease of another owner, in one transaction. Returns the answers
        found instead (another process answered meanwhile) and the keys now
        leased by this cache; the others are being sent by another process.
        Taking a lease this cache holds renews it."""
        if not self._leasing:
            self._db.executescript(_LEASES)
            self._leasing = True
        answered: dict[str, CachedCall] = {}
        taken: set[str] = set()
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for key in keys:
                row = self._db.execute("SELECT * FROM calls WHERE key = ?", (key,)).fetchone()
                if row is not None and row[1].strip():  # a blank answer cached by an older version is no answer
                    answered[key] = CachedCall(row[0], row[1], json.loads(row[2]), row[3], row[4])
                elif self._db.execute(_TAKE, (key, self.owner, now + seconds, now)).rowcount or self._orphaned(key, seconds, now):
                    taken.add(key)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return answered, taken

    def _orphaned(self, key: str, seconds: float, now: float) -> bool:
        """Takes the lease on ``key`` when its owner was a process of this
        machine that no longer runs (killed or crashed): its call will never be
        answered, so waiting for the lease to lapse would only stall a rerun."""
        row = self._db.execute("SELECT owner FROM leases WHERE key = ?", (key,)).fetchone()
        host, _, rest = (row[0] if row else "").partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname() or not pid.isdigit() or process_alive(int(pid)):
            return False
        self._db.execute("UPDATE leases SET owner = ?, expires_at = ? WHERE key = ?", (self.owner, now + seconds, key))
        return True

    def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.DatabaseError:
                pass  # SQLite rolled back itself (e.g. on a full disk)

    @_guarded
    def renew(self, seconds: float) -> None:
        """Extends every lease this cache holds to ``seconds`` from now."""
        if self._leasing:
            self._db.execute("UPDATE leases SET expires_at = ? WHERE owner = ?", (time.time() + seconds, self.owner))

    @_guarded
    def release(self, key: str) -> None:
        """Gives up this cache's lease on ``key`` (its call finished, answered or not)."""
        if self._leasing:
            self._db.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, self.owner))

    @_guarded
    def release_all(self) -> None:
        """Gives up every lease of this cache, and clears lapsed ones of anyone."""
        if self._leasing:
            self._db.execute("DELETE FROM leases WHERE owner = ? OR expires_at <= ?", (self.owner, time.time()))

    # Batches (execute.batch) ------------------------------------------------

    def _has_batches(self) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batches'").fetchone() is not None

    @_guarded
    def batch_claim(self, local_id: str, info: dict[str, Any], keys: Iterable[str]) -> list[str]:
        """Records a batch about to be submitted and claims for it, in one
        transaction, those of ``keys`` that have no answer and are in no live
        batch; returns them (none claimed: no row). ``info`` holds provider,
        api_base, api_version, key_env, model and role."""
        self._db.executescript(_BATCHES)
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            keys = list(dict.fromkeys(keys))
            busy = self._answered(keys) | set(self._live_keys(keys))
            claimed = [k for k in keys if k not in busy]
            if claimed:
                self._db.execute(
                    "INSERT INTO batches (local_id, provider, api_base, api_version, key_env, model, role, owner, state, calls, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'submitting', ?, ?, ?)",
                    (local_id, info["provider"], info.get("api_base"), info.get("api_version"), info.get("key_env"), info["model"], info["role"],
                     self.owner, len(claimed), now, now),
                )
                self._db.executemany("INSERT INTO batch_calls VALUES (?, ?)", ((local_id, k) for k in claimed))
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return claimed

    def _answered(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), _BATCH):
            part = keys[start : start + _BATCH]
            found.update(r[0] for r in self._db.execute(f"SELECT key FROM calls WHERE key IN ({','.join('?' * len(part))}) AND trim(response) != ''", part))
        return found

    def _live_keys(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), _BATCH):
            part = keys[start : start + _BATCH]
            found.update(self._db.execute(
                f"SELECT c.key, c.batch FROM batch_calls c JOIN batches b ON b.local_id = c.batch WHERE c.key IN ({','.join('?' * len(part))}) AND {_LIVE}",
                part))
        return found

    @_guarded
    def batches_holding(self, keys: Iterable[str]) -> dict[str, str]:
        """Key -> local id of the live batch holding it, for those of ``keys`` in one."""
        return self._live_keys(list(keys)) if self._has_batches() else {}

    @_guarded
    def batch_update(self, local_id: str, **fields: Any) -> None:
        """Sets fields of a batch's row (its provider id, state, files, counts, note)."""
        bad = set(fields) - set(_BATCH_FIELDS)
        if bad:
            raise ValueError(f"unknown batch fields {sorted(bad)}")
        fields["updated_at"] = time.time()
        self._db.execute(f"UPDATE batches SET {', '.join(f'{k} = ?' for k in fields)} WHERE local_id = ?", (*fields.values(), local_id))

    @_guarded
    def batch(self, ref: str) -> dict[str, Any] | None:
        """A batch's row by its local id or the provider's batch id."""
        if not self._has_batches():
            return None
        row = self._db.execute(f"SELECT {', '.join(_BATCH_FIELDS)} FROM batches WHERE local_id = ? OR batch_id = ?", (ref, ref)).fetchone()
        return None if row is None else dict(zip(_BATCH_FIELDS, row))

    @_guarded
    def batches(self) -> list[dict[str, Any]]:
        """Every recorded batch, oldest first."""
        if not self._has_batches():
            return []
        rows = self._db.execute(f"SELECT {', '.join(_BATCH_FIELDS)} FROM batches ORDER BY created_at, local_id").fetchall()
        return [dict(zip(_BATCH_FIELDS, row)) for row in rows]

    @_guarded
    def batch_keys(self, local_id: str) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT key FROM batch_calls WHERE batch = ?", (local_id,))] if self._has_batches() else []

    @_guarded
    def batch_collect(self, local_id: str, answers: Iterable[tuple[str, str, dict[str, Any], str]], **fields: Any) -> int:
        """Stores a finished batch's answers (key, response, usage, model) and
        marks it collected, in one transaction: a run killed while collecting
        leaves the batch live, and the rerun collects it again. An answer
        already in the cache is kept as it is. Returns the answers stored."""
        global STORED
        now = time.time()
        rows = [(k, text, json.dumps(usage, sort_keys=True), model, now) for k, text, usage, model in answers]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            before = self._db.total_changes
            self._db.executemany(  # a blank answer an older version cached is no answer: replaced
                "INSERT INTO calls VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET response = excluded.response, usage = excluded.usage, "
                "model = excluded.model, created_at = excluded.created_at WHERE trim(calls.response) = ''", rows)
            stored = self._db.total_changes - before
            fields.update(collected_at=now, updated_at=now)
            self._db.execute(f"UPDATE batches SET {', '.join(f'{k} = ?' for k in fields)} WHERE local_id = ?", (*fields.values(), local_id))
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        if not self.in_memory:
            STORED += stored
        return stored

    @_guarded
    def check(self) -> list[str]:
        """SQLite's quick integrity check: the problems found, one a line (none: the file is intact)."""
        rows = [row[0] for row in self._db.execute("PRAGMA quick_check") if row[0] != "ok"]
        return [line.strip() for row in rows for line in row.splitlines() if line.strip()]

    @_guarded
    def stats(self) -> dict[str, Any]:
        n, first, last = self._db.execute("SELECT COUNT(*), MIN(created_at), MAX(created_at) FROM calls").fetchone()
        models = dict(self._db.execute("SELECT model, COUNT(*) FROM calls GROUP BY model ORDER BY 2 DESC").fetchall())
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return {"path": str(self.path), "calls": n, "bytes": size, "first": first, "last": last, "by_model": models}

    @_guarded
    def prune(self, *, older_than_days: float | None = None, keep: Iterable[str] | None = None) -> int:
        """Deletes calls older than a cut-off, or all calls whose key is not in ``keep``."""
        if older_than_days is None and keep is None:
            raise DataError("prune needs older_than_days or keep; refusing to empty the cache by accident.")
        before = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if older_than_days is not None:
                self._db.execute("DELETE FROM calls WHERE created_at < ?", (time.time() - older_than_days * 86400,))
            if keep is not None:
                self._db.execute("CREATE TEMP TABLE IF NOT EXISTS keep_keys (key TEXT PRIMARY KEY)")
                self._db.execute("DELETE FROM keep_keys")
                self._db.executemany("INSERT OR IGNORE INTO keep_keys VALUES (?)", ((k,) for k in keep))
                self._db.execute("DELETE FROM calls WHERE key NOT IN (SELECT key FROM keep_keys)")
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        after = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        return before - after
