"""Prompt filters on small hand-made frames: counts, specs and errors."""

from __future__ import annotations

import polars as pl
import pytest

from persona_exp import prompts
from persona_exp.errors import DataError, InvalidArgumentError
from persona_exp.prompts import filters as filters_module

TEXTS = [
    "Should the voting age be lowered to sixteen?",  # kept by all
    "should  the voting age be LOWERED to sixteen?",  # duplicate of the first (case, spacing)
    "Tell me a recipe for a lemon cake",  # no question mark
    "Why?",  # too short
    "Is a cake recipe with less sugar still good?",  # matches recipe
    "What do you think about nuclear power plants?",
]


def make(texts=TEXTS):
    return pl.DataFrame(
        {
            "id": [prompts.prompt_id(t) for t in texts],
            "text": texts,
            "topic": ["t"] * len(texts),
            "source": ["test"] * len(texts),
        }
    )


def test_each_filter_reports_what_it_removed():
    kept, report = prompts.filter_prompts(
        make(), [{"question_mark": True}, {"min_words": 5}, {"dedupe": True}, {"exclude": "(?i)recipe"}]
    )
    assert report == [
        ("question_mark", 6, 1, 5),
        ("min_words", 5, 1, 4),
        ("dedupe", 4, 1, 3),
        ("exclude", 3, 1, 2),
    ]
    assert kept["text"].to_list() == [TEXTS[0], TEXTS[5]]
    assert kept.columns == ["id", "text", "topic", "source"]


def test_word_count_uses_whitespace_tokens():
    texts = [
        "one two three four five?",
        "one  two   three four?",  # runs of spaces are one break: 4 words
        "tab\tand\nnewline are breaks too?",  # 6 words
        "a-b-c-d-e-f?",
    ]
    kept, report = prompts.filter_prompts(make(texts), [{"min_words": 5}])
    assert kept["text"].to_list() == [texts[0], texts[2]]
    assert report[0].removed == 2


def test_dedupe_keeps_first_occurrence_and_ignores_case_and_spacing():
    texts = ["Is it  fair?", "is it fair?", "IS IT FAIR?\n", "Is it fair ?"]
    kept, report = prompts.filter_prompts(make(texts), ["dedupe"])
    assert kept["text"].to_list() == ["Is it  fair?", "Is it fair ?"]  # punctuation spacing still differs
    assert report == [("dedupe", 4, 2, 2)]


def test_include_and_exclude_accept_pattern_lists():
    kept, _ = prompts.filter_prompts(make(), [{"include": ["nuclear", "(?i)VOTING"]}])
    assert kept["text"].to_list() == [TEXTS[0], TEXTS[1], TEXTS[5]]
    kept, report = prompts.filter_prompts(make(), {"exclude": ["cake", "nuclear"]})  # a mapping keeps its order
    assert report == [("exclude", 6, 3, 3)]


def test_flags_switched_off_are_left_out():
    kept, report = prompts.filter_prompts(make(), [{"question_mark": False}, {"dedupe": None}])
    assert [step.name for step in report] == ["dedupe"]
    assert kept.height == 5


def test_no_filters_is_a_no_op():
    frame = make()
    kept, report = prompts.filter_prompts(frame, [])
    assert report == [] and kept.equals(frame)
    assert prompts.format_report(report) == "no filters"


def test_format_report_lists_every_step():
    _, report = prompts.filter_prompts(make(), [{"question_mark": True}, {"min_words": 5}])
    lines = prompts.format_report(report).splitlines()
    assert len(lines) == 2 and lines[0].startswith("question_mark") and "removed 1" in lines[1]


def test_unknown_filter_name_is_named_with_the_known_ones():
    with pytest.raises(InvalidArgumentError) as err:
        prompts.filter_prompts(make(), [{"question_mark": True}, {"toxicity": True}])
    message = str(err.value)
    assert "toxicity" in message and "filters[1]" in message
    for name in ("controversial", "dedupe", "exclude", "include", "min_words", "question_mark"):
        assert name in message


def test_controversial_by_name_needs_the_run_models_unless_switched_off():
    """The LLM filter is known by name, but without a run's models it can only be off."""
    with pytest.raises(InvalidArgumentError) as err:
        prompts.filter_prompts(make(), [{"question_mark": True}, {"controversial": True}])
    assert "filters[1]" in str(err.value) and "ControversialFilter" in str(err.value)
    kept, report = prompts.filter_prompts(make(), [{"controversial": False}])
    assert kept.height == make().height and report == []


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ({"min_words": "five"}, "min_words"),
        ({"min_words": 0}, "min_words"),
        ({"min_words": True}, "min_words"),
        ({"question_mark": "yes"}, "question_mark"),
        ({"exclude": "(unclosed"}, "(unclosed"),
        ({"include": []}, "include"),
        ({"min_words": 5, "dedupe": True}, "exactly one key"),
        (42, "exactly one key"),
    ],
)
def test_bad_filter_parameters_name_the_filter(spec, fragment):
    with pytest.raises(InvalidArgumentError) as err:
        prompts.filter_prompts(make(), [spec])
    assert fragment in str(err.value) and "filters[0]" in str(err.value)


def test_specs_are_checked_before_any_filter_runs():
    calls = []

    class Spy:
        name = "spy"

        def apply(self, frame):
            calls.append(frame.height)
            return frame

    with pytest.raises(InvalidArgumentError):
        prompts.filter_prompts(make(), [Spy(), {"nope": 1}])
    assert calls == []


def test_a_plug_in_filter_satisfies_the_protocol():
    """The engine's LLM classifier will plug in like this."""

    class Controversial:
        name = "controversial"

        def apply(self, frame):
            return frame.filter(pl.col("text").str.contains("voting|nuclear"))

    assert isinstance(Controversial(), prompts.Filter)
    kept, report = prompts.filter_prompts(make(), [{"dedupe": True}, Controversial()])
    assert report[-1] == ("controversial", 5, 3, 2)
    assert kept.height == 2


def test_registered_filters_can_be_declared_by_name(monkeypatch):
    monkeypatch.setattr(filters_module, "_REGISTRY", dict(filters_module._REGISTRY))

    class MaxWords:
        name = "max_words"

        def __init__(self, n):
            self.n = n

        def apply(self, frame):
            return frame.filter(pl.col("text").str.count_matches(r"\S+") <= self.n)

    prompts.register_filter("max_words", MaxWords)
    assert "max_words" in prompts.known_filters()
    _, report = prompts.filter_prompts(make(), [{"max_words": 8}])
    assert report == [("max_words", 6, 1, 5)]  # only the nine-word question goes
    with pytest.raises(InvalidArgumentError, match="already registered"):
        prompts.register_filter("max_words", MaxWords)


def test_a_filter_that_adds_rows_is_rejected():
    class Doubler:
        name = "doubler"

        def apply(self, frame):
            return pl.concat([frame, frame])

    with pytest.raises(DataError, match="doubler"):
        prompts.filter_prompts(make(), [Doubler()])


def test_a_frame_without_text_is_rejected_naming_the_column():
    with pytest.raises(DataError, match="'text'"):
        prompts.filter_prompts(pl.DataFrame({"question": ["Why is that so?"]}), [{"question_mark": True}])
    with pytest.raises(InvalidArgumentError, match="filters must be a list"):
        prompts.filter_prompts(make(), "dedupe")
