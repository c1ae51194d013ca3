"""Conditioning methods: pass@k, slices, and the simulator's known ordering."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest

from persona_exp.errors import SpecError
from persona_exp.experiments.conditioning import pass_at_k
from persona_exp.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "conditioning.yaml"


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 2, 1), (5, 2, 2), (6, 3, 4), (4, 4, 2), (7, 1, 7)])
def test_pass_at_k_equals_the_share_of_k_subsets_with_a_pass(n, c, k):
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    assert pass_at_k(n, c, k) == pytest.approx(sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets))


def test_modes_critics_and_slices(tmp_path):
    out = run(SPEC, [f"output.dir={tmp_path}", "population.size=60", "experiment.n_personas=20", "experiment.n_questions=6",
                     "experiment.n_resamples=300"], progress=False)
    table = {(r["mode"], r["critic"]): r for r in out.analysis.headline.iter_rows(named=True)}
    assert set(table) == {(m, c) for m in ("none", "persona", "cot", "summarize") for c in ("personalization", "helpfulness")}
    # The simulated critic rewards tailoring: with the persona shown, tailored answers pass more often.
    assert table[("persona", "personalization")]["ci_low"] > table[("none", "personalization")]["ci_high"]
    slices = out.analysis.tables["conditioning_slices"]
    assert {"slice_sex", "slice_marital_status", "accuracy"} <= set(slices.columns)
    assert slices["answers"].sum() == 20 * 6 * 4 * 2


def test_bad_parameters_are_named(tmp_path):
    # Both are spec errors at the --set item that gave them, found before anything is built.
    with pytest.raises(SpecError, match=r"^--set experiment.slice_by=.*\[0\]: unknown persona attribute 'no_such_attribute'"):
        run(SPEC, [f"output.dir={tmp_path}", "population.size=40", "experiment.slice_by=[no_such_attribute]"], progress=False)
    with pytest.raises(SpecError, match=r"^--set experiment.pass_k=\[3\]: experiment.pass_k\[0\]: pass@3 needs at least 3 answers"):
        run(SPEC, [f"output.dir={tmp_path}", "population.size=40", "experiment.pass_k=[3]"], progress=False)
