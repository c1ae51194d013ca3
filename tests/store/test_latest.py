"""`latest` is per experiment when asked (`loo:latest~1`), `diff latest~1
latest` compares two runs of one experiment whatever ran since, and a run
where every call failed is listed but never `latest`."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from persona_exp.cli import main as cli
from persona_exp.errors import DataError
from persona_exp.store import resolve_run


def _store(root: Path, experiment: str, run_id: str, created: str, calls: int, failed: int, overrides=()) -> None:
    d = root / "runs" / experiment / run_id
    d.mkdir(parents=True)
    manifest = {"experiment": experiment, "run_id": run_id, "created": created, "kind": "loo", "overrides": list(overrides),
                "counts": {"calls": calls, "cached": 0, "ran": calls, "failed": failed, "failures": {"transport": failed} if failed else {}}}
    (d / "manifest.json").write_text(json.dumps(manifest))
    (d / "metrics.json").write_text("{}")
    pl.DataFrame({"key": ["k"]}).write_parquet(d / "calls.parquet")  # a whole run folder: damaged ones are never latest


@pytest.fixture
def root(tmp_path):
    r = tmp_path / ".persona-exp"
    _store(r, "loo", "r1", "2026-01-01T00:00:01", 10, 0)
    _store(r, "loo", "r2", "2026-01-01T00:00:02", 10, 3, ["seed=2", "experiment.n_personas=8"])
    _store(r, "dpf", "d1", "2026-01-01T00:00:03", 10, 0)
    _store(r, "loo", "r3", "2026-01-01T00:00:04", 10, 10)  # nothing succeeded
    return r


def test_latest_per_experiment_and_skipping_runs_without_answers(root):
    assert resolve_run(root, "latest").run_id == "d1"  # r3 has no answers
    assert resolve_run(root, "loo:latest").run_id == "r2"
    assert resolve_run(root, "loo:latest~1").run_id == "r1"
    assert resolve_run(root, "latest", "loo").run_id == "r2"
    assert resolve_run(root, "r3").run_id == "r3"  # still reachable by id
    with pytest.raises(DataError, match="only 2 runs with answers are stored for .loo..*1 more where every call failed"):
        resolve_run(root, "loo:latest~2")
    with pytest.raises(DataError, match="experiment:latest"):
        resolve_run(root, "loo:r1")


def test_runs_lists_status_and_overrides(root, capsys):
    assert cli(["runs", "--dir", str(root), "--json"]) == 0
    rows = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["r1"]["status"] == "ok" and rows["r2"]["status"] == "some failed" and rows["r3"]["status"].startswith("no answers")
    assert rows["r2"]["overrides"] == "seed=2 experiment.n_personas=8"


def test_diff_latest_1_latest_compares_two_runs_of_the_latest_experiment(root, monkeypatch, capsys):
    import persona_exp.diff as diff

    _store(root, "dpf", "d2", "2026-01-01T00:00:05", 10, 0)
    seen = []

    def fake(a, b, **kw):
        seen.append((a.run_id, b.run_id))
        raise DataError("stop here")

    monkeypatch.setattr(diff, "diff_runs", fake)
    assert cli(["diff", "latest~1", "latest", "--dir", str(root)]) == 2
    assert cli(["diff", "loo:latest~1", "loo:latest", "--dir", str(root)]) == 2
    assert seen == [("d1", "d2"), ("r1", "r2")]
