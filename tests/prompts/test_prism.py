"""The prompt pipeline on real PRISM opening prompts (a 233-prompt sample).

Every expected count is computed here with plain Python from the raw JSON
records, never with the package under test.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

import pytest

from persona_exp import prompts


@pytest.fixture(scope="module")
def frame(prism_path):
    return prompts.load_file(prism_path)


def test_loader_reads_opening_prompt_and_topic_cluster_by_default(frame, prism_records):
    assert frame.columns[:4] == ["id", "text", "topic", "source"]
    assert frame.height == len(prism_records) == 233
    assert frame["text"].to_list() == [r["opening_prompt"] for r in prism_records]
    expected_topics = [r.get("topic_cluster") or "unknown" for r in prism_records]
    assert frame["topic"].to_list() == expected_topics
    assert set(frame["source"]) == {"prism_opening_prompts_sample.jsonl"}


def test_question_mark_filter_count(frame, prism_records):
    expected_removed = sum("?" not in r["opening_prompt"] for r in prism_records)
    kept, report = prompts.filter_prompts(frame, [{"question_mark": True}])
    assert report == [("question_mark", 233, expected_removed, 233 - expected_removed)]
    assert kept["text"].to_list() == [r["opening_prompt"] for r in prism_records if "?" in r["opening_prompt"]]
    assert 0 < expected_removed < 233  # the sample really exercises the filter


def test_five_word_filter_count(frame, prism_records):
    expected_removed = sum(len(r["opening_prompt"].split()) < 5 for r in prism_records)
    _, report = prompts.filter_prompts(frame, [{"min_words": 5}])
    assert report == [("min_words", 233, expected_removed, 233 - expected_removed)]
    assert 0 < expected_removed < 233


def test_paper_rules_in_sequence(frame, prism_records):
    texts = [r["opening_prompt"] for r in prism_records]
    with_q = [t for t in texts if "?" in t]
    long_q = [t for t in with_q if len(t.split()) >= 5]
    unique, seen = [], set()
    for t in long_q:
        key = " ".join(unicodedata.normalize("NFKC", t).casefold().split())
        if key not in seen:
            seen.add(key)
            unique.append(t)
    no_weather = [t for t in unique if not re.search(r"(?i)weather", t)]

    kept, report = prompts.filter_prompts(
        frame, [{"question_mark": True}, {"min_words": 5}, {"dedupe": True}, {"exclude": "(?i)weather"}]
    )
    assert [step.after for step in report] == [len(with_q), len(long_q), len(unique), len(no_weather)]
    assert [step.removed for step in report] == [
        233 - len(with_q),
        len(with_q) - len(long_q),
        len(long_q) - len(unique),
        len(unique) - len(no_weather),
    ]
    assert kept["text"].to_list() == no_weather
    assert kept["id"].n_unique() == kept.height


def test_case_and_spacing_variants_share_an_id(frame):
    ids = dict(zip(frame["text"], frame["id"]))
    assert ids["Do aliens exist"] == ids["do aliens exist"]
    assert ids["Hey"] == ids["hey"]
    assert ids["Do aliens exist"] != ids["Do aliens exist?"]
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in frame["id"])


@pytest.mark.parametrize("kwargs", [{"test_fraction": prompts.PAPER_TEST_FRACTION}, {"test_size": 60}])
def test_split_keeps_every_topic_on_both_sides(frame, prism_records, kwargs):
    split = prompts.split_by_topic(frame, seed=3, **kwargs)
    n = len(prism_records)
    n_test = kwargs.get("test_size") or math.floor(kwargs["test_fraction"] * n + 0.5)
    assert split.height == n and split["text"].to_list() == frame["text"].to_list()
    assert Counter(split["split"]) == {"test": n_test, "train": n - n_test}

    sizes = Counter(r.get("topic_cluster") or "unknown" for r in prism_records)
    test_per_topic = Counter(t for t, s in zip(split["topic"], split["split"]) if s == "test")
    train_per_topic = Counter(t for t, s in zip(split["topic"], split["split"]) if s == "train")
    for topic, size in sizes.items():
        if size >= 2:
            assert test_per_topic[topic] >= 1 and train_per_topic[topic] >= 1, topic
        # proportional allocation: within one prompt of the topic's exact share
        assert abs(test_per_topic[topic] - size * n_test / n) < 1, topic


def test_split_after_filtering_keeps_topics_with_two_or_more(frame):
    kept, _ = prompts.filter_prompts(frame, [{"question_mark": True}, {"min_words": 5}, {"dedupe": True}])
    split = prompts.split_by_topic(kept, test_fraction=0.25, seed=11)
    sides = {}
    for topic, side in zip(split["topic"], split["split"]):
        sides.setdefault(topic, Counter())[side] += 1
    for topic, count in sides.items():
        if sum(count.values()) >= 2:
            assert count["train"] >= 1 and count["test"] >= 1, (topic, count)


def test_split_is_deterministic_for_a_seed(frame):
    first = prompts.split_by_topic(frame, test_size=52, seed=7)["split"].to_list()
    again = prompts.split_by_topic(frame, test_size=52, seed=7)["split"].to_list()
    other = prompts.split_by_topic(frame, test_size=52, seed=8)["split"].to_list()
    assert first == again
    assert first != other
    assert other.count("test") == first.count("test") == 52


def test_split_does_not_depend_on_row_order(frame):
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=5)
    a = prompts.split_by_topic(frame, test_size=52, seed=2)
    b = prompts.split_by_topic(shuffled, test_size=52, seed=2)
    as_set = lambda f: sorted(zip(f["text"], f["split"]))  # noqa: E731
    assert as_set(a) == as_set(b)
