"""A damaged cache file and a full disk: one-paragraph errors, never tracebacks.

A damaged file is bad input (exit 2, move it aside); a full disk stops the run
(exit 1) with the answers stored so far kept, and a rerun continues from them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from persona_exp import cli
from persona_exp.errors import DataError
from persona_exp.execute import CallCache
from persona_exp.execute import cache as cache_module

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "loo.yaml"
EXE = Path(sys.executable).with_name("persona-exp")
SMALL = ["--set", "population.size=200", "--set", "experiment.attributes=[age, sex]", "--set", "experiment.n_personas=3",
         "--set", "experiment.n_questions=2", "--set", "experiment.n_resamples=100"]


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _one_paragraph(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("persona-exp: error: "), stderr
    return lines[0]


def _corrupt(path: Path) -> None:
    """Writes garbage over the middle half of the file, page 1 (the header and schema) left whole."""
    size = path.stat().st_size
    start, end = size // 4 // 4096 * 4096 or 4096, size * 3 // 4
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(b"\xff" * (end - start))


def test_a_damaged_cache_is_exit_2_naming_the_file_for_plan_run_and_check(tmp_path):
    done = _cli(tmp_path, "run", str(SPEC), *SMALL, "--no-progress")
    assert done.returncode == 0, done.stderr
    path = tmp_path / ".persona-exp" / "cache.sqlite"
    with CallCache(path) as cache:  # many rows, so the file has many pages
        for i in range(3000):  # keys spread like the run's (hashes), so they share its pages
            cache.put(hashlib.sha256(str(i).encode()).hexdigest(), f"filler answer {i} " * 20)
    assert not path.with_name("cache.sqlite-wal").exists() or path.with_name("cache.sqlite-wal").stat().st_size == 0
    _corrupt(path)

    for verb in (["plan"], ["run", "--no-progress"]):
        r = _cli(tmp_path, *verb, str(SPEC), *SMALL)
        assert r.returncode == 2, (verb, r.stderr)
        line = _one_paragraph(r.stderr)
        assert ".persona-exp/cache.sqlite" in line and "damaged" in line and "Move it aside" in line, line

    check = _cli(tmp_path, "cache", "check", "--path", ".persona-exp/cache.sqlite")
    assert check.returncode == 2 and "damaged" in _one_paragraph(check.stderr)

    path.rename(path.with_name("cache.sqlite.damaged"))  # what the message says to do
    again = _cli(tmp_path, "run", str(SPEC), *SMALL, "--no-progress")
    assert again.returncode == 0, again.stderr
    ok = _cli(tmp_path, "cache", "check", "--path", ".persona-exp/cache.sqlite")
    assert ok.returncode == 0 and "intact" in ok.stdout


def test_every_cache_operation_turns_a_damaged_page_into_a_data_error(tmp_path):
    path = tmp_path / "cache.sqlite"
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3000)]
    with CallCache(path) as cache:
        for k in keys:
            cache.put(k, "an answer " * 30)
    _corrupt(path)
    with CallCache(path) as cache:
        for operation in (lambda: cache.get_many(keys), lambda: cache.contains_many(keys), cache.stats, lambda: cache.prune(keep=keys[:10]),
                          lambda: [cache.get(k) for k in keys]):
            with pytest.raises(DataError, match="cache.sqlite: the call cache is damaged") as err:
                operation()
            assert err.value.exit_code == 2
        assert cache.check()  # quick_check lists the problems


def test_a_full_disk_is_exit_1_saying_how_many_answers_were_stored(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cache_module, "STORED", 0)
    opened = CallCache.__init__

    def small_disk(self, path):  # a disk with room for a few pages more than the cache has
        opened(self, path)
        if not self.in_memory:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            self._db.execute(f"PRAGMA max_page_count = {pages + 2}")

    monkeypatch.setattr(CallCache, "__init__", small_disk)
    assert cli.main(["run", str(SPEC), *SMALL, "--no-progress"]) == 1
    line = _one_paragraph(capsys.readouterr().err)
    monkeypatch.setattr(CallCache, "__init__", opened)  # space freed

    path = tmp_path / ".persona-exp" / "cache.sqlite"
    with CallCache(path) as cache:
        stored = cache.stats()["calls"]
    assert stored > 0, line
    assert "the disk is full" in line and f"The {stored} answers this run stored are in the cache" in line
    assert "rerun the same command" in line and str(Path(".persona-exp") / "cache.sqlite") in line

    assert cli.main(["run", str(SPEC), *SMALL, "--json"]) == 0  # the rerun continues from the stored answers
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert counts["cached"] == stored and counts["failed"] == 0


def test_disk_full_from_sqlite_is_a_run_failure_not_bad_input(tmp_path):
    with CallCache(tmp_path / "cache.sqlite") as cache:
        error = cache._error(sqlite3.OperationalError("database or disk is full"))
        assert error.exit_code == 1 and "disk is full" in str(error) and str(tmp_path / "cache.sqlite") in str(error)
        assert cache._error(sqlite3.DatabaseError("database disk image is malformed")).exit_code == 2
