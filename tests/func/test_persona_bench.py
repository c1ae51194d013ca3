"""persona-bench's evaluations, offline, through the command line: the debate
critic, the comparison evaluation, intervals on intersectional slices, and
leave-one-out on a target model's answers."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from persona_exp.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "conditioning.yaml"
SMALL = ["population.size=80", "experiment.n_personas=24", "experiment.n_questions=6", "experiment.n_resamples=300"]


def _run(tmp_path: Path, spec: Path, *sets: str) -> Path:
    args = ["run", str(spec), "--no-progress", "--set", f"output.dir={tmp_path / 'out'}"]
    for s in sets:
        args += ["--set", s]
    assert cli(args) == 0
    runs = sorted((tmp_path / "out" / "runs").glob("*/*/"))
    return runs[-1]


def _table(run: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(run / f"{name}.parquet")


def test_debate_comparison_and_intersectional_slices(tmp_path):
    run = _run(tmp_path, SPEC, *SMALL, "experiment.modes=[none, persona, cot]", "experiment.critics=[personalization, debate]", "experiment.rounds=2",
               "experiment.comparison=true", "experiment.slice_by=[[sex], [sex, marital_status]]")
    head = _table(run, "conditioning")
    debate = head.filter(pl.col("critic") == "debate")
    assert sorted(debate["mode"]) == ["cot", "none", "persona"]
    # The debate judge sees the persona: its answers vary by persona and question.
    assert (debate["over"] == "24 personas x 6 questions").all()
    assert (debate["ci_high"] > debate["ci_low"]).all()
    # The debate judge weighs what the debaters argue for: a planted preference is still
    # recovered, and its verdicts are not the personalization critic's.
    assert debate.filter(pl.col("mode") != "none")["survives"].all()
    verdicts = _table(run, "conditioning_answers").pivot(on="critic", index=["persona_id", "question_id", "mode", "sample"], values="passed")
    assert (verdicts["debate"] == verdicts["personalization"]).mean() < 0.85
    calls = _table(run, "calls")
    steps = dict(calls.group_by("step").len().iter_rows())
    # Two rounds, one argument per side per round, for every (persona, question, mode) answer; one verdict each.
    assert steps["debate:for"] == steps["debate:against"] == 2 * steps["critic:debate"] == 2 * 24 * 6 * 3

    comp = _table(run, "conditioning_comparison")
    assert sorted(comp["mode"]) == ["cot", "persona"] and (comp["against"] == "none").all()
    assert (comp["judgments"] == 24 * 6).all() and (comp["over"] == "24 personas x 6 questions").all()
    # The simulated generator tailors answers to the persona and the judge rewards it: a planted preference, recovered.
    assert (comp["ci_low"] > 0.5).all() and comp["survives"].all()

    slices = _table(run, "conditioning_slices")
    assert set(slices["slice"]) == {"sex", "sex x marital_status"}
    design = _table(run, "design").unique("persona_id")
    for r in slices.filter(pl.col("mode") == "persona").iter_rows(named=True):
        cond = pl.col("slice_sex") == r["slice_sex"]
        if r["slice"] == "sex x marital_status":
            cond &= pl.col("slice_marital_status") == r["slice_marital_status"]
        n = design.filter(cond).height
        # Each slice's interval is drawn over its own personas (crossed with the questions).
        assert r["over"] == f"{n} persona{'s' * (n != 1)} x 6 questions"
        if n < 5:  # the small-design note instead of an interval
            assert r["ci_low"] is None or r["ci_low"] != r["ci_low"]
            assert "too few" in r["note"]
        else:
            assert r["ci_low"] <= r["accuracy"] <= r["ci_high"]
    cslices = _table(run, "conditioning_comparison_slices")
    assert set(cslices["slice"]) == {"sex", "sex x marital_status"} and cslices["judgments"].sum() == 2 * 2 * 24 * 6


NULL_SETS = [*SMALL, "experiment.modes=[none, persona, cot]", "experiment.critics=[personalization]", "experiment.comparison=true",
             "experiment.slice_by=[[sex]]", "models.critic.sim.quality=0"]


def test_nothing_planted_no_condition_separable_and_a_planted_preference_recovered(tmp_path):
    # Nothing planted: no persona preference (default_effect 0) and no shared quality
    # (quality 0; with it on, the critic's own taste gives a mode a small real edge,
    # win rates of 0.51-0.58 at this size). Over five seeds, no comparison separates
    # from a coin: every interval holds 0.5 and no test survives the correction. The
    # accuracy tests (2 per seed) and slice tests (4 per seed) are noise too: at the 5%
    # family-wise level at most one of their 30 may survive by chance.
    chance = 0
    for seed in range(1, 6):
        run = _run(tmp_path / f"null{seed}", SPEC, *NULL_SETS, "models.critic.sim.default_effect=0", f"seed={seed}")
        comp = _table(run, "conditioning_comparison")
        assert comp.height == 2 and not comp["survives"].any(), (seed, comp)
        assert ((comp["ci_low"] <= 0.5) & (comp["ci_high"] >= 0.5)).all(), (seed, comp)
        assert not _table(run, "conditioning_comparison_slices")["survives"].any()
        chance += int(_table(run, "conditioning")["survives"].sum()) + int(_table(run, "conditioning_slices")["survives"].sum())
    assert chance <= 1, chance
    # The same design with the persona's preferences planted (still no shared quality): recovered.
    run = _run(tmp_path / "planted", SPEC, *NULL_SETS, "models.critic.sim.default_effect=1", "seed=1")
    comp = _table(run, "conditioning_comparison")
    assert (comp["ci_low"] > 0.5).all() and comp["survives"].all(), comp
    assert _table(run, "conditioning").filter(pl.col("mode") != "none")["survives"].all()


def test_bad_comparison_and_slices_are_named(tmp_path, capsys):
    base = ["run", str(SPEC), "--no-progress", "--set", f"output.dir={tmp_path}", "--set", "population.size=40"]
    assert cli([*base, "--set", "experiment.modes=[persona]", "--set", "experiment.comparison=true"]) == 2
    err = capsys.readouterr().err
    assert "experiment.comparison" in err and "add a mode" in err and "Traceback" not in err
    assert cli([*base, "--set", "experiment.slice_by=[[sex], [sex, no_such_attribute]]"]) == 2
    err = capsys.readouterr().err
    assert "slice_by[1][1]" in err and "unknown persona attribute 'no_such_attribute'" in err


LOO_TARGET = """\
name: loo_target
seed: 0
models:
  target:
    model: sim/generator
  judge:
    model: sim/judge
    sim: {effects: {religion: 6.0}, default_effect: 0.2, noise: 0.3}
population:
  size: 400
  filters: ["age >= 18"]
prompts:
  source: default
experiment:
  kind: loo
  answers: target
  attributes: [age, sex, marital_status, religion, education]
  n_personas: 30
  n_questions: 12
  n_resamples: 400
"""


def test_loo_on_a_target_models_answers(tmp_path):
    spec = tmp_path / "loo_target.yaml"
    spec.write_text(LOO_TARGET)
    run = _run(tmp_path, spec)
    steps = set(_table(run, "calls")["step"])
    # The answers judged are the target's; no DPF refinement is run.
    assert steps == {"target_answer:none", "target_answer:persona", "judge"}
    table = _table(run, "loo_attributes")
    assert (table["over"] == "30 personas x 12 questions").all() and (table["ci_high"] > table["ci_low"]).all()
    # The planted judge effect is recovered on the target's answers.
    assert table["attribute"][0] == "religion"
    others = table.filter(pl.col("attribute") != "religion")
    assert table.filter(pl.col("attribute") == "religion")["ci_high"][0] < others["ci_low"].min()
