"""The WikiPersonas ROUGE table's intervals follow the experiment's design: a
persona's test questions are its own personal ones and its axis's divergent
ones (shared with the axis's other personas), so both personas and questions
are resampled (simulated run, offline)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from rouge_score import rouge_scorer

from persona_exp.analysis import interval
from persona_exp.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "wikipersona.yaml"
SMALL = ["population.size=6", "experiment.n_personal=4", "experiment.n_divergent=4", "experiment.n_candidates=6", "experiment.n_resamples=200"]


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    return run(SPEC, [f"output.dir={tmp_path_factory.mktemp('wpr')}", *SMALL], progress=False)


def test_divergent_questions_are_shared_and_personal_ones_are_not(six):
    pred = six.analysis.tables["wikipersona_predictions"].filter(pl.col("condition") == "none")
    askers = pred.group_by("question_id", "question_type").agg(pl.col("persona_id").n_unique().alias("personas"))
    assert askers.filter(pl.col("question_type") == "divergent")["personas"].max() >= 2  # crossed with personas
    assert askers.filter(pl.col("question_type") == "personal")["personas"].median() == 1  # nested in them


def test_rouge_intervals_resample_personas_and_questions(six):
    t = six.analysis.tables
    calls = {r["key"]: r["value"] or r["text"] for r in pl.read_parquet(six.run_dir / "calls.parquet").iter_rows(named=True)}
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"])
    for row in t["wikipersona_rouge"].iter_rows(named=True):
        pred = t["wikipersona_predictions"].filter(pl.col("condition") == row["condition"])
        pred = pred.filter(pl.all_horizontal(pl.col(c).map_elements(lambda k: bool(calls.get(k)), return_dtype=pl.Boolean)
                                             for c in ("answer_key", "chosen_key", "rejected_key")))
        scores = [scorer.score(calls[r["chosen_key"]], calls[r["answer_key"]]) for r in pred.iter_rows(named=True)]
        units = {"persona": pred["persona_id"].to_numpy(), "question": pred["question_id"].to_numpy()}
        assert row["answers"] == len(scores) > 0
        assert row["over"] == f"{pred['persona_id'].n_unique()} personas x {pred['question_id'].n_unique()} questions"
        for kind in ("rouge1", "rougeL"):
            ref = interval("mean", [s[kind].fmeasure for s in scores], units=units, n_resamples=200, level=0.95, seed=0)
            assert (row[kind], row[f"{kind}_low"], row[f"{kind}_high"]) == pytest.approx((ref.estimate, ref.low, ref.high))
            assert ref.method.startswith("crossed bootstrap over persona x question")
            assert row[f"{kind}_low"] < row[kind] < row[f"{kind}_high"]
        assert "only 6 personas" in row["note"]  # few clusters: said beside the interval
