"""The persistent LLM-call cache: SQLite in WAL mode, one row per finished call.

Why SQLite: it is in the standard library, survives `kill -9` (every finished
call is committed on its own, so a rerun continues where a run stopped), and
WAL mode lets two processes share one cache while both write. Only answers are
stored; an error is never cached, so a rerun retries exactly the failed calls.
Nothing secret is stored: rows hold the key, the answer, token usage, the
model name the provider reported and a timestamp.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from persona_exp.errors import DataError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key        TEXT PRIMARY KEY,
    response   TEXT NOT NULL,
    usage      TEXT NOT NULL,
    model      TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
"""

# SQLite's default limit on bound parameters is 32766 on current builds, 999 on old ones.
_BATCH = 900


STORED = 0  # answers this process has committed, for the message of an interrupted run


@dataclass(frozen=True)
class CachedCall:
    key: str
    response: str
    usage: dict[str, Any]
    model: str
    created_at: float


class CallCache:
    """Key -> finished LLM call. Safe to share between processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.in_memory = str(path) == ":memory:"  # a scratch cache: its answers are thrown away
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: not a usable persona-exp cache ({exc}); move it away or pass another path.") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "CallCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(self, key: str, response: str, usage: dict[str, Any] | None = None, model: str = "") -> None:
        """Stores one finished call, committed at once (autocommit mode)."""
        global STORED
        self._db.execute(
            "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?)",
            (key, response, json.dumps(usage or {}, sort_keys=True), model, time.time()),
        )
        if not self.in_memory:
            STORED += 1

    def get(self, key: str) -> CachedCall | None:
        row = self._db.execute("SELECT * FROM calls WHERE key = ?", (key,)).fetchone()
        return None if row is None else CachedCall(row[0], row[1], json.loads(row[2]), row[3], row[4])

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

    def contains_many(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are cached (without loading the answers)."""
        hits: set[str] = set()
        keys = sorted(set(keys))
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            hits.update(r[0] for r in self._db.execute(f"SELECT key FROM calls WHERE key IN ({marks})", batch))
        return hits

    def stats(self) -> dict[str, Any]:
        n, first, last = self._db.execute("SELECT COUNT(*), MIN(created_at), MAX(created_at) FROM calls").fetchone()
        models = dict(self._db.execute("SELECT model, COUNT(*) FROM calls GROUP BY model ORDER BY 2 DESC").fetchall())
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return {"path": str(self.path), "calls": n, "bytes": size, "first": first, "last": last, "by_model": models}

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
            self._db.execute("ROLLBACK")
            raise
        after = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        return before - after
