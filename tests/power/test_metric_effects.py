"""Effects on the metric's own scale for the brute-force kinds (DPF's
prefers-revision rate here): the calibrated simulator effect, run through the
full pipeline, gives the asked value within Monte-Carlo error; bad effect
strings and values outside the calibrated range are exit-2 errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from persona_exp.cli import main

ROOT = Path(__file__).resolve().parents[2] / "experiments"
# DPF at the calibration's own small design, so the study's replicates and the calibration's estimate the same value.
DPF = [str(ROOT / "dpf.yaml"), "--set", "population.size=20", "--set", "experiment.n_train=4", "--set", "experiment.n_seen_test=2",
       "--set", "experiment.n_heldout=2"]


def test_calibrated_size_gives_the_asked_rate(tmp_path, capsys):
    asked = 0.22
    page = tmp_path / "power.html"
    code = main(["power", *DPF, "--set", f"output.dir={tmp_path}", "--effect", f"religion=rate+{asked}", "--reps", "12",
                 "--calibration-draws", "6", "--json", "--html", str(page)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["method"] == "brute"
    (cal,) = out["calibration"]
    assert cal["metric"] == "prefers_revision[all]" and cal["draws"] == 6 and "0.5" in cal["value_is"]
    curve = cal["curve"]
    values = [c["value"] for c in curve]
    assert min(values) < asked < max(values)
    assert curve[0]["sim_size"] < cal["sim_size"] < curve[-1]["sim_size"]
    assert out["effects"][0]["sim_size"] == pytest.approx(cal["sim_size"]) and out["effects"][0]["on"] == "prefers_revision[all]"
    # The two curve points around the calibrated size bound the Monte-Carlo error of the calibration itself.
    near = [c for c in curve if c["sim_size"] <= cal["sim_size"]][-1:] + [c for c in curve if c["sim_size"] >= cal["sim_size"]][:1]
    cal_se = max(c["mc_se"] for c in near)
    (d,) = out["designs"]
    seen = d["metric_values"]["religion=rate+0.22"]
    assert seen["asked"] == pytest.approx(asked) and d["reps"] == 12
    assert abs(seen["mean"] - asked) <= 3 * math.hypot(seen["mc_se"], cal_se)
    # The power is reported for the metric the effect refers to.
    assert list(d["power"]) == ["prefers_revision[all]"]
    html = page.read_text()
    assert "Calibration of religion" in html and "SIMULATED" in html and "observed[religion=rate+0.22]" in html


def test_out_of_calibrated_range_is_exit_2(tmp_path, capsys):
    code = main(["power", *DPF, "--set", f"output.dir={tmp_path}", "--effect", "religion=rate-0.45", "--reps", "2", "--calibration-draws", "2"])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # the lines before are the progress of the calibration
    assert code == 2 and "Traceback" not in err
    assert "reaches values from" in last and "SIMULATED calibration" in last and "--effect religion=rate-0.45" in last


@pytest.mark.parametrize("spec, effect, words", [
    ("dpf.yaml", "religion=winrate+0.1", "religion=rate+D"),
    ("dpf.yaml", "religion=rate+1.5", "between 0 and 1"),
    ("dpf.yaml", "religion=rate*0.1", "neither a number"),
    ("wikipersona.yaml", "name=rate+0.1", "name=winrate+D"),
    ("conditioning.yaml", "religion=kappa+0.1", "religion=accuracy+D"),
    ("loo.yaml", "religion=kappa+0.1", "religion=kappa-DROP"),
])
def test_bad_metric_effects_are_exit_2(tmp_path, capsys, spec, effect, words):
    code = main(["power", str(ROOT / spec), "--set", f"output.dir={tmp_path}", "--effect", effect])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err and "Traceback" not in err and err.count("\n") == 1


def test_leave_one_out_metric_effect_stays_on_the_bulk_path(tmp_path, capsys):
    code = main(["power", str(ROOT / "loo.yaml"), "--set", f"output.dir={tmp_path}", "--effect", "religion=kappa-0.1", "--method", "brute"])
    assert code == 2 and "bulk path" in capsys.readouterr().err
