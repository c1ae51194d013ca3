"""The mean of [0, 1] values over the design (``stats.mean_ci``), the interval of
the WikiPersonas ROUGE table.

Checked against independent computations (numpy bootstraps, scipy's bootstrap,
statsmodels' two-way cluster-robust variance, the variance formula evaluated
directly from residuals) and by a coverage simulation on WikiPersonas' own
design: personas grouped by axis, each with its own personal test questions
(nested in the persona) and its axis's divergent test questions (shared by the
axis's personas, so crossed with them). A ROUGE-like value is
logistic(mu + persona + question + cell), bounded in (0, 1) with mean about
0.3; the truth is its population mean, by Gauss-Hermite quadrature.

The coverage figures are printed with ``pytest -s``. At 4000 replications
(Monte-Carlo sd 0.0034) the crossed interval covered 0.943 and 0.940 with 12
personas and 0.948 and 0.948 with 40, both tails alike: with few personas the
bootstrap variance runs low by about (G - 1) / G, a point of coverage.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.stats
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.sandwich_covariance import cov_cluster_2groups

from persona_exp import stats
from persona_exp.analysis import interval
from persona_exp.errors import InvalidArgumentError, NaNError

MU, CELL_SD = -0.8, 0.8


def logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def wikipersona_design(axes: int, per_axis: int, personal: int, divergent: int) -> tuple[np.ndarray, np.ndarray]:
    """(persona, question) ids of the ROUGE rows: every persona answers its own
    ``personal`` test questions and its axis's ``divergent`` ones."""
    persona, question = [], []
    for ax in range(axes):
        for k in range(per_axis):
            pid = ax * per_axis + k
            persona += [pid] * (personal + divergent)
            question += [f"p{pid}.{j}" for j in range(personal)] + [f"d{ax}.{j}" for j in range(divergent)]
    return np.asarray(persona), np.unique(question, return_inverse=True)[1]


def rouge_like(rng, persona, question, sp, sq, se=CELL_SD):
    a = rng.normal(0, sp, persona.max() + 1)
    b = rng.normal(0, sq, question.max() + 1)
    return logistic(MU + a[persona] + b[question] + rng.normal(0, se, persona.size))


def population_mean(sd: float) -> float:
    """E[logistic(MU + N(0, sd^2))] by 80-point Gauss-Hermite quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return float((w * logistic(MU + sd * x)).sum() / w.sum())


def ratio(sums, counts):
    return sums / counts


# --------------------------------------------------------------------------- independent implementations


def test_item_se_is_the_bootstrap_se_of_a_mean():
    y = np.random.default_rng(0).beta(2, 5, 300)
    ci = stats.mean_ci(y, n_resamples=4000, seed=1)
    assert ci.method == "item-wilson" and ci.units == ()
    assert ci.estimate == pytest.approx(y.mean())
    # The bootstrap variance of a mean is the plug-in variance over n.
    assert ci.se == pytest.approx(y.std() / np.sqrt(y.size), rel=0.05)


def test_one_way_percentile_interval_matches_scipy_on_cluster_means():
    # Equal cluster sizes: the mean is the mean of the cluster means, so the
    # persona bootstrap is scipy's bootstrap of those means.
    rng = np.random.default_rng(2)
    p = np.repeat(np.arange(40), 8)
    y = logistic(MU + rng.normal(0, 0.5, 40)[p] + rng.normal(0, CELL_SD, p.size))
    ours = stats.mean_ci(y, clusters=p, n_resamples=20_000, method="percentile", seed=3)
    ref = scipy.stats.bootstrap((y.reshape(40, 8).mean(1),), np.mean, method="percentile", n_resamples=20_000,
                                rng=np.random.default_rng(4)).confidence_interval
    width = ref.high - ref.low
    assert ours.method == "cluster-percentile" and ours.units == (40,)
    assert abs(ours.low - ref.low) < 0.03 * width and abs(ours.high - ref.high) < 0.03 * width, (tuple(ours), ref)


def test_one_way_se_matches_a_numpy_cluster_bootstrap_with_unequal_sizes():
    rng = np.random.default_rng(5)
    sizes = rng.integers(2, 15, 30)
    p = np.repeat(np.arange(30), sizes)
    y = logistic(MU + rng.normal(0, 0.6, 30)[p] + rng.normal(0, CELL_SD, p.size))
    sums, counts = np.bincount(p, y), np.bincount(p)
    draw = rng.integers(0, 30, (8000, 30))
    ref = ratio(sums[draw].sum(1), counts[draw].sum(1)).std()
    ours = stats.mean_ci(y, clusters=p, n_resamples=8000, seed=6)
    assert ours.se == pytest.approx(ref, rel=0.05)


def _brute_force_crossed_variance(y, p, q, n_resamples, rng):
    """V_1, V_2, V_12 by resampling with numpy: personas, questions, and both
    (each row weighted by its persona's draw count times its question's)."""
    n_p, n_q = p.max() + 1, q.max() + 1

    def var_of(weights):
        return ratio(weights @ y, weights.sum(1)).var(ddof=1)

    w1 = np.stack([np.bincount(rng.integers(0, n_p, n_p), minlength=n_p) for _ in range(n_resamples)])
    w2 = np.stack([np.bincount(rng.integers(0, n_q, n_q), minlength=n_q) for _ in range(n_resamples)])
    w1b = np.stack([np.bincount(rng.integers(0, n_p, n_p), minlength=n_p) for _ in range(n_resamples)])
    w2b = np.stack([np.bincount(rng.integers(0, n_q, n_q), minlength=n_q) for _ in range(n_resamples)])
    return var_of(w1[:, p].astype(float)), var_of(w2[:, q].astype(float)), var_of((w1b[:, p] * w2b[:, q]).astype(float))


def test_crossed_variance_matches_a_brute_force_bootstrap_and_statsmodels():
    rng = np.random.default_rng(7)
    p, q = wikipersona_design(6, 5, 6, 6)
    y = rouge_like(rng, p, q, 0.4, 0.8)
    v1, v2, v12 = _brute_force_crossed_variance(y, p, q, 6000, rng)
    want = np.clip(2 * (v1 + v2) - v12, max(v1, v2), v1 + v2)
    ours = stats.mean_ci(y, clusters={"personas": p, "questions": q}, n_resamples=6000, seed=8)
    assert ours.method == "crossed-wilson" and ours.units == (30, 30 * 6 + 6 * 6)
    assert ours.se**2 == pytest.approx(want, rel=0.12)
    # The two-way cluster-robust variance (Cameron, Gelbach & Miller), which
    # the bootstrap combination estimates up to O(1/levels) terms.
    fit = OLS(y, np.ones((y.size, 1))).fit()
    cgm = cov_cluster_2groups(fit, p, q, use_correction=False)[0][0, 0]
    assert ours.se**2 == pytest.approx(cgm, rel=0.12)
    # Resampling personas alone misses the shared divergent questions.
    assert ours.se > 1.1 * stats.mean_ci(y, clusters=p, n_resamples=6000, seed=8).se


def test_linearized_crossed_variance_is_the_residual_formula():
    # 300 personas x 200 questions is past the product-bootstrap budget: the
    # three variances are taken to first order, which for a mean are sums of
    # squared residual totals (R_i per persona, C_j per question, one item per cell).
    rng = np.random.default_rng(9)
    p, q = np.repeat(np.arange(300), 200), np.tile(np.arange(200), 300)
    y = rouge_like(rng, p, q, 0.4, 0.6)
    ours = stats.mean_ci(y, clusters=(p, q), n_resamples=1000, seed=1)
    assert ours.method == "crossed-linearized-wilson" and ours.n_resamples == 0
    n, s = y.size, y - y.mean()
    r2, c2, e2 = (np.bincount(p, s) ** 2).sum(), (np.bincount(q, s) ** 2).sum(), (s**2).sum()
    v1, v2 = r2 / n**2, c2 / n**2
    v12 = (e2 + (1 - 1 / 300) * c2 + (1 - 1 / 200) * r2) / n**2
    assert ours.se**2 == pytest.approx(np.clip(2 * (v1 + v2) - v12, max(v1, v2), v1 + v2), rel=1e-6)
    fit = OLS(y, np.ones((n, 1))).fit()
    assert ours.se**2 == pytest.approx(cov_cluster_2groups(fit, p, q, use_correction=False)[0][0, 0], rel=0.02)


def test_zero_one_values_give_the_win_rate_interval():
    rng = np.random.default_rng(10)
    p, q = wikipersona_design(4, 3, 3, 3)
    y = (rouge_like(rng, p, q, 0.5, 0.5) > 0.3).astype(float)
    for clusters in (p, (p, q)):
        m, r = stats.mean_ci(y, clusters=clusters, seed=2), stats.win_rate(y, clusters=clusters, seed=2)
        assert tuple(m) == pytest.approx(tuple(r), abs=1e-12) and m.se == pytest.approx(r.se, abs=1e-12)


def test_interval_kind_mean_uses_the_crossed_design():
    rng = np.random.default_rng(11)
    p, q = wikipersona_design(4, 3, 3, 3)
    y = rouge_like(rng, p, q, 0.5, 0.5)
    e = interval("mean", y, units={"persona": p, "question": q}, n_resamples=500, seed=3)
    ref = stats.mean_ci(y, clusters={"personas": p, "questions": q}, n_resamples=500, seed=3)
    assert (e.estimate, e.low, e.high) == pytest.approx(tuple(ref))
    assert e.over() == f"12 personas x {q.max() + 1} questions" and e.method.startswith("crossed bootstrap over persona x question")


def test_bad_values_are_refused_with_their_index():
    with pytest.raises(InvalidArgumentError, match=r"values holds 1\.5 at index 1.*rescale"):
        stats.mean_ci([0.2, 1.5, 0.3])
    with pytest.raises(NaNError, match="index 2"):
        stats.mean_ci([0.2, 0.5, float("nan")])


# --------------------------------------------------------------------------- coverage on the WikiPersonas design

DESIGNS = {
    # name: (axes, personas per axis, personal and divergent test questions per persona)
    "shipped spec (12 personas)": (4, 3, 3, 3),
    "larger (40 personas)": (8, 5, 10, 10),
}
EFFECTS = [(0.3, 0.6), (0.5, 1.0)]  # (persona sd, question sd) on the logit scale; cell sd 0.8
REPS = 1000  # replications per design and effect size: Monte-Carlo sd of a 95% coverage 0.007
B = 300  # resamples per interval


@functools.lru_cache(maxsize=None)
def coverage(design: str, sp: float, sq: float) -> tuple[float, float]:
    """Share of REPS intervals containing the population mean: the crossed
    interval, and the persona-only percentile interval (questions held fixed,
    what the ROUGE table used before)."""
    p, q = wikipersona_design(*DESIGNS[design])
    truth = population_mean(np.sqrt(sp**2 + sq**2 + CELL_SD**2))
    rng = np.random.default_rng(12)
    hits = np.zeros(2)
    for rep in range(REPS):
        y = rouge_like(rng, p, q, sp, sq)
        crossed = stats.mean_ci(y, clusters={"personas": p, "questions": q}, n_resamples=B, seed=rep)
        personas = stats.mean_ci(y, clusters={"personas": p}, n_resamples=B, method="percentile", seed=rep)
        hits += [crossed.low <= truth <= crossed.high, personas.low <= truth <= personas.high]
    out = hits / REPS
    print(f"\n{design}, persona sd {sp}, question sd {sq}: crossed {out[0]:.3f}, personas only {out[1]:.3f} ({REPS} reps)")
    return float(out[0]), float(out[1])


@pytest.mark.parametrize("design", list(DESIGNS))
@pytest.mark.parametrize("effects", EFFECTS)
def test_crossed_mean_covers_on_the_wikipersona_design(design, effects):
    # 0.95 +- 0.025 is about 3.5 Monte-Carlo sd at 1000 replications.
    assert 0.925 <= coverage(design, *effects)[0] <= 0.975


def test_pooled_coverage_is_nominal():
    pooled = np.mean([coverage(d, *e)[0] for d in DESIGNS for e in EFFECTS])
    # Monte-Carlo sd of the pooled figure: 0.0035; the 12-persona design's
    # shortfall of about a point (see the module docstring) is allowed for.
    assert 0.93 <= pooled <= 0.965


def test_persona_only_interval_undercovers_when_questions_are_shared():
    # With a real question effect the divergent questions shared within an
    # axis make personas dependent; resampling personas alone misses that.
    sp, sq = EFFECTS[-1]
    only = [coverage(d, sp, sq)[1] for d in DESIGNS]
    assert np.mean(only) < 0.90, only
    for d in DESIGNS:
        assert coverage(d, sp, sq)[0] - coverage(d, sp, sq)[1] >= 0.03
