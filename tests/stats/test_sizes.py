"""Sizes a caller asks for are checked before anything is allocated: a huge
request is an InvalidArgumentError naming the argument, never a failed
allocation that aborts the interpreter (``memory allocation of ... failed``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from persona_exp import stats
from persona_exp.errors import InvalidArgumentError

W = np.array([1.0, 2.0, 3.0])
A = np.array([0, 1, 1, 0, 1, 0, 0, 1] * 10, dtype=np.int8)
B = np.array([0, 1, 0, 0, 1, 1, 0, 1] * 10, dtype=np.int8)

HUGE = [
    ("n", lambda: stats.weighted_sample(W, 10**12, replace=True)),
    ("n", lambda: stats.weighted_sample(W, 10**12, replace=False)),
    ("n", lambda: stats.weighted_sample(W, 2**70, replace=True)),  # beyond 64 bits: checked before the binding
    ("n_personas", lambda: stats.assign_prompts(10**9, 3000, 150)),
    ("n_personas", lambda: stats.assign_prompts(2**40, 2**40, 2**40)),  # the product overflows 64 bits
    ("n_resamples", lambda: stats.kappa_ci(A, B, n_resamples=10**12)),
    ("n_resamples", lambda: stats.kappa_bootstrap(A, B, n_resamples=10**12)),
    ("n_resamples", lambda: stats.win_rate(A.astype(float), n_resamples=10**9)),
    ("n_resamples", lambda: stats.kappa_diff_ci(A, B, B, A, n_resamples=2**64)),
    ("k", lambda: stats.cohen_kappa(A, B, k=2**70)),
    ("level", lambda: stats.kappa_ci(A, B, level="95%")),  # not a size, but also refused before the binding
]


@pytest.mark.parametrize("argument,call", HUGE, ids=[f"{a}-{i}" for i, (a, _) in enumerate(HUGE)])
def test_a_huge_size_is_an_error_naming_its_argument(argument, call):
    with pytest.raises(InvalidArgumentError) as info:
        call()
    assert str(info.value).startswith(argument), str(info.value)


def test_sizes_below_the_caps_still_work():
    assert stats.weighted_sample(W, 100_000, replace=True, seed=1).shape == (100_000,)
    assert stats.assign_prompts(1586, 3000, 150, seed=0).shape == (1586, 150)  # PERSONA's design
    assert np.isfinite(stats.kappa_ci(A, B, n_resamples=100_000).low)


def test_the_interpreter_survives_a_request_for_8_terabytes():
    """In its own process: an abort would end it with a signal (SIGABRT) and
    print no Python error, which no in-process test can observe."""
    script = textwrap.dedent(
        """
        import numpy as np
        from persona_exp import stats
        from persona_exp.errors import InvalidArgumentError
        try:
            stats.weighted_sample(np.ones(5), 10**12, replace=True)
        except InvalidArgumentError as exc:
            print("clean error:", exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("clean error: n asks for 1000000000000 draws"), out.stdout + out.stderr
    assert "memory allocation" not in out.stderr
