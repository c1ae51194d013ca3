"""The embedded default question set: size, coverage, and the paper's rules."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

import polars as pl
import pytest

from persona_exp import prompts


@pytest.fixture(scope="module")
def default():
    return prompts.load_default()


@pytest.fixture(scope="module")
def raw_records():
    text = resources.files("persona_exp.prompts").joinpath("default_prompts.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_schema(default):
    assert default.columns == ["id", "text", "topic", "source"]
    assert all(dtype == pl.String for dtype in default.dtypes)
    assert set(default["source"]) == {"default"}
    assert default.null_count().row(0) == (0, 0, 0, 0)


def test_size_and_topic_coverage(default, raw_records):
    assert default.height == len(raw_records) >= 150
    topics = Counter(r["topic"] for r in raw_records)
    assert len(topics) >= 10
    # balanced: no topic is a token one, none dominates
    assert min(topics.values()) >= 10
    assert max(topics.values()) <= 2 * min(topics.values())
    assert "unknown" not in topics


def test_every_question_passes_the_paper_rules(default, raw_records):
    for r in raw_records:
        assert r["text"].endswith("?"), r["text"]
        assert len(r["text"].split()) >= 5, r["text"]
        assert r["text"] == r["text"].strip() and "  " not in r["text"], r["text"]
    _, report = prompts.filter_prompts(default, [{"question_mark": True}, {"min_words": 5}, {"dedupe": True}])
    assert [step.removed for step in report] == [0, 0, 0]


def test_no_duplicates_and_unique_ids(default, raw_records):
    keys = [" ".join(r["text"].casefold().split()) for r in raw_records]
    assert len(set(keys)) == len(keys)
    ids = [r["id"] for r in raw_records]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)


def test_stored_ids_are_the_content_ids(default):
    """An edited question must get its new id, or caches keyed on ids go stale."""
    stale = [(i, t, prompts.prompt_id(t)) for i, t in zip(default["id"], default["text"]) if i != prompts.prompt_id(t)]
    assert not stale, f"update these ids in default_prompts.jsonl: {stale[:3]}"


def test_questions_are_open_rather_than_leading(raw_records):
    """No question presupposes its answer with phrases such as "isn't it obvious"."""
    leading = re.compile(r"(?i)\b(isn't it|don't you agree|obviously|clearly|everyone knows|surely)\b")
    assert [r["text"] for r in raw_records if leading.search(r["text"])] == []
