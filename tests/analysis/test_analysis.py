"""persona_exp.analysis: multiplicity corrections against statsmodels, the
diff's flags, design units, and the intervals' routing to the statistics core."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.multitest import multipletests

from persona_exp.analysis import adjust, interval, real_units, survivors, unpaired_difference
from persona_exp.diff import compare_metrics

STATSMODELS = {"holm": "holm", "bh": "fdr_bh"}


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_adjusted_p_values_match_statsmodels(method):
    rng = np.random.default_rng(3)
    for m in (1, 2, 5, 33, 200):
        p = np.concatenate([rng.uniform(0, 0.02, m // 3), rng.uniform(0, 1, m - m // 3)])
        p[: m // 4] = p[0]  # ties
        reject, expected, _, _ = multipletests(p, alpha=0.05, method=STATSMODELS[method])
        adj, keep = survivors(p, method, 0.05)
        np.testing.assert_allclose(adj, expected, rtol=1e-12, atol=1e-15)
        assert keep == reject.tolist()


def test_untested_metrics_do_not_count_in_the_family():
    p = [0.01, float("nan"), 0.04, 0.03]
    out = adjust(p, "holm")
    assert math.isnan(out[1])
    np.testing.assert_allclose([out[0], out[2], out[3]], multipletests([0.01, 0.04, 0.03], method="holm")[1])
    assert adjust(p, "none")[0] == 0.01


def _metric(est, se, n=100):
    return {"estimate": est, "low": est - 1.959964 * se, "high": est + 1.959964 * se, "se": se, "n": n}


@pytest.mark.parametrize("method", ["holm", "bh", "none"])
def test_diff_flags_are_the_corrected_tests(method):
    """Unpaired changes (no shared items): p from se = sqrt(se_a^2 + se_b^2),
    flags = statsmodels' rejections over the compared metrics only."""
    deltas = [0.0, 0.02, -0.03, 0.3, -0.25, 0.05, 0.4, 0.15, -0.16, 0.2, 0.12, -0.19]
    names = [f"kappa[x{i}]" for i in range(len(deltas))]
    ma = {n: _metric(0.5, 0.05) for n in names}
    mb = {n: _metric(0.5 + d, 0.05) for n, d in zip(names, deltas)}
    ma["kappa[gone]"] = _metric(0.3, 0.05)
    mb["kappa[new]"] = _metric(0.3, 0.05)
    ma["kappa[flat]"], mb["kappa[flat]"] = {"estimate": 0.0, "low": 0.0, "high": 0.0, "n": 8}, _metric(0.9, 0.01)  # zero-width in A
    rows = {r["metric"]: r for r in compare_metrics(ma, mb, {}, level=0.95, method=method)}
    from scipy.stats import norm

    p = np.array([2 * norm.sf(abs(mb[n]["estimate"] - 0.5) / math.hypot(0.05, 0.05)) for n in names])
    expected = p <= 0.05 if method == "none" else multipletests(p, alpha=0.05, method=STATSMODELS[method])[0]
    assert [rows[n]["flagged"] for n in names] == expected.tolist()
    assert any(expected) and not all(expected)
    assert rows["kappa[gone]"]["status"] == "removed" and rows["kappa[new]"]["status"] == "added"
    assert not rows["kappa[gone]"]["flagged"] and not rows["kappa[new]"]["flagged"] and rows["kappa[new]"]["b"] == 0.3
    flat = rows["kappa[flat]"]
    assert flat["delta"] == pytest.approx(0.9) and not flat["flagged"] and "no usable interval" in flat["warning"]
    assert all(r["comparison"].startswith("unpaired") for r in rows.values() if r["status"] == "compared")


def test_a_paired_change_is_used_only_when_the_runs_share_the_items():
    ma, mb = {"r[x]": _metric(0.5, 0.05, 200)}, {"r[x]": _metric(0.6, 0.05, 200)}
    change = {"metric": "r[x]", "delta": 0.1, "low": 0.08, "high": 0.12, "se": 0.0102, "p": 1e-20, "items": 200, "items_a": 200, "items_b": 200,
              "over": "20 personas x 10 questions", "method": "crossed", "warning": None}
    row = compare_metrics(ma, mb, {"r[x]": change}, level=0.95, method="holm")[0]
    assert row["comparison"].startswith("paired over 200 shared items") and (row["low"], row["high"]) == pytest.approx((0.08, 0.12)) and row["flagged"]
    few = compare_metrics(ma, mb, {"r[x]": {**change, "items": 20}}, level=0.95, method="holm")[0]
    assert few["comparison"].startswith("unpaired: 20 of 200 / 200") and few["high"] - few["low"] == pytest.approx(2 * 1.959964 * math.hypot(0.05, 0.05))


def test_real_units_drop_a_factor_the_calls_do_not_vary_with():
    persona = np.repeat(np.arange(6), 4).astype(str)
    question = np.tile(np.arange(4), 6).astype(str)
    frame = pl.DataFrame({"p": persona, "q": question, "per_question": [f"k{q}" for q in question], "per_cell": [f"k{a}{b}" for a, b in zip(persona, question)]})
    factors = {"persona": "p", "question": "q"}
    assert real_units(frame, factors, "per_question") == {"question": "q"}
    assert real_units(frame, factors, "per_cell") == factors


def test_intervals_say_their_units_and_refuse_too_few_levels():
    rng = np.random.default_rng(0)
    persona, question = np.repeat(np.arange(40), 3), np.tile(np.arange(3), 40)
    few = interval("rate", rng.integers(0, 2, 120).astype(float), units={"persona": persona, "question": question}, n_resamples=200, null=0.5)
    assert math.isnan(few.low) and math.isnan(few.high) and "3 questions" in few.warning and math.isnan(few.p) and not few.usable
    persona, question = np.repeat(np.arange(40), 20), np.tile(np.arange(20), 40)
    y = (rng.normal(size=800) + rng.normal(size=40)[persona] + rng.normal(size=20)[question] > 0).astype(float)
    e = interval("rate", y, units={"persona": persona, "question": question}, n_resamples=500, null=0.5)
    assert e.over() == "40 personas x 20 questions" and e.usable and e.low < e.estimate < e.high and 0 <= e.p <= 1
    assert e.method.startswith("crossed bootstrap over persona x question")


def test_question_variation_widens_the_interval():
    """With a strong question effect, resampling personas alone understates the
    uncertainty; the design's interval (personas x questions) is wider."""
    from persona_exp import stats

    rng = np.random.default_rng(5)
    persona, question = np.repeat(np.arange(40), 20), np.tile(np.arange(20), 40)
    y = (0.3 * rng.normal(size=40)[persona] + 1.0 * rng.normal(size=20)[question] + rng.normal(size=800) > 0).astype(float)
    crossed = interval("rate", y, units={"persona": persona, "question": question}, n_resamples=1000)
    one_way = stats.win_rate(y, clusters=persona, n_resamples=1000)
    assert crossed.high - crossed.low > 1.5 * (one_way.high - one_way.low)


def test_unpaired_change_keeps_its_false_positive_rate():
    """Two runs that draw their own personas and questions from one population
    (a seed change): the unpaired 95% interval of the change excludes 0 about
    5% of the time (seeded simulation; 400 pairs, Monte-Carlo sd about 1.1%)."""
    rng = np.random.default_rng(2)
    persona, question = np.repeat(np.arange(40), 20), np.tile(np.arange(20), 40)

    def run(seed):
        eta = rng.normal(0, 0.7, 40)[persona] + rng.normal(0, 0.8, 20)[question] + rng.normal(0, 0.5, 800)
        e = interval("rate", (eta + rng.logistic(size=800) > 0).astype(float), units={"persona": persona, "question": question}, n_resamples=300, seed=seed)
        return e.to_dict()

    changes = [unpaired_difference(run(2 * r), run(2 * r + 1), 0.95) for r in range(400)]
    rate = np.mean([c.low > 0 or c.high < 0 for c in changes])
    assert 0.025 <= rate <= 0.085, rate
