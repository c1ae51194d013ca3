"""Judge agreement: the kappa matrix matches scikit-learn on the stored labels,
and human annotations join by majority vote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import cohen_kappa_score

from persona_exp.errors import DataError
from persona_exp.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "agreement.yaml"


def _small(tmp_path: Path, *extra: str) -> list[str]:
    return [f"output.dir={tmp_path / 'out'}", "population.size=40", "experiment.n_personas=12", "experiment.n_questions=8",
            "experiment.n_resamples=200", *extra]


def test_matrix_matches_sklearn_and_humans_join(tmp_path):
    first = run(SPEC, _small(tmp_path), progress=False)
    labels = pl.read_parquet(first.run_dir / "agreement_labels.parquet")
    matrix = pl.read_parquet(first.run_dir / "kappa_matrix.parquet")
    judges = ["judge_a", "judge_b", "judge_c"]
    for i, a in enumerate(judges):
        for b in judges:
            x, y = labels[a].to_numpy(), labels[b].to_numpy()
            ok = (x >= 0) & (y >= 0)
            assert matrix[b][i] == pytest.approx(cohen_kappa_score(x[ok], y[ok], labels=[0, 1]), abs=1e-12)
    sheet = pl.read_csv(first.run_dir / "annotation_sheet.csv")
    assert sheet.columns == ["item_id", "persona", "question", "response_a", "response_b"] and sheet.height == 96

    # Four people per item: three pick what judge_a picked (as displayed), one the other letter;
    # on the first ten items two pick each letter, so there is no 3-of-4 majority there.
    design = pl.read_parquet(first.run_dir / "design.parquet")
    letter = np.where((labels["judge_a"].to_numpy() == 1) == design["refined_is_a"].to_numpy(), "A", "B")
    rows = []
    for n, (item, l) in enumerate(zip(design["item_id"], letter)):
        other = "B" if l == "A" else "A"
        picks = [l, l, other, other] if n < 10 else [l, l, l, other]
        rows += [{"item_id": item, "annotator": f"h{k}", "choice": c} for k, c in enumerate(picks)]
    human_csv = tmp_path / "human.csv"
    pl.DataFrame(rows).write_csv(human_csv)
    second = run(SPEC, _small(tmp_path, f"experiment.human={human_csv}"), progress=False)
    pairs = {(r["a"], r["b"]): r for r in second.analysis.tables["agreement_pairs"].iter_rows(named=True)}
    assert pairs[("judge_a", "human")]["kappa"] == pytest.approx(1.0)
    assert pairs[("judge_a", "human")]["items"] == 96 - 10
    assert second.counts.ran == 0  # adding people needs no new model call


def test_bad_human_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "h.csv"
    bad.write_text("item,who,pick\nx,1,A\n")
    with pytest.raises(DataError, match="item_id, annotator, choice"):
        run(SPEC, _small(tmp_path, f"experiment.human={bad}"), progress=False)
    bad.write_text("item_id,annotator,choice\nnot-an-item,1,A\n")
    with pytest.raises(DataError, match="column item_id"):
        run(SPEC, _small(tmp_path, f"experiment.human={bad}"), progress=False)
