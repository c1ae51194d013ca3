"""The simulator offers no shortcut a trained model or an analysis could pick
up instead of the planted effects: its judge does not prefer length, DPF
revisions are as often shorter as longer than the answers they revise, and a
WikiPersonas prefix wins only through what it tells about the judge's persona.
Measured through the real pipeline (`persona-exp run`) on the shipped specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from persona_exp.cli import main
from persona_exp.execute import sim

ROOT = Path(__file__).resolve().parents[2]


def _run(out: Path, spec: str, *sets: str) -> Path:
    """Runs ``experiments/<spec>`` with ``--set`` overrides; returns the run's folder."""
    args = ["run", str(ROOT / "experiments" / spec), "--no-progress", "--set", f"output.dir={out}"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    (run_dir,) = (out / "runs").glob("*/*")
    return run_dir


def _words(col: str) -> pl.Expr:
    return pl.col(col).str.split(" ").list.len()


@pytest.mark.parametrize("seed", range(4))
def test_the_judge_does_not_prefer_longer_answers(seed):
    # Answers of one to six of the simulator's own sentences, so that a world's
    # taste for those sentences could favour length if features grew with it.
    pool = [*sim._OPENERS, *sim._BODIES, *sim._TAILORED]
    rng = np.random.default_rng(seed)
    judge = sim.Simulator({"seed": seed})
    longer_won = []
    for _ in range(1500):
        k_a, k_b = rng.choice(np.arange(1, 7), 2, replace=False)
        a, b = " ".join(rng.choice(pool, k_a)), " ".join(rng.choice(pool, k_b))
        verdict = judge.judge("Age: 30\nReligion: None\n\nWhich answer is better? Answer with A or B.", {"response_a": a, "response_b": b})
        longer_won.append((verdict == "A") == (k_a > k_b))
    share = float(np.mean(longer_won))
    assert 0.45 <= share <= 0.55, f"seed {seed}: the longer answer won {share:.3f} of 1500 comparisons"


def test_dpf_chosen_answers_are_not_the_longer_ones(tmp_path):
    run_dir = _run(tmp_path / "balanced", "dpf.yaml", "population.size=30", "experiment.n_resamples=300")
    pairs = pl.read_parquet(run_dir / "preferences.parquet").with_columns((_words("chosen") > _words("rejected")).alias("longer"))
    assert pairs.height == 600
    share = pairs["longer"].mean()
    print(f"DPF on the simulator: chosen longer than rejected in {share:.3f} of {pairs.height} pairs")
    assert 0.4 <= share <= 0.6, share
    # The persona prefers the revision whether it came out longer or shorter.
    for longer, g in pairs.group_by("longer"):
        assert g["persona_prefers_chosen"].mean() > 0.6, (longer, g["persona_prefers_chosen"].mean())


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_dpf_revision_length_follows_the_knob(tmp_path, share):
    run_dir = _run(tmp_path, "dpf.yaml", "population.size=10", "experiment.verify=false", f"models.generator.sim.longer_revisions={share}")
    pairs = pl.read_parquet(run_dir / "preferences.parquet")
    longer = (pairs.select(_words("chosen") > _words("rejected")).to_series()).mean()
    assert longer == share and pairs.height == 200


def _wikipersona(out: Path, seed: int, judge: str) -> tuple[pl.DataFrame, dict[str, dict]]:
    """The headline and each condition's row against `none`, conditions that
    tell the generator nothing (none, tag) or the name (name, gold)."""
    run_dir = _run(out, "wikipersona.yaml", f"seed={seed}", "experiment.conditions=[none, tag, name, gold]", "experiment.n_personal=8",
                   "experiment.n_divergent=8", "experiment.n_resamples=1000", judge)
    matrix = pl.read_parquet(run_dir / "wikipersona_matrix.parquet").filter(pl.col("opponent") == "none")
    return pl.read_parquet(run_dir / "wikipersona_conditions.parquet"), {r["condition"]: r for r in matrix.iter_rows(named=True)}


@pytest.mark.parametrize("seed", [0, 1])
def test_wikipersona_prefixes_carry_no_artefact(tmp_path, seed):
    # Nothing planted: the judge has no taste for who the person is, only the shared quality.
    head, vs_none = _wikipersona(tmp_path / "none", seed, "models.judge.sim.default_effect=0")
    assert not head["survives"].any(), head
    for c, row in vs_none.items():
        assert row["ci_low"] <= 0.5 <= row["ci_high"], (c, row)
    # Planted: the judge's persona (the name) matters; prefixes that tell the name win, the
    # opaque tag does not beat no prefix (with 12 people and near-certain verdicts its
    # interval is narrow around a per-person chance draw, so only the artefact's direction is checked).
    head, vs_none = _wikipersona(tmp_path / "planted", seed, "models.judge.sim.effects={name: 3.0}")
    survives = dict(zip(head["condition"], head["survives"]))
    assert survives["name"] and survives["gold"], head
    assert vs_none["name"]["ci_low"] > 0.5 and vs_none["gold"]["ci_low"] > 0.5, vs_none
    assert vs_none["tag"]["ci_low"] <= 0.5, vs_none["tag"]
