"""WikiPersonas as in the paper: its defaults, the temperature warning, the true
axis for divergent candidates, the filter stages (lexical, embedding, reward),
the `random` prefix, ROUGE against the held-out gold answer and preference
accuracy against held-out choices (planted effect recovered, none planted ->
no condition separable)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from rouge_score import rouge_scorer
from scipy import stats

from persona_exp.errors import SpecError
from persona_exp.execute import embed as E
from persona_exp.execute.sim import Simulator
from persona_exp.experiments import wikipersona as W
from persona_exp.pipeline import run
from persona_exp.steps.candidates import read_score, select_by_embedding, select_by_reward

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "wikipersona.yaml"
SMALL = ["population.size=4", "experiment.n_personal=4", "experiment.n_divergent=4", "experiment.n_candidates=6", "experiment.n_resamples=200"]


def test_the_experiments_defaults_are_the_papers():
    p = W.Params()
    assert (p.n_candidates, p.candidate_temperature, p.candidate_top_p, p.keep) == (50, 2.0, 0.8, 4)
    assert (p.few_shot, p.infer_shots, p.n_personal, p.n_divergent, p.test_fraction) == (2, 4, 100, 100, 0.5)
    assert "random" in p.conditions and [s.kind for s in p.filter] == ["lexical"]


def test_rouge_matches_the_package_on_a_hand_example():
    # 'the cat sat on the mat' vs 'the cat lay on a mat': 4 of 6 unigrams shared each way -> F = 2/3.
    got = W.rouge([("the cat lay on a mat", "the cat sat on the mat")])[0]
    assert got["rouge1"] == pytest.approx(2 / 3) and got["rougeL"] == pytest.approx(2 / 3)
    ref = rouge_scorer.RougeScorer(["rouge1", "rougeL"]).score("completely different words", "the cat lay")
    assert W.rouge([("the cat lay", "completely different words")])[0]["rouge1"] == ref["rouge1"].fmeasure == 0.0


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return run(SPEC, [f"output.dir={tmp_path_factory.mktemp('wpp')}", *SMALL], progress=False)


def test_no_warning_at_the_papers_temperature_and_one_at_zero(small_run, tmp_path):
    assert not any("temperature 0" in n for n in small_run.manifest["notes"])
    cold = run(SPEC, [f"output.dir={tmp_path}", *SMALL, "experiment.candidate_temperature=0"], progress=False)
    assert any(n.startswith("WARNING") and "temperature 0" in n and "candidate_temperature" in n for n in cold.manifest["notes"])
    # null: the generator's own temperature (0 in the shipped spec) decides.
    own = run(SPEC, [f"output.dir={tmp_path}", *SMALL, "experiment.candidate_temperature=null"], progress=False)
    assert any("temperature 0" in n for n in own.manifest["notes"])


def _prompts(out, step: str) -> list[str]:
    calls = pl.read_parquet(out.run_dir / "calls.parquet").filter(pl.col("step") == step).select("key")
    t = pl.read_parquet(out.run_dir / "transcripts.parquet").join(calls, on="key")
    return [json.loads(m)[0]["content"] if isinstance(m, str) else m[0]["content"] for m in t["messages"].to_list()]


def test_candidates_run_at_the_papers_sampling_and_divergent_ones_use_the_true_axis(small_run):
    calls = pl.read_parquet(small_run.run_dir / "calls.parquet").filter(pl.col("step") == "candidates")
    assert calls.height > 0
    prompts = _prompts(small_run, "candidates")
    divergent = [p for p in prompts if "This question is about the axis" in p]
    assert divergent and len(divergent) < len(prompts)  # personal questions keep the open axis list
    people = small_run.analysis.tables["wikipersona_pairs"].unique("persona_id")
    for p in divergent:
        axis = p.split("This question is about the axis ", 1)[1].split(",", 1)[0]
        assert axis in set(people["axis"])
        cats = set(people.filter(pl.col("axis") == axis)["category"])
        assert any(f"belongs to the category {c}," in p for c in cats)


def test_random_prefix_is_another_persons_gold_persona(small_run):
    pre = small_run.analysis.tables["wikipersona_prefix_texts"]
    gold = {r["persona_id"]: r["prefix"] for r in pre.filter(pl.col("condition") == "gold").iter_rows(named=True)}
    rand = pre.filter(pl.col("condition") == "random")
    assert rand.height == len(gold)
    for r in rand.iter_rows(named=True):
        assert r["prefix"] in set(gold.values()) and r["prefix"] != gold[r["persona_id"]]
    table = small_run.analysis.tables["wikipersona_prefixes"]
    row = {r["condition"]: r for r in table.iter_rows(named=True)}
    assert row["gold"]["rouge1"] == pytest.approx(1.0) and row["random"]["rouge1_random"] == pytest.approx(1.0)
    assert row["random"]["rouge1"] < 1.0


def test_rouge_table_is_rouge_of_the_stored_answers(small_run):
    t = small_run.analysis.tables
    calls = {r["key"]: r["value"] or r["text"] for r in pl.read_parquet(small_run.run_dir / "calls.parquet").iter_rows(named=True)}
    pred = t["wikipersona_predictions"].filter(pl.col("condition") == "gold")
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    expected = [scorer.score(calls[r["chosen_key"]], calls[r["answer_key"]])["rouge1"].fmeasure for r in pred.iter_rows(named=True)]
    row = t["wikipersona_rouge"].filter(pl.col("condition") == "gold").row(0, named=True)
    assert row["answers"] == len(expected) > 0
    assert row["rouge1"] == pytest.approx(sum(expected) / len(expected))
    # 4 personas are too few for a bootstrap interval (at least 5): none, and the note says why.
    assert pl.Series([row["rouge1_low"], row["rouge1_high"]]).is_nan().all() and "only 4 personas" in row["note"]


def test_preferences_carry_train_and_test_splits(small_run):
    pref = small_run.analysis.tables["preferences"]
    assert set(pref["split"]) == {"train", "test"}
    acc = small_run.analysis.tables["wikipersona_accuracy"]
    # One prediction per condition and held-out pair.
    tests = small_run.analysis.tables["wikipersona_pairs"].filter(pl.col("split") == "test")
    assert (acc["pairs"] <= tests.height).all() and (acc["pairs"] > 0).all()


PREDICTORS = {
    # Another model predicts (as in the paper), so that it does not share the labeling judge's noise.
    "another model": ["experiment.predict_role=predictor", "models.predictor.model=sim/judge", "models.predictor.sim.draw=1",
                      "models.predictor.sim.default_effect=0"],
    # The default: the labeling judge predicts, as a new sample of itself (it must not read back its own labels' draws).
    "the labeling judge": [],
}


def _accuracy(tmp_path: Path, effects: str, predictor: str, quality: float = 1.0) -> dict:
    """Accuracy per condition; ``quality: 0`` switches off the taste every person shares, so that with no effects nothing is planted."""
    roles = ["judge", *(["predictor"] if PREDICTORS[predictor] else [])]
    extra = PREDICTORS[predictor] + [f"models.{r}.sim.{k}" for r in roles[1:] for k in (f"effects={effects}",)]
    extra += [f"models.{r}.sim.quality={quality}" for r in roles]
    out = run(SPEC, [f"output.dir={tmp_path}", "population.size=8", "experiment.n_personal=8", "experiment.n_divergent=8",
                     "experiment.conditions=[none, tag, name, gold, random]", "models.judge.sim.default_effect=0", f"models.judge.sim.effects={effects}",
                     *extra, "experiment.n_resamples=1000"], progress=False)
    return {r["condition"]: r for r in out.analysis.tables["wikipersona_accuracy"].iter_rows(named=True)}


@pytest.mark.parametrize("predictor", list(PREDICTORS))
def test_planted_preference_is_recovered_by_preference_accuracy(tmp_path, predictor):
    # The person's choices depend on who they are (the name): a judge told the name
    # (or the gold persona, which names them) predicts them better than one told nothing.
    acc = _accuracy(tmp_path / "planted", "{name: 4.0}", predictor)
    for c in ("name", "gold"):
        assert acc[c]["ci_low"] > acc["none"]["ci_high"] and acc[c]["survives"], acc
        assert acc[c]["accuracy"] > acc["random"]["accuracy"], acc  # another person's persona does not help


@pytest.mark.parametrize("predictor", list(PREDICTORS))
def test_no_planted_preference_no_condition_separable(tmp_path, predictor):
    acc = _accuracy(tmp_path / "none", "{}", predictor, quality=0.0)
    for a, b in itertools.combinations(acc.values(), 2):
        assert a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"], (a, b)
    assert not any(r["survives"] for r in acc.values()), acc  # no prefix predicts, after the correction, choices no preference made


def test_embedding_and_reward_filter_stages(tmp_path):
    stages = "[{kind: reward, role: reward, span: 5}, {kind: embedding, model: sim/embed, max_similarity: 0.95}]"
    out = run(SPEC, [f"output.dir={tmp_path}", *SMALL, f"experiment.filter={stages}", "models.reward.model=sim/judge"], progress=False)
    assert out.counts.by_step["reward"]["calls"] == out.counts.by_step["candidates"]["calls"]
    # The simulated reward model scores every candidate; the span keeps the 5 closest scores of 6.
    cand = out.analysis.tables["wikipersona_candidates"]
    assert (cand["unscored"] == 0).all() and (cand["low_reward"] == cand["sampled"] - cand["failed"] - 5).all()
    assert (cand["kept"] <= 4).all() and (cand["kept"] >= 2).any()
    assert not any("no readable score" in n for n in out.manifest["notes"])


def _kept_quality(out) -> dict[str, float]:
    """Per question, the mean simulated shared quality (in the reward role's
    world) of the candidates the filter kept: those the personal judge compares."""
    calls = pl.read_parquet(out.run_dir / "calls.parquet").join(pl.read_parquet(out.run_dir / "transcripts.parquet"), on="key")
    cands = calls.filter(pl.col("step") == "candidates")
    asked = {k: (json.loads(m) if isinstance(m, str) else m)[0]["content"].rsplit("User question:", 1)[-1].strip()
             for k, m in zip(cands["key"], cands["messages"].to_list())}
    text = dict(cands.select("key", "value").iter_rows())
    kept = {k for keys in calls.filter(pl.col("step") == "personal_judge")["inputs"] for k in keys if k in text}
    world, per_question = Simulator(), {}
    for k in kept:
        per_question.setdefault(asked[k], []).append(world.quality_term(text[k]))
    return {q: float(np.mean(v)) for q, v in per_question.items()}


def test_the_reward_stage_keeps_candidates_of_higher_simulated_quality(tmp_path):
    # The simulated reward model scores a candidate by its utility (here, with no
    # persona in the prompt, the shared quality) plus noise: dropping those under
    # the scale's middle keeps better candidates of the same question than the
    # lexical filter does (paired over the questions both runs share).
    sets = [*SMALL, "experiment.n_candidates=8"]
    reward = _kept_quality(run(SPEC, [f"output.dir={tmp_path / 'reward'}", *sets, "models.reward.model=sim/judge",
                                      "experiment.filter=[{kind: reward, role: reward, min_score: 5.5}]"], progress=False))
    lexical = _kept_quality(run(SPEC, [f"output.dir={tmp_path / 'lexical'}", *sets], progress=False))
    both = sorted(set(reward) & set(lexical))
    assert len(both) >= 15
    diff = np.array([reward[q] - lexical[q] for q in both])
    assert diff.mean() > 0 and stats.wilcoxon(diff, alternative="greater").pvalue < 0.01, diff


def test_a_reward_stage_needs_its_role(tmp_path):
    with pytest.raises(SpecError, match="role 'reward'"):
        run(SPEC, [f"output.dir={tmp_path}", *SMALL, "experiment.filter=[{kind: reward}]"], progress=False)


def test_an_unknown_filter_stage_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="filter"):
        run(SPEC, [f"output.dir={tmp_path}", *SMALL, "experiment.filter=[{kind: cluster}]"], progress=False)


def test_reward_selection_keeps_the_tightest_span():
    scores = {0: 1.0, 1: 5.0, 2: 5.2, 3: 9.0, 4: 5.1, 5: None}
    kept, dropped, unscored = select_by_reward(list(scores), scores, None, 3)
    assert sorted(kept) == [1, 2, 4, 5] and dropped == 2 and unscored == 1
    kept, dropped, _ = select_by_reward(list(scores), scores, 5.1, None)
    assert sorted(kept) == [2, 3, 4, 5] and dropped == 2
    assert read_score("Score: 7.5 out of 10") == 7.5 and read_score("excellent") is None


def test_embedding_selection_drops_near_duplicates():
    texts = ["the cat sat on the mat", "the cat sat on the mat today", "stock markets fell sharply", "bake bread with rye flour"]
    vecs = {i: E.sim_embed(t) for i, t in enumerate(texts)}
    kept, dropped = select_by_embedding(list(vecs), vecs, 4, 0.5)
    assert len(kept) == 3 and dropped == 1 and not {0, 1} <= set(kept)


def test_embeddings_are_cached_by_model_and_text(tmp_path, monkeypatch):
    from persona_exp.execute.llm import litellm

    lt = litellm()
    sent: list[list[str]] = []

    async def fake(model, input, **kwargs):  # noqa: A002 - litellm's name
        sent.append(list(input))
        return type("R", (), {"data": [{"index": i, "embedding": [float(len(t)), 1.0]} for i, t in enumerate(input)]})()

    monkeypatch.setattr(lt, "aembedding", fake)
    cache = tmp_path / "cache.sqlite"
    first = E.embed("openai/text-embedding-3-small", ["a b", "c"], cache)
    again = E.embed("openai/text-embedding-3-small", ["a b", "c", "d e f"], cache)
    assert sent == [["a b", "c"], ["d e f"]]
    assert again["a b"] == first["a b"] == [3.0, 1.0] and again["d e f"] == [5.0, 1.0]
    other = E.embed("openai/another-model", ["a b"], cache)  # another model is another key
    assert sent[-1] == ["a b"] and other["a b"] == [3.0, 1.0]
    elsewhere = E.embed("openai/text-embedding-3-small", ["a b"], cache, api_base="http://127.0.0.1:9/v1")  # another endpoint too
    assert len(sent) == 4 and sent[-1] == ["a b"] and elsewhere["a b"] == [3.0, 1.0]
    assert E.embed("openai/text-embedding-3-small", ["a b"], cache, api_base="http://127.0.0.1:9/v1") == elsewhere and len(sent) == 4


def test_report_shows_the_papers_tables(small_run):
    from persona_exp.report.build import render_report
    from persona_exp.store import list_runs

    info = list_runs(small_run.run_dir.parents[2], "wikipersona")[-1]
    html = render_report(info, n_resamples=100)
    for caption in ("Paper Table 2", "Paper Table 3 form", "Preference accuracy on held-out pairs", "against the held-out chosen answer"):
        assert caption in html, caption
    assert "R1 (random)" in html and "Avg." in html
