"""Golden outputs for fixed seeds.

The random streams are PCG with integer seeding and the few transcendental
functions come from a pure-Rust libm, so these exact values must come out on
every platform and thread count. A change here means seeded results of earlier
runs can no longer be reproduced: treat it as a breaking change.
"""

import numpy as np
import pytest

from persona_exp import stats

W = np.arange(1, 21, dtype=float)


def test_weighted_sample_with_replacement_golden():
    assert stats.weighted_sample(W, 8, replace=True, seed=42).tolist() == [12, 16, 4, 16, 14, 19, 15, 17]


def test_weighted_sample_without_replacement_golden():
    assert stats.weighted_sample(W, 8, replace=False, seed=42).tolist() == [7, 8, 9, 14, 15, 16, 17, 18]


def test_assign_prompts_golden():
    assert stats.assign_prompts(2, 30, 5, seed=42).tolist() == [[5, 16, 22, 24, 17], [25, 14, 15, 18, 7]]


def test_kappa_ci_golden():
    a = np.array([0, 1, 1, 0, 1, 0, 1, 1, 0, 0] * 10, dtype=np.int8)
    b = np.array([0, 1, 0, 0, 1, 1, 1, 1, 0, 1] * 10, dtype=np.int8)
    est, low, high = stats.kappa_ci(a, b, n_resamples=200, method="percentile", seed=42)
    assert est == pytest.approx(0.4, abs=1e-15)
    assert (low, high) == pytest.approx((0.215432313814504, 0.5609479177305841), abs=1e-12)
    # the crossed default (the labels repeat with the question: a large question effect)
    crossed = stats.kappa_ci(a, b, clusters=(np.arange(100) // 10, np.arange(100) % 10), n_resamples=200, seed=42)
    assert (crossed.low, crossed.high, crossed.se) == pytest.approx(
        (-0.277224281247443, 0.8116926232627137, 0.28557095214631245), abs=1e-12
    )
