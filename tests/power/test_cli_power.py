"""`persona-exp power`: the table, --json, --html, metric-scale effects with
their calibration, the brute-force path of another experiment kind, and
one-paragraph errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_exp.cli import main

ROOT = Path(__file__).resolve().parents[2] / "experiments"
SMALL = ["--set", "experiment.attributes=[religion,age,sex,income]", "--set", "experiment.n_questions=5", "--set", "population.size=150"]


def test_json_html_and_calibration(tmp_path, capsys):
    page = tmp_path / "power.html"
    code = main(["power", str(ROOT / "loo.yaml"), *SMALL, "--set", f"output.dir={tmp_path}", "--effect", "religion=kappa-0.2",
                 "--grid", "experiment.n_personas=5,10", "--reps", "12", "--default-effect", "0", "--json", "--html", str(page)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["simulated"] is True and out["title"].startswith("SIMULATED")
    assert [d["design"]["experiment.n_personas"] for d in out["designs"]] == [5, 10]
    assert all(d["reps"] == 12 and 0 <= d["power"]["religion"]["power"] <= 1 for d in out["designs"])
    assert all(d["cost_usd"] is None and "n/a" in d["cost_note"] and d["calls"] > 0 for d in out["designs"])
    assert out["designs"][0]["calls"] < out["designs"][1]["calls"]
    (cal,) = out["calibration"]
    gaps = [p["kappa_gap"] for p in cal["curve"]]
    assert gaps[-1] < -0.2 < gaps[0]  # the asked gap lies inside the calibrated range
    assert out["effects"][0]["sim_size"] == pytest.approx(cal["sim_size"]) and cal["sim_size"] > 0
    html = page.read_text()
    assert "SIMULATED" in html and "<svg" in html and 'data-plot="power"' in html and "Calibration of religion" in html


def test_table(tmp_path, capsys):
    code = main(["power", str(ROOT / "loo.yaml"), *SMALL, "--set", f"output.dir={tmp_path}", "--effect", "religion=8",
                 "--grid", "experiment.n_personas=6", "--reps", "6", "--jobs", "1", "--target", "0.01"])
    text = capsys.readouterr().out
    assert code == 0
    assert "SIMULATED power per design" in text and "power[religion]" in text and "cost n/a" in text


def test_brute_force_path_for_another_kind(tmp_path, capsys):
    code = main(["power", str(ROOT / "agreement.yaml"), "--set", f"output.dir={tmp_path}", "--set", "experiment.n_personas=6",
                 "--set", "experiment.n_questions=5", "--set", "population.size=40", "--reps", "3", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["method"] == "brute" and out["kind"] == "agreement"
    (d,) = out["designs"]
    assert d["reps"] == 3 and d["power"] and all(0 <= v["power"] <= 1 for v in d["power"].values())
    assert any(k.startswith("kappa") for k in d["power"])


@pytest.mark.parametrize("args, words", [
    (["--effect", "religion"], "ATTRIBUTE=SIZE"),
    (["--effect", "religon=2"], "religion"),
    (["--effect", "religion=kappa-1.5"], "between 0 and 1"),
    (["--grid", "experiment.n_personas=ten"], "whole numbers"),
    (["--grid", "experiment.k=2,3", "--method", "bulk"], "--method brute"),
    (["--reps", "1"], "--reps"),
    (["--target", "1.5"], "--target"),
])
def test_bad_input_is_one_paragraph(tmp_path, capsys, args, words):
    code = main(["power", str(ROOT / "loo.yaml"), "--set", f"output.dir={tmp_path}", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err and "Traceback" not in err and err.count("\n") == 1


def test_metric_scale_word_follows_the_kind(tmp_path, capsys):
    code = main(["power", str(ROOT / "agreement.yaml"), "--set", f"output.dir={tmp_path}", "--effect", "religion=winrate+0.1"])
    assert code == 2 and "religion=kappa+D" in capsys.readouterr().err
