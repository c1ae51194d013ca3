"""Coverage of the intervals by simulation, on the experiments' own design.

Every persona answers the same questions, so an estimate varies with the
personas drawn, the questions drawn and the cell (persona, question) noise. The
data here come from that model: on the logit scale a persona effect (sd 0.3 to
1), a question effect (sd 0 to 1) and a cell-level term (sd 0.5), then the
judgments are drawn. The truth is the population value over the persona and
question distributions, computed by a separate large simulation (two million
draws of the effects, another seed); a 95% interval should contain it about
95% of the time.

* kappa: two annotators; b copies a with probability logistic(eta), else is
  an independent draw from the same marginal (which varies by question). The
  population kappa is the kappa of the expected pooled 2 x 2 table.
* rates: 0/1 outcomes with probability logistic(eta); truth E[logistic(eta)].
* paired differences: a second run on the same personas and questions with
  the same cell probabilities (an A/A test, truth 0: its rejection rate is the
  false-positive rate) or with the agreement or rate shifted by 0.8 on the
  logit scale (truth: the difference of the two population values).

The simulation runs once per module (about a minute on two cores); the figures
it measured are printed with ``pytest -s``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.stats

from persona_exp import stats

DESIGNS = [
    # (personas, questions, persona sd, question sd)
    (40, 20, 0.3, 0.0),
    (40, 20, 0.6, 0.5),
    (40, 20, 1.0, 1.0),
    (40, 20, 0.3, 1.0),
    (20, 10, 0.3, 0.0),
    (20, 10, 0.6, 0.5),
    (20, 10, 1.0, 1.0),
    (20, 10, 0.3, 1.0),
]
CELL_SD = 0.5
AGREE, RATE, SHIFT = 1.0, -0.4, 0.8  # logit intercepts and the shift of the second run
REPS = 300  # replications per design
B = 400  # resamples per interval


def logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def pair_table(rho, pi):
    """Expected 2 x 2 table of (a, b): a ~ Bernoulli(pi); b = a with probability rho, else ~ Bernoulli(pi)."""
    pa = np.stack([1 - pi, pi], -1)
    return pa[..., :, None] * ((1 - rho)[..., None, None] * pa[..., None, :] + rho[..., None, None] * np.eye(2))


def kappa_of(table):
    n = table.sum()
    po = np.trace(table) / n
    pe = (table.sum(1) / n) @ (table.sum(0) / n)
    return (po - pe) / (1 - pe)


@functools.lru_cache(maxsize=None)
def truth(sp, sq, m=2_000_000, seed=987_654):
    """Population kappa (run 1, shifted run 2) and rate (run 1, shifted run 2)."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, sp, m) + rng.normal(0, sq, m) + rng.normal(0, CELL_SD, m)
    pi = logistic(0.3 + rng.normal(0, 0.5 * sq, m))
    k1 = kappa_of(pair_table(logistic(AGREE + effect), pi).mean(0))
    k2 = kappa_of(pair_table(logistic(AGREE + SHIFT + effect), pi).mean(0))
    rate_effect = rng.normal(0, sp, m) + rng.normal(0, sq, m) + rng.normal(0, CELL_SD, m)
    return k1, k2, logistic(RATE + rate_effect).mean(), logistic(RATE + SHIFT + rate_effect).mean()


def effects(rng, p, q, sp, sq):
    return rng.normal(0, sp, (p, 1)) + rng.normal(0, sq, (1, q)) + rng.normal(0, CELL_SD, (p, q))


def pair_labels(rng, rho, pi):
    a = rng.random(rho.shape) < pi
    b = np.where(rng.random(rho.shape) < rho, a, rng.random(rho.shape) < pi)
    return a.ravel().astype(np.int8), b.ravel().astype(np.int8)


def simulate(p, q, sp, sq, seed):
    """Hits per metric over REPS replications of one design, plus the
    persona-only interval's kappa hits (the interval the experiments used)."""
    k1, k2, r1, r2 = truth(sp, sq)
    rng = np.random.default_rng(seed)
    design = (np.repeat(np.arange(p), q), np.tile(np.arange(q), p))
    hits = dict.fromkeys(["kappa", "rate", "kappa_diff", "rate_diff", "kappa_aa", "rate_aa", "kappa_persona_only"], 0)
    for r in range(REPS):
        eta = effects(rng, p, q, sp, sq)
        pi = np.broadcast_to(logistic(0.3 + rng.normal(0, 0.5 * sq, (1, q))), (p, q))
        a, b = pair_labels(rng, logistic(AGREE + eta), pi)
        aa, bb = pair_labels(rng, logistic(AGREE + eta), pi)  # same cells, new judgments
        a2, b2 = pair_labels(rng, logistic(AGREE + SHIFT + eta), pi)
        ci = stats.kappa_ci(a, b, k=2, clusters=design, n_resamples=B, seed=r)
        hits["kappa"] += ci.low <= k1 <= ci.high
        ci = stats.kappa_ci(a, b, k=2, clusters=design[0], n_resamples=B, seed=r)
        hits["kappa_persona_only"] += ci.low <= k1 <= ci.high
        ci = stats.kappa_diff_ci(a2, b2, a, b, k=2, clusters=design, n_resamples=B, seed=r)
        hits["kappa_diff"] += ci.low <= k2 - k1 <= ci.high
        ci = stats.kappa_diff_ci(aa, bb, a, b, k=2, clusters=design, n_resamples=B, seed=r)
        hits["kappa_aa"] += ci.low <= 0 <= ci.high
        rate_eta = effects(rng, p, q, sp, sq)
        y = (rng.random((p, q)) < logistic(RATE + rate_eta)).ravel().astype(float)
        yy = (rng.random((p, q)) < logistic(RATE + rate_eta)).ravel().astype(float)
        y2 = (rng.random((p, q)) < logistic(RATE + SHIFT + rate_eta)).ravel().astype(float)
        ci = stats.win_rate(y, clusters=design, n_resamples=B, seed=r)
        hits["rate"] += ci.low <= r1 <= ci.high
        # a paired difference of rates d is the rate of (d + 1) / 2
        ci = stats.win_rate((y2 - y + 1) / 2, clusters=design, n_resamples=B, seed=r)
        hits["rate_diff"] += ci.low <= (r2 - r1 + 1) / 2 <= ci.high
        ci = stats.win_rate((yy - y + 1) / 2, clusters=design, n_resamples=B, seed=r)
        hits["rate_aa"] += ci.low <= 0.5 <= ci.high
    return hits


@pytest.fixture(scope="module")
def coverage():
    out = {d: simulate(*d, seed=1000 + i) for i, d in enumerate(DESIGNS)}
    print(f"\ncoverage of 95% intervals per design (personas, questions, persona sd, question sd), {REPS} replications")
    for d, hits in out.items():
        print(d, {k: round(v / REPS, 3) for k, v in hits.items()})
    return out


def pooled(coverage, metric):
    return sum(h[metric] for h in coverage.values()) / (REPS * len(coverage))


@pytest.mark.parametrize("metric", ["kappa", "rate", "kappa_diff", "rate_diff"])
def test_crossed_intervals_cover_the_population_value(coverage, metric):
    print(f"{metric}: pooled coverage {pooled(coverage, metric):.3f}")
    assert 0.93 <= pooled(coverage, metric) <= 0.975
    for design, hits in coverage.items():
        assert 0.91 <= hits[metric] / REPS <= 0.985, (design, metric, hits[metric] / REPS)


@pytest.mark.parametrize("metric", ["kappa_aa", "rate_aa"])
def test_paired_a_a_false_positive_rate(coverage, metric):
    fpr = 1 - pooled(coverage, metric)
    print(f"{metric}: false-positive rate {fpr:.3f}")
    assert 0.03 <= fpr <= 0.07


def test_persona_only_interval_undercovers_with_question_effects(coverage):
    # the simulation can tell a wrong design: resampling personas alone
    # ignores the questions and covers clearly less where they vary most
    worst = min(coverage[d]["kappa_persona_only"] for d in DESIGNS if d[3] == 1.0) / REPS
    assert worst < 0.88


# --------------------------------------------------------------------------- near the boundary


@pytest.mark.parametrize("method", ["auto", "percentile"])
def test_kappa_near_one_at_n_50_keeps_coverage(method):
    # kappa 0.94 on 50 items: a fifth of the samples agree on every item
    # (estimate 1), where a percentile interval is the point [1, 1]
    rng = np.random.default_rng(5)
    rho, pi = np.array(0.94), np.array(0.5)
    truth_kappa = kappa_of(pair_table(rho, pi))
    assert truth_kappa == pytest.approx(0.94)
    reps, hits, points, perfect = 1000, 0, 0, 0
    for r in range(reps):
        a, b = pair_labels(rng, np.full(50, rho), np.full(50, pi))
        ci = stats.kappa_ci(a, b, k=2, n_resamples=500, method=method, seed=r)
        hits += ci.low <= truth_kappa <= ci.high
        points += ci.low == ci.high
        perfect += ci.estimate == 1.0
    print(f"kappa 0.94, n = 50, {method}: coverage {hits / reps:.3f}, perfect samples {perfect / reps:.3f}")
    assert perfect > 0.15 * reps  # the boundary case is exercised
    assert points == 0
    assert hits >= 0.92 * reps


def test_rate_near_zero_keeps_coverage_under_clusters():
    # a rare event (about 2%) over 30 personas x 10 questions: many samples
    # have few or no events
    rng = np.random.default_rng(6)
    design = np.repeat(np.arange(30), 10)
    sd = 0.5
    truth_rate = logistic(-4.0 + rng.normal(0, sd, 2_000_000)).mean()
    reps, hits = 600, 0
    for r in range(reps):
        prob = logistic(-4.0 + np.repeat(rng.normal(0, sd, 30), 10))
        y = (rng.random(300) < prob).astype(float)
        ci = stats.win_rate(y, clusters=design, n_resamples=400, seed=r)
        assert ci.low < ci.high
        hits += ci.low <= truth_rate <= ci.high
    print(f"rate {truth_rate:.3f} over 30 personas: coverage {hits / reps:.3f}")
    assert hits >= 0.92 * reps


def test_p_value_agrees_with_the_interval():
    # a 95% interval excludes 0 about when p < 0.05 (the same se, t vs normal quantile)
    rng = np.random.default_rng(7)
    p, q = np.repeat(np.arange(40), 20), np.tile(np.arange(20), 40)
    y = (rng.random(800) < 0.55).astype(float)
    ci = stats.win_rate(y, clusters=(p, q), n_resamples=1000, seed=1)
    z = (ci.estimate - 0.5) / ci.se
    assert ci.p_value(0.5) == pytest.approx(2 * scipy.stats.norm.sf(abs(z)))
    assert (ci.p_value(ci.low) > 0.04) and (ci.p_value(ci.high) > 0.04)
    assert ci.p_value(ci.estimate) == pytest.approx(1.0)
