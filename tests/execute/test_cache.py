"""The SQLite call cache: durable, shareable, never holding errors or secrets."""

import subprocess
import sys

import pytest

from persona_exp.errors import DataError
from persona_exp.execute import CallCache


def test_round_trip_and_persistence(tmp_path):
    path = tmp_path / "c" / "cache.sqlite"
    with CallCache(path) as cache:
        cache.put("k1", "answer one", {"prompt_tokens": 3, "completion_tokens": 2}, "gpt-x-2024")
        assert cache.get("missing") is None
    with CallCache(path) as cache:
        hit = cache.get("k1")
        assert (hit.response, hit.usage, hit.model) == ("answer one", {"completion_tokens": 2, "prompt_tokens": 3}, "gpt-x-2024")


def test_bulk_lookup_spans_batches(tmp_path):
    with CallCache(tmp_path / "cache.sqlite") as cache:
        for i in range(0, 3000, 2):
            cache.put(f"k{i}", f"a{i}")
        wanted = [f"k{i}" for i in range(3000)]
        hits = cache.get_many(wanted)
        assert set(hits) == {f"k{i}" for i in range(0, 3000, 2)}
        assert hits["k1000"].response == "a1000"
        assert cache.contains_many(wanted) == set(hits)


def test_prune_by_keep_set_and_refuses_blanket_delete(tmp_path):
    with CallCache(tmp_path / "cache.sqlite") as cache:
        for i in range(10):
            cache.put(f"k{i}", "x")
        assert cache.prune(keep=[f"k{i}" for i in range(4)]) == 6
        assert cache.stats()["calls"] == 4
        assert cache.prune(older_than_days=1) == 0
        with pytest.raises(DataError):
            cache.prune()


def test_two_processes_write_one_cache(tmp_path):
    path = tmp_path / "cache.sqlite"
    CallCache(path).close()
    code = (
        "import sys\nfrom persona_exp.execute import CallCache\n"
        "c = CallCache(sys.argv[1])\n"
        "for i in range(400):\n    c.put(f'{sys.argv[2]}-{i}', 'r')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), tag]) for tag in ("p", "q")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with CallCache(path) as cache:
        assert cache.stats()["calls"] == 800


def test_a_file_that_is_not_a_cache_is_a_clear_error(tmp_path):
    bad = tmp_path / "cache.sqlite"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DataError, match="cache.sqlite"):
        CallCache(bad)
