"""Bad input raises the documented persona_exp.errors classes, with a message
that names the offending argument, and never a panic of the native core."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from persona_exp import errors, stats
from persona_exp.errors import (
    CategoryError,
    DataError,
    EmptyInputError,
    InvalidArgumentError,
    LengthMismatchError,
    NaNError,
    PersonaExpError,
    WeightError,
)

NAN = float("nan")


def names(message: str, argument: str) -> bool:
    """Whether ``argument`` appears as a word of ``message``."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(argument)}(?![A-Za-z0-9_])", message) is not None


def check_raises(error, call, *arguments):
    """``call()`` raises ``error`` (and nothing broader) naming every argument."""
    with pytest.raises(error) as exc:
        call()
    assert isinstance(exc.value, PersonaExpError)
    assert type(exc.value).__name__ != "PanicException"
    message = str(exc.value)
    for argument in arguments:
        assert names(message, argument), f"{argument!r} not named in: {message}"
    return exc.value


# --------------------------------------------------------------------------- hierarchy


def test_error_hierarchy():
    for cls in (
        DataError,
        EmptyInputError,
        LengthMismatchError,
        NaNError,
        CategoryError,
        WeightError,
        InvalidArgumentError,
    ):
        assert issubclass(cls, PersonaExpError)
        assert issubclass(cls, ValueError)
    for cls in (EmptyInputError, LengthMismatchError, NaNError, CategoryError, WeightError):
        assert issubclass(cls, DataError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), PersonaExpError)
    assert PersonaExpError.exit_code == 2


# --------------------------------------------------------------------------- lengths


A3, B2 = np.array([0, 1, 2]), np.array([0, 1])


@pytest.mark.parametrize(
    "call",
    [
        lambda: stats.cohen_kappa(A3, B2),
        lambda: stats.agreement(A3, B2),
        lambda: stats.confusion_matrix(A3, B2),
        lambda: stats.kappa_bootstrap(A3, B2, n_resamples=10),
        lambda: stats.kappa_ci(A3, B2, n_resamples=10),
    ],
)
def test_length_mismatch_of_a_and_b(call):
    check_raises(LengthMismatchError, call, "a", "b")


def test_length_mismatch_in_kappa_diff_ci():
    x = np.array([0, 1, 0, 1])
    y = np.array([0, 1, 1])
    check_raises(LengthMismatchError, lambda: stats.kappa_diff_ci(x, y, x, x, n_resamples=10), "a1", "b1")
    check_raises(LengthMismatchError, lambda: stats.kappa_diff_ci(x, x, x, y, n_resamples=10), "a2", "b2")
    check_raises(LengthMismatchError, lambda: stats.kappa_diff_ci(x, x, y, y, n_resamples=10), "a1", "a2")


def test_length_mismatch_of_clusters():
    x = np.array([0, 1, 0, 1, 1])
    check_raises(LengthMismatchError, lambda: stats.kappa_ci(x, x, clusters=[0, 0, 1], n_resamples=10), "clusters")
    check_raises(LengthMismatchError, lambda: stats.kappa_bootstrap(x, x, clusters=[0, 1], n_resamples=10), "clusters")
    check_raises(LengthMismatchError, lambda: stats.kappa_diff_ci(x, x, x, x, clusters=[0], n_resamples=10), "clusters")
    check_raises(LengthMismatchError, lambda: stats.win_rate([1, 0, 1], clusters=[0, 1], n_resamples=10), "clusters")


def test_length_mismatch_in_align_judgments():
    check_raises(
        LengthMismatchError, lambda: stats.align_judgments([1, 2, 3], [0, 1], [1, 2], [0, 1]), "keys_a", "labels_a"
    )
    check_raises(
        LengthMismatchError, lambda: stats.align_judgments([1, 2], [0, 1], [1, 2], [0, 1, 1]), "keys_b", "labels_b"
    )


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("replace", [True, False])
def test_negative_weights(replace):
    check_raises(WeightError, lambda: stats.weighted_sample([1.0, -0.5, 2.0], 2, replace=replace), "weights")
    check_raises(WeightError, lambda: stats.weighted_sample(np.array([3, 0, -1]), 1, replace=replace), "weights")


@pytest.mark.parametrize("replace", [True, False])
def test_all_zero_weights(replace):
    check_raises(WeightError, lambda: stats.weighted_sample([0.0, 0.0, 0.0], 1, replace=replace), "weights")
    check_raises(WeightError, lambda: stats.weighted_sample(np.zeros(5, dtype=np.int64), 0, replace=replace), "weights")


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("bad", [NAN, math.inf, -math.inf])
def test_non_finite_weights(replace, bad):
    error = (WeightError, NaNError)
    check_raises(error, lambda: stats.weighted_sample([1.0, bad, 2.0], 1, replace=replace), "weights")


# --------------------------------------------------------------------------- NaN


def test_nan_labels():
    good = np.array([0.0, 1.0, 1.0])
    bad = np.array([0.0, NAN, 1.0])
    check_raises(NaNError, lambda: stats.cohen_kappa(bad, good), "a")
    check_raises(NaNError, lambda: stats.cohen_kappa(good, bad), "b")
    check_raises(NaNError, lambda: stats.confusion_matrix(good, bad), "b")
    check_raises(NaNError, lambda: stats.kappa_ci(bad, good, n_resamples=10), "a")
    check_raises(NaNError, lambda: stats.kappa_diff_ci(good, good, good, bad, n_resamples=10), "b2")
    check_raises(NaNError, lambda: stats.kappa_matrix(np.vstack([good, bad])), "labels")
    check_raises(NaNError, lambda: stats.align_judgments([1, 2, 3], bad, [1, 2, 3], good), "labels_a")


def test_nan_in_other_inputs():
    check_raises(NaNError, lambda: stats.win_rate([1.0, NAN, 0.0], n_resamples=10), "outcomes")
    check_raises(NaNError, lambda: stats.fleiss_kappa([[2.0, 1.0], [NAN, 1.0]]), "counts")
    x = np.array([0, 1, 0])
    check_raises(NaNError, lambda: stats.kappa_ci(x, x, clusters=[0.0, NAN, 1.0], n_resamples=10), "clusters")


# --------------------------------------------------------------------------- categories


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.float64])
def test_label_outside_categories(dtype):
    good = np.array([0, 1, 2, 1], dtype=dtype)
    high = np.array([0, 1, 3, 1], dtype=dtype)
    check_raises(CategoryError, lambda: stats.cohen_kappa(high, good, k=3), "a")
    check_raises(CategoryError, lambda: stats.cohen_kappa(good, high, k=3), "b")
    check_raises(CategoryError, lambda: stats.agreement(good, high, k=3, weights="linear"), "b")
    check_raises(CategoryError, lambda: stats.confusion_matrix(high, good, k=2), "a")
    check_raises(CategoryError, lambda: stats.kappa_matrix(np.vstack([good, high]), k=3), "labels")
    check_raises(CategoryError, lambda: stats.kappa_ci(high, good, k=3, n_resamples=10), "a")
    check_raises(CategoryError, lambda: stats.kappa_bootstrap(good, high, k=3, n_resamples=10), "b")
    check_raises(CategoryError, lambda: stats.kappa_diff_ci(good, good, high, good, k=3, n_resamples=10), "a2")


@pytest.mark.parametrize("negative", [-2, -7, -100])
def test_negative_label_other_than_minus_one(negative):
    good = np.array([0, 1, -1, 1])
    bad = np.array([0, negative, 1, 1])
    check_raises(CategoryError, lambda: stats.cohen_kappa(bad, good), "a")
    check_raises(CategoryError, lambda: stats.cohen_kappa(good, bad), "b")
    check_raises(CategoryError, lambda: stats.cohen_kappa(good.astype(np.int8), bad.astype(np.int8)), "b")
    check_raises(CategoryError, lambda: stats.confusion_matrix(bad, good), "a")
    check_raises(CategoryError, lambda: stats.kappa_matrix(np.vstack([good, bad])), "labels")
    check_raises(CategoryError, lambda: stats.kappa_bootstrap(bad, good, n_resamples=10), "a")
    check_raises(CategoryError, lambda: stats.kappa_ci(good, bad, n_resamples=10, clusters=[0, 0, 1, 1]), "b")
    check_raises(CategoryError, lambda: stats.kappa_diff_ci(good, good, good, bad, n_resamples=10), "b2")


def test_non_integer_float_labels():
    check_raises(CategoryError, lambda: stats.cohen_kappa([0.0, 1.5, 1.0], [0, 1, 1]), "a")


# --------------------------------------------------------------------------- empty input


def test_empty_inputs():
    empty = np.array([], dtype=np.int64)
    check_raises(EmptyInputError, lambda: stats.cohen_kappa(empty, empty), "a")
    check_raises(EmptyInputError, lambda: stats.agreement([], []), "a")
    check_raises(EmptyInputError, lambda: stats.confusion_matrix(empty, empty), "a")
    check_raises(EmptyInputError, lambda: stats.kappa_ci(empty, empty, n_resamples=10), "a")
    check_raises(EmptyInputError, lambda: stats.kappa_bootstrap(empty, empty, n_resamples=10), "a")
    check_raises(EmptyInputError, lambda: stats.kappa_diff_ci(empty, empty, empty, empty, n_resamples=10), "a1")
    check_raises(EmptyInputError, lambda: stats.kappa_matrix(np.empty((0, 0), dtype=np.int64)), "labels")
    check_raises(EmptyInputError, lambda: stats.fleiss_kappa(np.zeros((0, 3))), "counts")
    check_raises(EmptyInputError, lambda: stats.weighted_sample([], 1, replace=True), "weights")
    check_raises(EmptyInputError, lambda: stats.weighted_sample(np.array([]), 0, replace=False), "weights")
    check_raises(EmptyInputError, lambda: stats.win_rate([], n_resamples=10), "outcomes")
    check_raises(EmptyInputError, lambda: stats.align_judgments([], [], [1], [0]), "keys_a")


# --------------------------------------------------------------------------- fleiss counts


def test_fleiss_bad_counts():
    # items with different numbers of raters
    check_raises(DataError, lambda: stats.fleiss_kappa([[2, 1, 0], [1, 1, 0]]), "counts")
    # a single rater per item cannot agree with anybody
    check_raises(DataError, lambda: stats.fleiss_kappa([[1, 0], [0, 1]]), "counts")
    # negative counts
    check_raises(DataError, lambda: stats.fleiss_kappa([[3, -1], [1, 1]]), "counts")
    # not a table
    check_raises(DataError, lambda: stats.fleiss_kappa([3, 1, 2]), "counts")


# --------------------------------------------------------------------------- parameters


X = np.array([0, 1, 2, 1, 0, 2, 1, 1])
Y = np.array([0, 1, 1, 1, 0, 2, 2, 1])


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: stats.kappa_ci(X, Y, level=0.0, n_resamples=10), "level"),
        (lambda: stats.kappa_ci(X, Y, level=1.0, n_resamples=10), "level"),
        (lambda: stats.kappa_ci(X, Y, level=1.5, n_resamples=10), "level"),
        (lambda: stats.kappa_ci(X, Y, level=NAN, n_resamples=10), "level"),
        (lambda: stats.kappa_diff_ci(X, Y, Y, X, level=-0.1, n_resamples=10), "level"),
        (lambda: stats.win_rate([1, 0, 1], level=2.0, n_resamples=10), "level"),
        (lambda: stats.kappa_ci(X, Y, method="studentized", n_resamples=10), "method"),
        (lambda: stats.kappa_diff_ci(X, Y, Y, X, method="basic", n_resamples=10), "method"),
        (lambda: stats.win_rate([1, 0, 1], method="", n_resamples=10), "method"),
        (lambda: stats.fleiss_kappa([[1, 1], [2, 0]], method="cohen"), "method"),
        (lambda: stats.cohen_kappa(X, Y, weights="cubic"), "weights"),
        (lambda: stats.kappa_matrix(np.vstack([X, Y]), weights="Linear "), "weights"),
        (lambda: stats.kappa_ci(X, Y, weights="squared", n_resamples=10), "weights"),
        (lambda: stats.kappa_ci(X, Y, n_resamples=0), "n_resamples"),
        (lambda: stats.kappa_bootstrap(X, Y, n_resamples=0), "n_resamples"),
        (lambda: stats.kappa_bootstrap(X, Y, n_resamples=-5), "n_resamples"),
        (lambda: stats.win_rate([1, 0], n_resamples=-1), "n_resamples"),
        (lambda: stats.cohen_kappa(X, Y, k=0), "k"),
        (lambda: stats.cohen_kappa(X, Y, k=-3), "k"),
        (lambda: stats.weighted_sample([1, 2, 3], -1, replace=True), "n"),
        (lambda: stats.weighted_sample([1, 2, 3], 4, replace=False), "n"),
        (lambda: stats.assign_prompts(-1, 10, 2), "n_personas"),
        (lambda: stats.assign_prompts(3, -10, 2), "pool_size"),
        (lambda: stats.assign_prompts(3, 10, -2), "n_per_persona"),
    ],
)
def test_invalid_parameters(call, argument):
    exc = check_raises(PersonaExpError, call, argument)
    assert isinstance(exc, ValueError)


@pytest.mark.parametrize("bad", [2.0, -1.0, 0.25])
def test_outcomes_must_be_win_loss_or_tie(bad):
    check_raises(DataError, lambda: stats.win_rate([1.0, 0.0, bad], n_resamples=10), "outcomes")


# --------------------------------------------------------------------------- no panics


def test_random_bad_inputs_never_panic():
    """A barrage of odd inputs: each call returns or raises a PersonaExpError."""
    rng = np.random.default_rng(1000)
    calls = 0
    for _ in range(300):
        n = int(rng.integers(1, 8))
        a = rng.integers(-3, 6, size=n)
        b = rng.integers(-3, 6, size=int(rng.choice([n, n, n, n + 1])))
        k = rng.choice([None, 0, 1, 2, 3, 6])
        k = None if k is None else int(k)
        weights = rng.choice([None, "linear", "quadratic"])
        method = str(rng.choice(["percentile", "bca"]))
        clusters = rng.integers(0, 3, size=n) if rng.random() < 0.3 else None
        counts = rng.integers(-1, 4, size=(n, int(rng.integers(1, 4))))
        w = rng.choice([0.0, 1.0, 2.5, -1.0, NAN, math.inf], size=n)
        outcomes = rng.choice([0.0, 0.5, 1.0, NAN, 3.0], size=n)
        fleiss_method = str(rng.choice(["fleiss", "randolph"]))
        n_draws, replace = int(rng.integers(0, n + 2)), bool(rng.random() < 0.5)
        sizes = [int(x) for x in rng.integers(0, 5, size=3)]
        candidates = [
            (stats.agreement, (a, b), {"k": k, "weights": weights}),
            (stats.confusion_matrix, (a, b), {"k": k}),
            (stats.kappa_matrix, (np.vstack([a, a[::-1]]),), {"k": k, "weights": weights}),
            (stats.kappa_bootstrap, (a, b), {"k": k, "weights": weights, "clusters": clusters, "n_resamples": 20}),
            (
                stats.kappa_ci,
                (a, b),
                {"k": k, "weights": weights, "clusters": clusters, "n_resamples": 20, "method": method},
            ),
            (stats.kappa_diff_ci, (a, b, b, a), {"k": k, "weights": weights, "n_resamples": 20, "method": method}),
            (stats.fleiss_kappa, (counts,), {"method": fleiss_method}),
            (stats.weighted_sample, (w, n_draws), {"replace": replace}),
            (stats.win_rate, (outcomes,), {"clusters": clusters, "n_resamples": 20, "method": method}),
            (stats.assign_prompts, tuple(sizes), {}),
            (stats.align_judgments, (a, a, b, b), {}),
        ]
        for function, args, kwargs in candidates:
            calls += 1
            try:
                function(*args, **kwargs)
            except PersonaExpError:
                pass
            except BaseException as exc:  # noqa: BLE001 - a panic derives from BaseException
                pytest.fail(f"{function.__name__}{args} {kwargs}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
    assert calls == 300 * 11


@pytest.mark.parametrize("label", [100_000, 2_000_000_000])
def test_huge_label_does_not_crash_the_process(label):
    """A label such as an item id passed by mistake makes k enormous: the call
    must return or raise a PersonaExpError, not panic, abort or exhaust memory
    (run in a child process limited to 4 GiB)."""
    script = textwrap.dedent(
        """
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        import numpy as np
        from persona_exp import stats
        from persona_exp.errors import PersonaExpError
        a = np.array([0, 1, int(sys.argv[1]), 1], dtype=np.int64)
        b = np.array([0, 1, 1, 1], dtype=np.int64)
        for name, call in [
            ("cohen_kappa", lambda: stats.cohen_kappa(a, b)),
            ("confusion_matrix", lambda: stats.confusion_matrix(a, b)),
            ("kappa_matrix", lambda: stats.kappa_matrix(np.vstack([a, b]))),
            ("kappa_ci", lambda: stats.kappa_ci(a, b, n_resamples=10)),
        ]:
            try:
                call()
                print(name, "returned")
            except PersonaExpError as exc:
                print(name, "raised", type(exc).__name__)
            except BaseException as exc:
                print(name, "FAILED", type(exc).__name__, exc)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(label)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"child died (code {proc.returncode}) after {proc.stdout!r}: {proc.stderr[:600]}"
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4, proc.stdout + proc.stderr
    assert not any("FAILED" in line for line in lines), proc.stdout
