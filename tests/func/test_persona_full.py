"""PERSONA at paper scale: the shipped persona_full spec plans the paper's
317,200 pairs offline, and the persona split and prompt cycling behave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from persona_exp.errors import PlanError
from persona_exp.experiments.dpf import PersonaSplit
from persona_exp.pipeline import prepare

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "persona_full.yaml"
EXE = Path(sys.executable).with_name("persona-exp")


def test_a_smaller_persona_full_plans_200_pairs_per_persona_with_both_splits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prep = prepare(SPEC, ["population.size=30", "experiment.persona_split.test=0.36"], dry=True, progress=False, simulate=True)
    items = prep.design.items
    assert items.height == 30 * 200
    assert items.group_by("persona_id").len()["len"].to_list() == [200] * 30
    assert set(items["split"].unique()) == {"train", "test_seen", "test_heldout"}
    people = items.unique("persona_id")["persona_split"].value_counts()
    assert set(people["persona_split"]) == {"train", "test"}
    # 171 embedded prompts serve 150 + 50 per persona: some come again as replicates, never twice in one replicate
    assert items["replicate"].max() >= 1
    assert items.group_by("persona_id", "prompt_id", "replicate").len()["len"].max() == 1
    assert any("prompt_draws: cycle" in n for n in prep.design.notes)


def test_the_full_plan_shows_317200_pairs(tmp_path):
    r = subprocess.run([str(EXE), "plan", str(SPEC)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if "sim/" in line and "│" in line]
    requested = {line.split("│")[1].strip(): int(line.split("│")[3]) for line in rows}
    assert requested == {"base_answer": 317_200, "critique": 317_200, "revise": 317_200, "verify": 317_200}
    assert "calls" in r.stdout and "cost $" in r.stdout


def test_the_persona_split_is_seeded_exact_for_counts_and_prefix_stable_for_shares():
    ids = [f"p{i:04d}" for i in range(1, 1587)]
    by_count = PersonaSplit(test=568).assign(ids, 0)
    assert by_count.count("test") == 568 and by_count == PersonaSplit(test=568).assign(ids, 0)
    assert by_count != PersonaSplit(test=568).assign(ids, 1)
    share = PersonaSplit(test=0.36).assign(ids, 0)
    assert 0.30 < share.count("test") / len(ids) < 0.42
    assert PersonaSplit(test=0.36).assign(ids[:500], 0) == share[:500]  # growing the population moves nobody
    assert PersonaSplit(test=568, train=1018).assign(ids, 0) == by_count
    with pytest.raises(PlanError, match="train is 1000"):
        PersonaSplit(test=568, train=1000).assign(ids, 0)
    with pytest.raises(PlanError, match="population has 10"):
        PersonaSplit(test=568).assign(ids[:10], 0)


@pytest.mark.parametrize("value", [0, 1.5, -3, True, "many"])
def test_a_bad_persona_split_is_a_spec_error(tmp_path, value):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.read_text(encoding="utf-8").replace("    test: 568", f"    test: {value}"), encoding="utf-8")
    r = subprocess.run([str(EXE), "plan", str(spec)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "persona_split" in r.stderr and f"{spec}:" in r.stderr


def test_without_cycling_too_few_prompts_is_an_error_that_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PlanError, match="prompt_draws: cycle"):
        prepare(SPEC, ["population.size=5", "experiment.prompt_draws=distinct", "experiment.persona_split.test=0.36"], dry=True, progress=False,
                simulate=True)


def test_export_keeps_one_persona_split(tmp_path, monkeypatch, capsys):
    import polars as pl

    from persona_exp.cli import main as cli

    monkeypatch.chdir(tmp_path)
    dpf = str(ROOT / "experiments" / "dpf.yaml")
    assert cli(["run", dpf, "--set", "population.size=40", "--set", "experiment.persona_split={test: 0.3}", "--no-progress"]) == 0
    parts = {}
    for which in ("train", "test", None):
        out = tmp_path / f"{which}.parquet"
        assert cli(["export", "latest", "--format", "parquet", "-o", str(out), *(["--persona-split", which] if which else [])]) == 0
        parts[which] = pl.read_parquet(out)
    assert set(parts["test"]["persona_split"]) == {"test"} and set(parts["train"]["persona_split"]) == {"train"}
    assert parts["test"].height + parts["train"].height == parts[None].height and parts["test"].height > 0
    assert not set(parts["test"]["persona_id"]) & set(parts["train"]["persona_id"])  # a persona is on one side only
    assert cli(["run", dpf, "--set", "population.size=40", "--no-progress"]) == 0
    capsys.readouterr()
    assert cli(["export", "latest", "--format", "jsonl", "-o", str(tmp_path / "x.jsonl"), "--persona-split", "test"]) == 2
    assert "has no persona split" in capsys.readouterr().err


def test_diff_of_runs_with_cycled_prompts_pairs_each_replicate_once(tmp_path, monkeypatch, capsys):
    """With ``prompt_draws: cycle`` a persona meets a prompt again as another
    replicate; the diff pairs (persona, prompt, replicate), so every pair of
    the design is compared exactly once."""
    from persona_exp.cli import main as cli
    from persona_exp.store.runs import load_run, resolve_run

    monkeypatch.chdir(tmp_path)
    dpf = str(ROOT / "experiments" / "dpf.yaml")
    sets = ["population.size=6", "experiment.n_train=150", "experiment.n_seen_test=20", "experiment.n_heldout=20", "experiment.prompt_draws=cycle"]
    args = [x for s in sets for x in ("--set", s)]
    assert cli(["run", dpf, *args, "--no-progress"]) == 0
    assert cli(["run", dpf, *args, "--set", "models.judge.sim.draw=1", "--no-progress"]) == 0
    capsys.readouterr()
    assert cli(["diff", "latest~1", "latest", "--json", "--n-resamples", "200"]) == 0
    out = json.loads(capsys.readouterr().out)
    prefs = load_run(resolve_run(tmp_path / ".persona-exp", "latest"))[1]["preferences"]
    assert prefs["replicate"].max() >= 1  # the design does repeat prompts
    per_split = dict(prefs.group_by("split").len().iter_rows())
    compared = {m["metric"]: m for m in out["metrics"] if m["status"] == "compared"}
    assert compared, out["metrics"]
    for split, n in per_split.items():
        m = next(m for name, m in compared.items() if split in name)
        assert m["comparison"].startswith(f"paired over {n} shared items"), m["comparison"]
