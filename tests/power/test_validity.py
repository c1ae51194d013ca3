"""Validity of the power estimates, by simulation: the bulk path agrees with
the brute-force path (the whole pipeline per replicate), power grows with the
design, and with nothing planted the detection rate is what the test and its
multiplicity correction promise."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from persona_exp.power import Study, parse_effect, parse_grid, run_study

SPEC = str(Path(__file__).resolve().parents[2] / "experiments" / "loo.yaml")
SMALL = ["experiment.attributes=[religion,age,sex,income]", "experiment.n_questions=5", "population.size=100"]


def _study(tmp_path, effects, grid, reps, method="bulk", extra=(), pool_factor=4.0):
    return run_study(Study(SPEC, [*SMALL, f"output.dir={tmp_path}", *extra], [parse_effect(e, "loo") for e in effects], parse_grid(grid),
                           reps=reps, method=method, default_effect=0.0, pool_factor=pool_factor, seed=3))


def test_bulk_agrees_with_brute_force(tmp_path):
    """Same design, same planted effect: the two estimates of power agree
    within their Monte-Carlo error (brute force: fresh population, questions
    and judge draw per replicate)."""
    grid = ["experiment.n_personas=8"]
    bulk = _study(tmp_path, ["religion=8"], grid, 300)["designs"][0]
    brute = _study(tmp_path, ["religion=8"], grid, 30, method="brute")["designs"][0]
    pb, pf = bulk["power"]["religion"], brute["power"]["religion"]
    assert brute["reps"] == 30 and bulk["reps"] == 300
    assert 0.1 < pf["power"] < 0.9, "the design should sit where power discriminates"
    assert abs(pb["power"] - pf["power"]) <= 3 * math.hypot(pb["mc_se"], pf["mc_se"])
    # The intervals the analysis reports have the same width on both paths (within 15%).
    assert pb["mean_width"] == pytest.approx(pf["mean_width"], rel=0.15)


def test_power_grows_with_design_size(tmp_path):
    designs = _study(tmp_path, ["religion=6"], ["experiment.n_personas=5,10,20"], 150, pool_factor=2.0)["designs"]
    powers = [d["power"]["religion"] for d in designs]
    for small, large in zip(powers, powers[1:]):
        assert large["power"] >= small["power"] - 2 * math.hypot(small["mc_se"], large["mc_se"])
    assert powers[-1]["power"] - powers[0]["power"] > 3 * math.hypot(powers[0]["mc_se"], powers[-1]["mc_se"])
    widths = [p["mean_width"] for p in powers]
    assert widths == sorted(widths, reverse=True)


@pytest.mark.parametrize("method", ["none", "holm"])
def test_null_detection_rate_matches_the_promise(tmp_path, method):
    """Nothing planted and no persona effect at all: without correction each
    two-sided test flags about alpha = 0.05 of the time; with Holm's, the
    share of replicates with any flag is at most alpha."""
    reps = 300
    d = _study(tmp_path, [], ["experiment.n_personas=6"], reps, extra=[f"analysis.multiplicity={method}"], pool_factor=3.0)["designs"][0]
    if method == "none":
        se = math.sqrt(0.05 * 0.95 / (reps * 4)) * 2  # tests share questions and the pool: allow twice the independent-test error
        assert abs(d["flagged_rate"] - 0.05) <= 3 * se
    else:
        assert d["familywise_flagged"] <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)
        assert d["familywise_flagged"] >= d["familywise_false_positive"]
