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


def test_damaged_run_folders_are_listed_skipped_and_named(tmp_path):
    from persona_exp.store import scan_runs

    good = _write(tmp_path, "loo", "20260101-000000-aaaa", "1")
    lost_metrics = _write(tmp_path, "loo", "20260102-000000-bbbb", "2")
    cut_table = _write(tmp_path, "loo", "20260103-000000-cccc", "3")
    no_manifest = _write(tmp_path, "loo", "20260104-000000-dddd", "4")
    (lost_metrics / "metrics.json").unlink()
    data = (cut_table / "calls.parquet").read_bytes()
    (cut_table / "calls.parquet").write_bytes(data[: len(data) // 2])  # a copy cut short
    (no_manifest / "manifest.json").unlink()
    runs, damaged = scan_runs(tmp_path)
    assert [r.path for r in runs] == [good]
    assert {d.run_id: d.why for d in damaged} == {
        "20260102-000000-bbbb": "metrics.json is missing",
        "20260103-000000-cccc": "table calls.parquet is cut short or unreadable",
        "20260104-000000-dddd": "manifest.json is missing",
    }
    assert resolve_run(tmp_path, "latest").path == good  # latest never lands on a damaged run
    with pytest.raises(DataError, match="is damaged .table calls.parquet is cut short"):
        resolve_run(tmp_path, "20260103-000000-cccc")


def test_a_table_damaged_after_listing_is_a_clear_error(tmp_path):
    path = _write(tmp_path, "loo", "20260101-000000-aaaa", "1")
    info = resolve_run(tmp_path, "latest")
    (path / "calls.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(DataError, match=r"calls\.parquet cannot be read"):
        load_run(info)


def test_run_names_resolve_to_the_newest_run_carrying_them(tmp_path):
    from persona_exp.errors import InvalidArgumentError
    from persona_exp.store import check_run_name

    for run_id, created, name in (("20260101-000000-aaaa", "1", "pilot"), ("20260102-000000-bbbb", "2", "full"), ("20260103-000000-cccc", "3", "pilot")):
        write_run(tmp_path, "loo", run_id, {"created": created, "name": name}, {}, {"calls": pl.DataFrame({"k": ["a"]})})
    assert resolve_run(tmp_path, "pilot").run_id == "20260103-000000-cccc"
    assert resolve_run(tmp_path, "full").run_id == "20260102-000000-bbbb"
    for bad in ("latest", "latest-2", "has space", "a/b", "", "x" * 65, "-dash"):
        with pytest.raises(InvalidArgumentError, match="run name"):
            check_run_name(bad)
    check_run_name("pilot-20.v2_a")
