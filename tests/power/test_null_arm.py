"""The null arm of the brute-force kinds: each design's replicates run again
in a world where nothing is planted (every judge's effects, default effect
and quality at 0), for a false-positive rate beside the power: its survivors
stay within what Holm's correction promises while the planted effect is
detected, also when the study's own world has the quality term and a default
effect on; --no-null omits the rates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from persona_exp.cli import main
from persona_exp.pipeline import load_spec
from persona_exp.power.study import null_overrides

ROOT = Path(__file__).resolve().parents[2] / "experiments"
ALPHA = 0.05
# WikiPersonas at a small design; with no shared quality term and no default effect only the planted name effect moves the judge.
WIKI = [str(ROOT / "wikipersona.yaml"), "--set", "experiment.n_personal=3", "--set", "experiment.n_divergent=3",
        "--set", "models.judge.sim.quality=0", "--default-effect", "0"]


def _run(tmp_path, capsys, *args: str) -> dict:
    code = main(["power", *WIKI, "--set", f"output.dir={tmp_path}", *args, "--json"])
    assert code == 0
    return json.loads(capsys.readouterr().out)


def test_null_arm_false_positives_low_while_power_high(tmp_path, capsys):
    reps = 8
    page = tmp_path / "power.html"
    out = _run(tmp_path, capsys, "--effect", "name=8", "--reps", str(reps), "--html", str(page))
    assert out["simulated"] is True and out["method"] == "brute" and out["null_arm"] is True
    (d,) = out["designs"]
    assert d["power"]["win_rate[name]"]["power"] >= 0.8
    arm = d["null_arm"]
    assert arm["simulated"] is True and arm["reps"] == reps
    assert sorted(arm["metrics"]) == sorted(d["power"]) and arm["tests"] == reps * len(arm["metrics"])
    # Holm bounds the share of replicates with any survivor by alpha; allow three Monte-Carlo standard errors.
    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)
    assert 0 <= d["familywise_false_positive"] <= bound
    assert 0 <= d["false_positive_rate"] <= d["familywise_false_positive"]  # a test's rate never exceeds the any-survivor rate
    assert d["familywise_false_positive_se"] == pytest.approx(math.sqrt(d["familywise_false_positive"] * (1 - d["familywise_false_positive"]) / reps))
    assert math.isfinite(d["false_positive_rate_se"]) and "SIMULATED null arm" in d["false_positive_note"]
    # The null arm removed the planted effect: the name condition no longer wins as it did with the effect.
    assert arm["per_metric"]["win_rate[name]"] < d["power"]["win_rate[name]"]["power"]
    html = page.read_text()
    assert "SIMULATED null arm" in html and "any_false_pos" in html and "false_pos_per_test" in html


def test_no_null_omits_the_rates(tmp_path, capsys):
    out = _run(tmp_path, capsys, "--effect", "name=8", "--reps", "2", "--jobs", "1", "--no-null")
    (d,) = out["designs"]
    assert out["null_arm"] is False and d["false_positive_rate"] is None and "--no-null" in d["false_positive_note"]
    assert "null_arm" not in d and "familywise_false_positive" not in d and d["power"]


def test_the_null_arm_is_a_world_with_nothing_planted(tmp_path, capsys):
    # The shipped spec's own world (quality term on, default effect 1): the study's replicates are not a null, the arm's are.
    code = main(["power", str(ROOT / "wikipersona.yaml"), "--set", "experiment.n_personal=3", "--set", "experiment.n_divergent=3",
                 "--set", f"output.dir={tmp_path}", "--effect", "name=8", "--reps", "6", "--json"])
    assert code == 0
    (d,) = json.loads(capsys.readouterr().out)["designs"]
    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / 6)
    assert d["familywise_false_positive"] <= bound and d["power"]["win_rate[name]"]["power"] >= 0.8


def test_null_overrides_switch_off_every_judges_effects_and_quality():
    spec = load_spec(str(ROOT / "wikipersona.yaml"), ["models.judge.sim.default_effect=2.5"])
    assert null_overrides(spec) == ["models.judge.sim.effects={}", "models.judge.sim.default_effect=0", "models.judge.sim.quality=0"]
    nulled = load_spec(str(ROOT / "wikipersona.yaml"), ["models.judge.sim.effects={name: 4}", *null_overrides(spec)])
    sim = nulled.models["judge"].sim
    assert (sim.effects, sim.default_effect, sim.quality) == ({}, 0.0, 0.0)
