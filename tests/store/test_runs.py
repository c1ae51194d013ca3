"""Run store: atomic writes, listing, and references like latest~1."""

import polars as pl
import pytest

from persona_exp.errors import DataError
from persona_exp.store import list_runs, load_run, resolve_run, write_run


def _write(root, exp, run_id, created):
    return write_run(root, exp, run_id, {"created": created, "experiment": exp}, {"m": 1.5}, {"calls": pl.DataFrame({"k": ["a", "b"]})})


def test_write_list_resolve_load(tmp_path):
    _write(tmp_path, "loo", "20260101-000000-aaaa", "2026-01-01T00:00:00")
    _write(tmp_path, "loo", "20260102-000000-bbbb", "2026-01-02T00:00:00")
    _write(tmp_path, "dpf", "20260103-000000-cccc", "2026-01-03T00:00:00")
    (tmp_path / "runs" / "loo" / ".tmp-broken").mkdir()  # a crashed write is invisible
    assert [r.run_id for r in list_runs(tmp_path, "loo")] == ["20260101-000000-aaaa", "20260102-000000-bbbb"]
    assert resolve_run(tmp_path, "latest").experiment == "dpf"
    assert resolve_run(tmp_path, "latest", "loo").run_id.endswith("bbbb")
    assert resolve_run(tmp_path, "latest~1", "loo").run_id.endswith("aaaa")
    info = resolve_run(tmp_path, "20260101")
    metrics, tables = load_run(info)
    assert metrics == {"m": 1.5} and tables["calls"]["k"].to_list() == ["a", "b"]


def test_bad_references_are_clear(tmp_path):
    with pytest.raises(DataError, match="no stored runs"):
        resolve_run(tmp_path, "latest")
    _write(tmp_path, "loo", "20260101-000000-aaaa", "1")
    _write(tmp_path, "loo", "20260101-000001-bbbb", "2")
    with pytest.raises(DataError, match="ambiguous"):
        resolve_run(tmp_path, "20260101")
    with pytest.raises(DataError, match="only 2 runs"):
        resolve_run(tmp_path, "latest~5")
    with pytest.raises(DataError, match="no stored run matches"):
        resolve_run(tmp_path, "zzz")


def test_failed_write_leaves_nothing(tmp_path):
    class Boom(pl.DataFrame):
        def write_parquet(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_run(tmp_path, "loo", "r1", {"created": "1"}, {}, {"t": Boom({"a": [1]})})
    assert list((tmp_path / "runs" / "loo").iterdir()) == []


def test_a_taken_run_id_gets_a_suffix_and_never_overwrites(tmp_path):
    first = _write(tmp_path, "loo", "20260101-000000-aaaa", "1")
    second = _write(tmp_path, "loo", "20260101-000000-aaaa", "1")
    assert first.name == "20260101-000000-aaaa" and second.name == "20260101-000000-aaaa-2"
    assert resolve_run(tmp_path, "latest").run_id == "20260101-000000-aaaa-2"
    assert load_run(resolve_run(tmp_path, "latest").__class__("loo", first.name, first, {}))[0] == {"m": 1.5}


def test_latest_follows_creation_time_not_id_order(tmp_path):
    # Two runs in the same second: ids sort by plan hash, "latest" must follow creation.
    _write(tmp_path, "loo", "20260101-000000-ffff", "2026-01-01T00:00:00.100000+00:00")
    _write(tmp_path, "loo", "20260101-000000-0000", "2026-01-01T00:00:00.900000+00:00")
    assert resolve_run(tmp_path, "latest").run_id == "20260101-000000-0000"
    assert resolve_run(tmp_path, "latest~1").run_id == "20260101-000000-ffff"
