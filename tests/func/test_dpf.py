"""The DPF preference dataset: split sizes, export format, dedup, and a
verification rate that follows the simulated reviser's strength."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from persona_exp.pipeline import prepare, run

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "dpf.yaml"


def _small(tmp_path: Path, *extra: str) -> list[str]:
    return [f"output.dir={tmp_path / 'out'}", "population.size=30", "experiment.n_train=6", "experiment.n_seen_test=3",
            "experiment.n_heldout=3", "experiment.n_resamples=300", *extra]


def test_dataset_splits_and_jsonl_export(tmp_path):
    outcome = run(SPEC, _small(tmp_path), progress=False)
    rows = [json.loads(line) for line in (outcome.run_dir / "preferences.jsonl").read_text().splitlines()]
    assert {"prompt", "chosen", "rejected", "persona", "persona_id", "split", "prompt_id", "topic"} <= set(rows[0])
    frame = pl.read_ndjson(outcome.run_dir / "preferences.jsonl")
    assert frame.height == 30 * 12
    sizes = dict(frame.group_by("split").len().iter_rows())
    assert sizes == {"train": 180, "test_seen": 90, "test_heldout": 90}
    assert frame.filter(pl.col("chosen") == pl.col("rejected")).height == 0
    # Held-out prompts never appear among any persona's train or seen-test prompts.
    held = set(frame.filter(pl.col("split") == "test_heldout")["prompt_id"])
    seen = set(frame.filter(pl.col("split") != "test_heldout")["prompt_id"])
    assert not held & seen
    # Within a persona, train and seen-test prompts are distinct.
    for _, g in frame.filter(pl.col("split") != "test_heldout").group_by("persona_id"):
        assert g["prompt_id"].n_unique() == g.height == 9
    parquet = pl.read_parquet(outcome.run_dir / "preferences.parquet")
    assert parquet.sort(["persona_id", "prompt_id"]).equals(frame.select(parquet.columns).sort(["persona_id", "prompt_id"]))


def test_base_answers_are_planned_once_per_prompt(tmp_path):
    prep = prepare(SPEC, _small(tmp_path))
    plan = prep.design.plan
    base = plan.by_step()["base_answer"]
    assert plan.requested["base_answer"] == 30 * 12
    assert len(base) == prep.design.items["prompt_id"].n_unique() < 30 * 12


def test_verification_rate_follows_generator_strength(tmp_path):
    weak = run(SPEC, _small(tmp_path, "models.generator.sim.strength=0"), progress=False).analysis.metrics["verification_rate"]
    strong = run(SPEC, _small(tmp_path, "models.generator.sim.strength=3"), progress=False).analysis.metrics["verification_rate"]
    assert strong["low"] > weak["high"], (weak, strong)
    assert 0.3 < weak["estimate"] < 0.8
