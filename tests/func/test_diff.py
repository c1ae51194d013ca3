"""`persona-exp diff`: two LOO runs that differ by one attribute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "loo.yaml"
EXE = Path(sys.executable).with_name("persona-exp")
BASE = ["--set", "population.size=300", "--set", "experiment.n_personas=8", "--set", "experiment.n_questions=6", "--set", "experiment.n_resamples=200", "--no-progress"]


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=dict(os.environ))


def test_diff_of_runs_differing_by_one_attribute(tmp_path):
    assert cli(tmp_path, "run", str(SPEC), *BASE, "--set", "experiment.attributes=[age, sex, religion]").returncode == 0
    assert cli(tmp_path, "run", str(SPEC), *BASE, "--set", "experiment.attributes=[age, sex, religion, marital_status]").returncode == 0
    r = cli(tmp_path, "diff", "latest~1", "latest", "--json", "--n-resamples", "300")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert [c["field"] for c in d["spec"]] == ["experiment.attributes"]
    assert d["plan"]["added"] > 0 and d["plan"]["removed"] == 0 and d["plan"]["reused"] > 0
    assert d["plan"]["served_from_cache_in_b"] == d["plan"]["reused"]
    metrics = {m["metric"]: m for m in d["metrics"]}
    assert set(metrics) == {"kappa[age]", "kappa[sex]", "kappa[religion]"}  # shared attributes only
    for m in metrics.values():
        assert m["low"] <= 0 <= m["high"] and not m["flagged"]
    assert d["flips"]["total"] == 0

    md = cli(tmp_path, "diff", "latest~1", "latest", "--md")
    assert md.returncode == 0 and "| kappa[age] |" in md.stdout and "experiment.attributes" in md.stdout


def test_diff_with_itself_and_across_experiments(tmp_path):
    assert cli(tmp_path, "run", str(SPEC), *BASE, "--set", "experiment.attributes=[age, sex]").returncode == 0
    same = json.loads(cli(tmp_path, "diff", "latest", "latest", "--json").stdout)
    assert same["spec"] == [] and same["plan"]["added"] == same["plan"]["removed"] == 0
    assert all(m["delta"] == 0 and m["low"] == 0 == m["high"] for m in same["metrics"])
    assert cli(tmp_path, "run", str(SPEC), *BASE, "--set", "experiment.attributes=[age, sex]", "--set", "name=other").returncode == 0
    r = cli(tmp_path, "diff", "latest~1", "latest")
    assert r.returncode == 2 and "different experiments" in r.stderr
    assert cli(tmp_path, "diff", "no-such-run").returncode == 2


# Every experiment kind diffs: one spec change, metrics paired over shared items.
KIND_CASES = {
    "dpf": (["population.size=20", "experiment.n_train=4", "experiment.n_seen_test=2", "experiment.n_heldout=2"], "models.judge.sim.noise=3.0",
            "prefers_revision[all]"),
    "conditioning": (["population.size=40", "experiment.n_personas=10", "experiment.n_questions=4"], "models.critic.sim.noise=3.0",
                     "accuracy[persona/personalization]"),
    "agreement": (["population.size=40", "experiment.n_personas=10", "experiment.n_questions=4"], "models.judge_c.sim.noise=3.0", "kappa[judge_a~judge_c]"),
    "wikipersona": (["population.size=8"], "models.judge.sim.noise=3.0", "win_rate[name]"),
}


@pytest.mark.parametrize("kind", sorted(KIND_CASES))
def test_every_kind_diffs_over_shared_items(tmp_path, kind):
    base, change, metric = KIND_CASES[kind]
    spec = ROOT / "experiments" / f"{kind}.yaml"
    sets = [a for s in [*base, "experiment.n_resamples=200"] for a in ("--set", s)]
    assert cli(tmp_path, "run", str(spec), *sets, "--no-progress").returncode == 0
    r = cli(tmp_path, "run", str(spec), *sets, "--set", change, "--no-progress")
    assert r.returncode == 0, r.stderr
    d = json.loads(cli(tmp_path, "diff", "latest~1", "latest", "--json", "--n-resamples", "200").stdout)
    field = change.split("=")[0]
    changed = [c["field"] for c in d["spec"]]  # a sim block that was unset shows all its fields
    assert field in changed and all(c.startswith(field.rsplit(".", 1)[0]) for c in changed)
    metrics = {m["metric"]: m for m in d["metrics"]}
    m = metrics[metric]
    assert m["items"] > 0 and m["low"] <= m["delta"] <= m["high"]
    assert m["delta"] == pytest.approx(m["b"] - m["a"])
    # Noisier judging flips some judgments, and only judge calls were re-run.
    assert d["flips"]["total"] > 0
    same = json.loads(cli(tmp_path, "diff", "latest", "latest", "--json", "--n-resamples", "200").stdout)
    assert same["flips"]["total"] == 0 and all(x["delta"] == 0 for x in same["metrics"])
