"""Every experiment states the units its intervals resample and marks what
survives the multiplicity correction; the shipped conditioning spec prints no
zero-width interval; the spec's analysis block is checked and used."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from persona_exp.errors import SpecError
from persona_exp.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "loo": ["population.size=300", "experiment.n_personas=8", "experiment.n_questions=6", "experiment.attributes=[age, sex, religion, income]"],
    "dpf": ["population.size=20", "experiment.n_train=4", "experiment.n_seen_test=2", "experiment.n_heldout=2"],
    "agreement": ["population.size=40", "experiment.n_personas=10", "experiment.n_questions=6"],
    "conditioning": ["population.size=40", "experiment.n_personas=10", "experiment.n_questions=6"],
    "wikipersona": ["population.size=8"],
}
UNITS = {"loo": r"8 personas x 6 questions", "dpf": r"\d+ personas x \d+ prompts", "agreement": "10 personas x 6 questions",
         "conditioning": "10 personas x 6 questions", "wikipersona": r"\d+ personas x \d+ questions"}


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_headline_states_its_units_and_its_correction(tmp_path, kind):
    out = run(ROOT / "experiments" / f"{kind}.yaml", [f"output.dir={tmp_path}", "experiment.n_resamples=200", *SMALL[kind]], progress=False)
    a = out.analysis
    design = a.title.split("\n")[1]
    assert re.search(r"95% CI over .*" + UNITS[kind], design), design
    assert "Holm correction at 0.05" in design and "null:" in design
    head = a.metrics["headline"]
    assert head and all(re.fullmatch(r"\d+ \w+s?( x \d+ \w+s?)?", m["over"]) for m in head)
    tested = [m for m in head if m["p"] == m["p"]]
    assert tested and all(m["p_adjusted"] >= m["p"] for m in tested)
    assert all(m["survives"] == (m["p_adjusted"] <= 0.05) for m in tested)
    for m in head:  # an interval is real, or missing with the reason
        assert (m["high"] > m["low"]) if m["warning"] is None else (m["warning"] and (m["high"] > m["low"] or math.isnan(m["high"]))), m
    assert "survives" in a.headline.columns and "over" in a.headline.columns


def test_shipped_conditioning_spec_has_no_zero_width_interval(tmp_path):
    out = run(ROOT / "experiments" / "conditioning.yaml", [f"output.dir={tmp_path}"], progress=False)
    rows = {(r["mode"], r["critic"]): r for r in out.analysis.headline.iter_rows(named=True)}
    for key, r in rows.items():
        assert r["ci_high"] > r["ci_low"], (key, r)
    # Neither the answer (mode none) nor the helpfulness critic sees the persona: questions are what vary.
    assert rows[("none", "helpfulness")]["over"] == "10 questions"
    assert rows[("persona", "helpfulness")]["over"] == "30 personas x 10 questions"
    for r in out.analysis.tables["conditioning_slices"].iter_rows(named=True):  # slices: a real interval or a stated reason
        assert r["ci_high"] > r["ci_low"] or (math.isnan(r["ci_low"]) and "too few" in r["note"]), r


def test_loo_ranking_has_rank_intervals_and_says_if_the_top_is_separable(tmp_path):
    out = run(ROOT / "experiments" / "loo.yaml", [f"output.dir={tmp_path}", "experiment.n_resamples=200", *SMALL["loo"],
                                                  "models.judge.sim.effects={religion: 6.0}"], progress=False)
    head = out.analysis.headline
    ok = head.filter(head["rank_low"].is_not_nan())
    assert ok.height >= 2 and (ok["rank_low"] >= 1).all() and (ok["rank_high"] <= head.height).all() and (ok["rank_low"] <= ok["rank_high"]).all()
    ranking = out.analysis.metrics["ranking"]
    assert ranking["top"] == head["attribute"][0] and ranking["sentence"] in out.analysis.title
    assert ranking["separable"] in (True, False, None)
    if ranking["separable"] is not None:
        assert ranking["separable"] == (ranking["low"] > 0)


def test_analysis_block_is_checked_and_used(tmp_path):
    spec = ROOT / "experiments" / "agreement.yaml"
    base = [f"output.dir={tmp_path}", "experiment.n_resamples=200", *SMALL["agreement"]]
    bh = run(spec, [*base, "analysis.multiplicity=bh"], progress=False)
    assert bh.analysis.metrics["multiplicity"]["method"] == "bh" and "Benjamini-Hochberg" in bh.analysis.title
    assert bh.manifest["spec"]["analysis"] == {"multiplicity": "bh"}
    with pytest.raises(SpecError, match=r"analysis\.multiplicity"):
        run(spec, [*base, "analysis.multiplicity=bonferroni"], progress=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec.read_text() + "analysis:\n  multiplicty: holm\n")
    with pytest.raises(SpecError, match=r"bad\.yaml:\d+:\d+: analysis\.multiplicty: unknown key"):
        run(bad, base, progress=False)
