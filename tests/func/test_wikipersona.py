"""The WikiPersonas experiment: generated questions, diverse candidates, the
single-elimination dataset, prefix conditions, planted effects, reruns."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from persona_exp.errors import SpecError
from persona_exp.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "wikipersona.yaml"


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return run(SPEC, [f"output.dir={tmp_path_factory.mktemp('wp')}"], progress=False)


def test_default_spec_runs_end_to_end(default_run):
    out = default_run
    head = out.analysis.headline
    assert set(head["condition"]) == {"none", "tag", "few_shot", "persona", "name", "gold", "random"}
    # Every condition meets the six others on every test question of every persona.
    comparisons = out.analysis.tables["wikipersona_comparisons"]
    per_item = comparisons.group_by("persona_id", "question_id").len()
    assert (per_item["len"] == 21).all()
    assert (head["games"] == comparisons.height * 2 // 7).all()
    assert ((head["ci_low"] <= head["win_rate"]) & (head["win_rate"] <= head["ci_high"])).all()
    # The matrix is consistent: r over c and c over r add up to one.
    m = {(r["condition"], r["opponent"]): r["win_rate"] for r in out.analysis.tables["wikipersona_matrix"].iter_rows(named=True)}
    assert all(abs(m[a, b] + m[b, a] - 1) < 1e-12 for a, b in m)
    assert out.counts.failed == out.counts.parse_failed == out.counts.skipped == 0


def test_questions_candidates_and_tournaments(default_run):
    t = default_run.analysis.tables
    q = t["wikipersona_questions"]
    people = default_run.manifest["population"]["size"]
    personal = q.filter(pl.col("type") == "personal")
    assert personal["owner"].n_unique() == people
    assert q["text"].str.contains("?", literal=True).all()
    # Each list is split in halves (test_fraction 0.5) after its filters.
    for _, g in q.group_by("owner"):
        assert abs(g.filter(pl.col("split") == "test").height - g.height / 2) <= 0.5
    # Filter report: what each filter removed adds up to the questions kept.
    f = t["wikipersona_question_filters"]
    last = f.group_by("owner", maintain_order=True).last()
    assert last["after"].sum() == q.height
    cand = t["wikipersona_candidates"]
    assert (cand["sampled"] == 8).all() and (cand["kept"] <= 4).all()
    assert (cand["kept"] + cand["failed"] + cand["out_of_band"] + cand["too_similar"] <= cand["sampled"]).all()
    pairs = t["wikipersona_pairs"]
    # Single elimination: n - 1 comparisons for n candidates (three for four).
    assert (pairs["comparisons"] == pairs["candidates"] - 1).all()
    assert (pairs["candidates"] == 4).mean() > 0.9


def test_preference_export(default_run):
    path = default_run.run_dir / "preferences.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {"prompt", "chosen", "rejected", "persona_id", "name", "axis", "category", "question_type", "split"} <= set(rows[0])
    frame = pl.read_ndjson(path)
    assert frame.height == default_run.analysis.metrics["preference_pairs"] > 0
    assert frame.filter(pl.col("chosen") == pl.col("rejected")).height == 0
    assert set(frame["question_type"]) == {"personal", "divergent"}


def _name_vs_tag(tmp_path: Path, effect: float) -> dict:
    out = run(SPEC, [f"output.dir={tmp_path}", "experiment.conditions=[none, tag, name]", "experiment.n_personal=8", "experiment.n_divergent=8",
                     f"models.judge.sim.effects={{name: {effect}}}", "experiment.n_resamples=1000"], progress=False)
    rows = {(r["condition"], r["opponent"]): r for r in out.analysis.tables["wikipersona_matrix"].iter_rows(named=True)}
    return rows["name", "tag"]


def test_planted_effect_on_the_name(tmp_path):
    # The judge cares strongly about who the person is: answers tailored to the name beat
    # answers tailored to an opaque tag. With no such effect, neither beats the other.
    strong = _name_vs_tag(tmp_path / "strong", 4.0)
    assert strong["ci_low"] > 0.5, strong
    none = _name_vs_tag(tmp_path / "none", 0.0)
    assert none["ci_low"] <= 0.5 <= none["ci_high"], none


def test_rerun_and_one_change_reuse_the_cache(tmp_path):
    base = [f"output.dir={tmp_path}", "population.size=8", "experiment.n_resamples=200"]
    first = run(SPEC, base, progress=False)
    again = run(SPEC, base, progress=False)
    assert again.counts.ran == 0 and again.counts.cached == first.counts.calls
    # Dropping a condition removes calls and runs none.
    fewer = run(SPEC, [*base, "experiment.conditions=[none, tag, name, gold]"], progress=False)
    assert fewer.counts.ran == 0 and fewer.counts.calls < first.counts.calls
    # More candidates per question: only new samples and the judgments they touch run.
    more = run(SPEC, [*base, "experiment.n_candidates=10"], progress=False)
    by_step = more.counts.by_step
    assert by_step["candidates"]["ran"] == by_step["candidates"]["calls"] - by_step["candidates"]["cached"] > 0
    assert by_step["personal_questions"]["ran"] == 0 and by_step["answer:none"]["ran"] == 0


def test_needs_a_famous_population(tmp_path):
    with pytest.raises(SpecError, match="famous"):
        run(SPEC, [f"output.dir={tmp_path}", "population.source=census"], progress=False)


def test_export_holds_the_brackets(default_run, tmp_path):
    from persona_exp.export import export_run
    from persona_exp.store import list_runs

    info = list_runs(default_run.run_dir.parents[2], "wikipersona")[-1]
    paths, notes = export_run(info, "hf", tmp_path / "hf")
    assert notes == [] and (tmp_path / "hf" / "README.md").exists()
    judgments = pl.read_parquet(tmp_path / "hf" / "judgments.parquet")
    pairs = default_run.analysis.tables["wikipersona_pairs"]
    assert judgments.height == pairs["comparisons"].sum()
    # The final's winner is the bracket's chosen answer.
    finals = judgments.sort("round").group_by("persona_id", "question_id").last()
    joined = finals.join(pairs.select("persona_id", "question_id", "chosen_key"), on=["persona_id", "question_id"])
    winner = pl.when(pl.col("first_won")).then(pl.col("first_key")).otherwise(pl.col("second_key"))
    assert joined.filter(winner != pl.col("chosen_key")).height == 0


def test_runs_with_a_litellm_judge(tmp_path, openai_server):
    """The same spec with the judge served over the OpenAI API (a local server
    answering like the simulator): the personal judge's JSON verdicts parse."""
    from persona_exp.execute.sim import Simulator

    state, url = openai_server
    state.reply = lambda body: Simulator({}).judge("\n\n".join(m["content"] for m in body["messages"]))
    out = run(SPEC, [f"output.dir={tmp_path}", "population.size=4", "experiment.conditions=[none, name]", "experiment.n_candidates=4",
                     "models.judge.model=openai/test-judge", f"models.judge.api_base={url}", "experiment.n_resamples=200"], progress=False)
    assert out.counts.failed == out.counts.parse_failed == 0
    judge_calls = sum(v["calls"] for k, v in out.counts.by_step.items() if k in ("personal_judge", "compare", "predict"))
    assert len(state.requests) == judge_calls > 0
    assert all(r["body"]["model"] == "test-judge" for r in state.requests)
    assert out.manifest["models"]["judge"]["reported"] == ["test-judge"]


def test_the_generated_questions_are_the_runs_prompts(default_run):
    q = default_run.analysis.tables["wikipersona_questions"]
    assert default_run.manifest["prompts"]["count"] == q.height
    stored = pl.read_parquet(default_run.run_dir / "prompts.parquet")
    assert stored["id"].to_list() == q["id"].to_list()


def test_a_prompts_block_is_an_error(tmp_path):
    spec = tmp_path / "wp.yaml"
    text = SPEC.read_text(encoding="utf-8")
    spec.write_text(text + "prompts:\n  source: default\n", encoding="utf-8")
    line = text.count("\n") + 1
    with pytest.raises(SpecError, match=rf"wp.yaml:{line}:1: prompts: .*writes its own questions.*remove the prompts block"):
        run(spec, [f"output.dir={tmp_path}"], progress=False)


def test_a_controversial_question_filter(tmp_path, judged):
    """The model filter runs once over every generated list; its removals are
    exactly the questions the simulator calls uncontroversial, reported per list."""
    base = [f"output.dir={tmp_path}", "population.size=4", "experiment.conditions=[none, name]"]
    plain = run(SPEC, base, progress=False).analysis.tables["wikipersona_questions"]
    out = run(SPEC, base + ["experiment.question_filters=[{question_mark: true}, {min_words: 5}, {dedupe: true}, {controversial: true}]"], progress=False)
    q = out.analysis.tables["wikipersona_questions"]
    expected = [t for t in plain.sort("id")["text"].to_list() if judged(t)]
    assert 0 < len(expected) < plain.height  # the simulator writes both kinds
    assert sorted(q["text"].to_list()) == sorted(expected)
    f = out.analysis.tables["wikipersona_question_filters"].filter(pl.col("name") == "controversial")
    assert f["owner"].n_unique() == plain["owner"].n_unique()
    assert f["removed"].sum() == plain.height - q.height and f["after"].sum() == q.height
    assert any("controversial filter (generator)" in n for n in out.manifest["notes"])
