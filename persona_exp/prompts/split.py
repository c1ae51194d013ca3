"""A seeded train/test split of prompts, stratified by topic.

PERSONA held out 868 of its 3,868 prompts "which uniformly cover the
distribution of topics", to test generalisation to unseen questions. Here each
topic gets a share of the test set proportional to its size (largest remainder,
so the total is exact), and every topic with at least two prompts keeps at
least one on each side.
"""

from __future__ import annotations

import heapq
import math
from numbers import Real
from typing import Any

import numpy as np
import polars as pl

from persona_exp.errors import EmptyInputError, InvalidArgumentError
from persona_exp.prompts._frame import UNKNOWN_TOPIC, check_frame

#: PERSONA's held-out share: 868 test prompts of 3,868.
PAPER_TEST_FRACTION = 868 / 3868


def split_by_topic(
    frame: pl.DataFrame,
    *,
    test_fraction: float | None = None,
    test_size: int | None = None,
    seed: int = 0,
) -> pl.DataFrame:
    """The frame with a ``split`` column, ``"train"`` or ``"test"``.

    Give exactly one of ``test_fraction`` (0 < f < 1, rounded half up to a
    count) and ``test_size`` (a count). The same prompts and seed give the same
    split whatever the row order, because rows are ranked by (topic, id, text)
    before the random draw. A topic with a single prompt goes to either side,
    chosen by the seed. Rows keep their order; an existing ``split`` column is
    replaced.
    """
    check_frame(frame, ("topic",), "split_by_topic")
    order_by = [c for c in ("id", "text") if c in frame.columns]
    check_frame(frame, tuple(order_by), "split_by_topic")
    n = frame.height
    if n == 0:
        raise EmptyInputError("split_by_topic: the prompt frame is empty; there is nothing to split.")
    n_test = _test_count(n, test_fraction, test_size)
    rng = np.random.default_rng(_seed(seed))

    # Canonical order: by topic, id and text, then position (only exact copies tie).
    keyed = frame.select(
        pl.col("topic").fill_null(UNKNOWN_TOPIC).alias("_topic"),
        *(pl.col(c).alias(f"_{c}") for c in order_by),
    ).with_row_index("_row")
    canon = keyed.sort(["_topic", *(f"_{c}" for c in order_by), "_row"])
    sizes = canon.group_by("_topic", maintain_order=True).len()
    topics = sizes.get_column("_topic").to_list()
    counts = sizes.get_column("len").to_list()

    quotas = _allocate(counts, n_test, n, rng.permutation(len(counts)), test_fraction, test_size)
    ranks = canon.with_columns(pl.Series("_key", rng.random(n))).with_columns(
        pl.col("_key").rank("ordinal").over("_topic").alias("_rank")
    )
    quota_frame = pl.DataFrame({"_topic": topics, "_quota": quotas}, schema={"_topic": pl.String, "_quota": pl.Int64})
    test_rows = (
        ranks.join(quota_frame, on="_topic", how="left")
        .filter(pl.col("_rank") <= pl.col("_quota"))
        .get_column("_row")
        .to_numpy()
    )
    is_test = np.zeros(n, dtype=bool)
    is_test[test_rows] = True
    split = pl.Series("split", np.where(is_test, "test", "train"), dtype=pl.String)
    return frame.with_columns(split)


def _test_count(n: int, test_fraction: Any, test_size: Any) -> int:
    if (test_fraction is None) == (test_size is None):
        raise InvalidArgumentError(
            "split_by_topic: give exactly one of test_fraction (e.g. 0.2244 as in PERSONA) or test_size (e.g. 868)."
        )
    if test_fraction is not None:
        if isinstance(test_fraction, bool) or not isinstance(test_fraction, Real) or not 0 < test_fraction < 1:
            raise InvalidArgumentError(f"split_by_topic: test_fraction must be a number between 0 and 1, got {test_fraction!r}.")
        count = math.floor(float(test_fraction) * n + 0.5)
        if not 0 < count < n:
            raise InvalidArgumentError(
                f"split_by_topic: test_fraction {test_fraction} of {n} prompts gives {count} test prompts; "
                "both sides need at least one."
            )
        return count
    if isinstance(test_size, bool) or not isinstance(test_size, (int, np.integer)):
        raise InvalidArgumentError(f"split_by_topic: test_size must be a whole number, got {test_size!r}.")
    if not 0 < test_size < n:
        raise InvalidArgumentError(f"split_by_topic: test_size is {test_size}; with {n} prompts it must be between 1 and {n - 1}.")
    return int(test_size)


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidArgumentError(f"split_by_topic: seed must be an integer, got {seed!r}.")
    return int(seed) & 0xFFFF_FFFF_FFFF_FFFF


def _allocate(
    counts: list[int], n_test: int, n: int, tiebreak: np.ndarray, fraction: Any, size: Any
) -> list[int]:
    """Test prompts per topic: proportional, exact in total, both sides covered.

    Topic g's ideal share is counts[g] * n_test / n. Start from its floor held
    within the bounds ([1, n_g - 1] for n_g >= 2, [0, 1] for a single prompt),
    then add to (or take from) the topics furthest below (above) their ideal,
    ties broken by the seeded ``tiebreak``. Comparisons use the integer
    numerator counts[g] * n_test - t * n, so there is no rounding.
    """
    lo = [1 if c >= 2 else 0 for c in counts]
    hi = [c - 1 if c >= 2 else 1 for c in counts]
    if not sum(lo) <= n_test <= sum(hi):
        given = f"test_fraction {fraction}" if fraction is not None else f"test_size {size}"
        raise InvalidArgumentError(
            f"split_by_topic: {given} asks for {n_test} test prompts, but keeping each of the "
            f"{sum(c >= 2 for c in counts)} topics with two or more prompts on both sides needs between "
            f"{sum(lo)} and {sum(hi)}; change the test share or merge small topics."
        )
    quota = [min(max(c * n_test // n, lo[g]), hi[g]) for g, c in enumerate(counts)]
    total = sum(quota)
    if total < n_test:
        heap = [(-(c * n_test - quota[g] * n), int(tiebreak[g]), g) for g, c in enumerate(counts) if quota[g] < hi[g]]
        heapq.heapify(heap)
        while total < n_test:
            _, tie, g = heapq.heappop(heap)
            quota[g] += 1
            total += 1
            if quota[g] < hi[g]:
                heapq.heappush(heap, (-(counts[g] * n_test - quota[g] * n), tie, g))
    elif total > n_test:
        heap = [(c * n_test - quota[g] * n, int(tiebreak[g]), g) for g, c in enumerate(counts) if quota[g] > lo[g]]
        heapq.heapify(heap)
        while total > n_test:
            _, tie, g = heapq.heappop(heap)
            quota[g] -= 1
            total -= 1
            if quota[g] > lo[g]:
                heapq.heappush(heap, (counts[g] * n_test - quota[g] * n, tie, g))
    return quota


__all__ = ["PAPER_TEST_FRACTION", "split_by_topic"]
