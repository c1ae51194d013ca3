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


def own_headline(cwd: Path, ref: str) -> dict:
    """A run's headline metrics as `show --json` reads them from its folder."""
    shown = json.loads(cli(cwd, "show", ref, "--json").stdout)
    return {m["metric"]: m for m in shown["metrics"]["headline"]}


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
    own_a, own_b = own_headline(tmp_path, "latest~1"), own_headline(tmp_path, "latest")
    assert set(metrics) == set(own_b) == set(own_a) | {"kappa[marital_status]"}  # every metric of both runs
    added = metrics["kappa[marital_status]"]
    assert added["status"] == "added" and added["a"] is None and added["delta"] is None and not added["flagged"]
    assert added["b"] == own_b["kappa[marital_status]"]["estimate"]
    for name in ("kappa[age]", "kappa[sex]", "kappa[religion]"):
        m = metrics[name]
        assert m["status"] == "compared" and m["comparison"].startswith("paired over 48 shared items")
        assert (m["a"], m["a_low"], m["a_high"]) == tuple(own_a[name][k] for k in ("estimate", "low", "high"))
        assert (m["b"], m["b_low"], m["b_high"]) == tuple(own_b[name][k] for k in ("estimate", "low", "high"))
        assert m["delta"] == 0 and not m["flagged"]  # the shared judgments were served from the cache
    assert d["flips"]["total"] == 0 and d["warnings"] == []

    md = cli(tmp_path, "diff", "latest~1", "latest", "--md")
    assert md.returncode == 0 and "| kappa[age] |" in md.stdout and "experiment.attributes" in md.stdout
    assert "| kappa[marital_status] | - |" in md.stdout and "| added |" in md.stdout


def test_diff_after_a_seed_change_compares_what_each_run_reported(tmp_path):
    """A new seed draws other personas and questions: few judgments are
    shared, so each run keeps its own values and the change is unpaired."""
    attrs = ["--set", "experiment.attributes=[age, sex, religion]"]
    assert cli(tmp_path, "run", str(SPEC), *BASE, *attrs).returncode == 0
    assert cli(tmp_path, "run", str(SPEC), *BASE, *attrs, "--set", "experiment.attributes=[age, sex, religion, income]", "--set", "seed=5").returncode == 0
    d = json.loads(cli(tmp_path, "diff", "latest~1", "latest", "--json").stdout)
    own_a, own_b = own_headline(tmp_path, "latest~1"), own_headline(tmp_path, "latest")
    metrics = {m["metric"]: m for m in d["metrics"]}
    assert set(metrics) == set(own_a) | set(own_b) and metrics["kappa[income]"]["status"] == "added"
    assert d["overlap"]["share"] < 0.5 and d["overlap"]["a"] == 3 * 48 and d["overlap"]["b"] == 4 * 48
    assert any(w.startswith("low overlap") for w in d["warnings"])
    for name in own_a:
        m = metrics[name]
        assert m["a"] == own_a[name]["estimate"] and m["b"] == own_b[name]["estimate"] and m["a_high"] == own_a[name]["high"]
        assert m["delta"] == pytest.approx(m["b"] - m["a"]) and m["comparison"].startswith("unpaired")
        if m["low"] is not None and m["low"] == m["low"]:  # the normal interval from the two runs' own standard errors
            se = (m["high"] - m["low"]) / (2 * 1.959964)
            assert se == pytest.approx((own_a[name]["se"] ** 2 + own_b[name]["se"] ** 2) ** 0.5, rel=1e-4)
    text = cli(tmp_path, "diff", "latest~1", "latest")
    assert text.returncode == 0 and "WARNING: low overlap" in text.stdout and "unpaired" in text.stdout
    assert "> **Warning:** low overlap" in cli(tmp_path, "diff", "latest~1", "latest", "--md").stdout


def test_diff_with_itself_and_across_experiments(tmp_path):
    assert cli(tmp_path, "run", str(SPEC), *BASE, "--set", "experiment.attributes=[age, sex]").returncode == 0
    same = json.loads(cli(tmp_path, "diff", "latest", "latest", "--json").stdout)
    assert same["spec"] == [] and same["plan"]["added"] == same["plan"]["removed"] == 0
    assert all(m["delta"] == 0 and not m["flagged"] and m["a"] == m["b"] for m in same["metrics"])
    assert cli(tmp_path, "run", str(SPEC), *BASE, "--set", "experiment.attributes=[age, sex]", "--set", "name=other").returncode == 0
    r = cli(tmp_path, "diff", "loo:latest", "other:latest")
    assert r.returncode == 2 and "different experiments" in r.stderr
    # `latest~1 latest` means the last two runs of the experiment that ran last: "other" has one.
    r = cli(tmp_path, "diff", "latest~1", "latest")
    assert r.returncode == 2 and "only 1 run with answers is stored for 'other'" in r.stderr
    assert cli(tmp_path, "diff", "no-such-run").returncode == 2


# Every experiment kind diffs: one spec change that keeps the design, so metrics are paired over shared items.
KIND_CASES = {
    "dpf": (["population.size=20", "experiment.n_train=4", "experiment.n_seen_test=2", "experiment.n_heldout=2"], "models.judge.sim.noise=3.0",
            "prefers_revision[all]"),
    "conditioning": (["population.size=40", "experiment.n_personas=10", "experiment.n_questions=6"], "models.critic.sim.noise=3.0",
                     "accuracy[persona/personalization]"),
    "agreement": (["population.size=40", "experiment.n_personas=10", "experiment.n_questions=6"], "models.judge_c.sim.noise=3.0", "kappa[judge_a~judge_c]"),
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
    assert m["items"] > 0 and m["low"] <= m["delta"] <= m["high"] and m["comparison"].startswith(f"paired over {m['items']:,} shared items")
    assert m["delta"] == pytest.approx(m["b"] - m["a"]) and d["overlap"]["share"] == 1.0
    assert not any(w.startswith("low overlap") for w in d["warnings"])
    # Noisier judging flips some judgments, and only judge calls were re-run.
    assert d["flips"]["total"] > 0
    same = json.loads(cli(tmp_path, "diff", "latest", "latest", "--json", "--n-resamples", "200").stdout)
    assert same["flips"]["total"] == 0 and all(x["delta"] == 0 for x in same["metrics"])
