"""The LOO analysis recovers an effect planted in the simulated judge, and finds
none when none is planted."""

from __future__ import annotations

from pathlib import Path

from persona_exp.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "loo.yaml"
ATTRS = "[age, sex, marital_status, religion, education]"


def _run(tmp_path: Path, *extra: str):
    overrides = [
        f"output.dir={tmp_path / 'out'}",
        "population.size=400",
        f"experiment.attributes={ATTRS}",
        "experiment.n_personas=30",
        "experiment.n_questions=12",
        "experiment.n_resamples=500",
        *extra,
    ]
    return run(SPEC, overrides, progress=False)


def test_planted_effect_is_ranked_most_influential(tmp_path):
    outcome = _run(tmp_path, "models.judge.sim.effects={religion: 6.0}", "models.judge.sim.default_effect=0.2", "models.judge.sim.noise=0.3")
    table = outcome.analysis.headline
    assert table["attribute"][0] == "religion"
    planted = table.filter(table["attribute"] == "religion").row(0, named=True)
    others = table.filter(table["attribute"] != "religion")
    # The planted attribute's interval lies entirely below every other attribute's interval.
    assert planted["ci_high"] < others["ci_low"].min()


def test_no_planted_effect_no_attribute_stands_out(tmp_path):
    outcome = _run(tmp_path, "models.judge.sim.default_effect=1.0")
    table = outcome.analysis.headline
    # Every attribute's interval overlaps every other's: none is singled out.
    assert table["ci_high"].min() > table["ci_low"].max()
