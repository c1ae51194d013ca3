"""The topic-stratified split on hand-made frames: allocation, seeds and errors."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest

from persona_exp import prompts
from persona_exp.errors import DataError, EmptyInputError, InvalidArgumentError


def make(sizes: dict[str, int]) -> pl.DataFrame:
    texts, topics = [], []
    for topic, size in sizes.items():
        for i in range(size):
            texts.append(f"Question {i} about {topic}, what do you think?")
            topics.append(topic)
    return pl.DataFrame(
        {"id": [prompts.prompt_id(t) for t in texts], "text": texts, "topic": topics, "source": ["test"] * len(texts)}
    )


def per_topic(frame):
    return Counter(zip(frame["topic"], frame["split"]))


def test_paper_sized_split_is_exact_and_proportional():
    sizes = {f"topic {i:02d}": 40 + 13 * i for i in range(22)}  # 22 topics, as in PRISM's clusters
    frame = make(sizes)
    n = frame.height
    split = prompts.split_by_topic(frame, test_size=round(n * 868 / 3868), seed=0)
    n_test = round(n * 868 / 3868)
    assert Counter(split["split"])["test"] == n_test
    counts = per_topic(split)
    for topic, size in sizes.items():
        assert counts[(topic, "test")] >= 1 and counts[(topic, "train")] >= 1
        assert abs(counts[(topic, "test")] - size * n_test / n) < 1


def test_fraction_is_rounded_half_up():
    frame = make({"a": 5, "b": 5})
    assert Counter(prompts.split_by_topic(frame, test_fraction=0.25)["split"])["test"] == 3  # 2.5 -> 3


def test_small_topics_keep_both_sides_even_when_their_share_rounds_to_zero():
    frame = make({"big": 100, "two": 2, "three": 3})
    split = prompts.split_by_topic(frame, test_fraction=0.1, seed=4)
    counts = per_topic(split)
    for topic in ("two", "three"):
        assert counts[(topic, "test")] == 1 and counts[(topic, "train")] >= 1
    assert counts[(("big", "test"))] == 9  # 11 in total, 2 taken by the small topics


def test_single_prompt_topics_go_to_one_side_chosen_by_the_seed():
    frame = make({**{f"solo {i}": 1 for i in range(10)}, "many": 30})
    sides = set()
    for seed in range(20):
        split = prompts.split_by_topic(frame, test_fraction=0.3, seed=seed)
        assert Counter(split["split"])["test"] == 12
        sides.add(tuple(split.filter(pl.col("topic").str.starts_with("solo"))["split"]))
    assert len(sides) > 1


def test_existing_split_column_is_replaced_and_rows_keep_their_order():
    frame = make({"a": 4, "b": 6}).with_columns(split=pl.lit("old"))
    split = prompts.split_by_topic(frame, test_size=3, seed=1)
    assert split.columns == frame.columns
    assert set(split["split"]) == {"train", "test"}
    assert split["text"].to_list() == frame["text"].to_list()


def test_null_topics_form_one_group():
    frame = make({"a": 6}).with_columns(topic=pl.when(pl.int_range(pl.len()) < 3).then(pl.col("topic")))
    counts = Counter(prompts.split_by_topic(frame, test_size=2, seed=0)["split"])
    assert counts == {"test": 2, "train": 4}


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({}, "exactly one of"),
        ({"test_fraction": 0.2, "test_size": 3}, "exactly one of"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"test_fraction": "0.2"}, "test_fraction"),
        ({"test_size": 0}, "test_size"),
        ({"test_size": 10}, "test_size"),
        ({"test_size": 2.0}, "test_size"),
        ({"test_size": 1}, "between 3 and 7"),  # three topics of >= 2 need >= 3 test prompts
        ({"test_size": 3, "seed": "x"}, "seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, fragment):
    frame = make({"a": 3, "b": 3, "c": 4})
    with pytest.raises(InvalidArgumentError, match=fragment):
        prompts.split_by_topic(frame, **kwargs)


def test_bad_frames():
    with pytest.raises(EmptyInputError):
        prompts.split_by_topic(make({}).cast(pl.String), test_size=1)
    with pytest.raises(DataError, match="'topic'"):
        prompts.split_by_topic(pl.DataFrame({"text": ["Is this a question?"]}), test_size=1)
