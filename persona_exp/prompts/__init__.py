"""Prompt sets: load, filter and split the questions personas are asked.

Follows PERSONA's prompt curation (section 3.2): start from opinion-eliciting
questions, keep those with a question mark and at least five words, drop
duplicates, and hold out a topic-stratified test set (3,000 / 868 in the paper).

Every function works on a *prompt frame*, a polars DataFrame with the string
columns ``id``, ``text``, ``topic`` and ``source``::

    from persona_exp import prompts

    frame = prompts.load_file("conversations.jsonl")          # PRISM opening prompts
    frame, report = prompts.filter_prompts(
        frame, [{"question_mark": True}, {"min_words": 5}, {"dedupe": True}]
    )
    print(prompts.format_report(report))
    frame = prompts.split_by_topic(frame, test_size=868, seed=0)

``load_default()`` gives an embedded set of value-laden questions that needs no
download. The parts that need model calls live with the steps and use the same
frames: the WikiPersonas question sets written by a model
(:mod:`persona_exp.steps.questions`, which returns prompt frames these filters
apply to) and the LLM "is this controversial?" filter
(:class:`persona_exp.steps.classify.ControversialFilter`, a ``Filter`` like the
others; a spec's ``{controversial: true}`` entry is built by the pipeline with
the run's models). Any object satisfying the ``Filter`` protocol (or
registered with ``register_filter``) can be used here.
"""

from __future__ import annotations

from persona_exp.prompts._frame import COLUMNS, UNKNOWN_TOPIC, normalize_text, prompt_id
from persona_exp.prompts.filters import (
    Dedupe,
    Exclude,
    Filter,
    FilterStep,
    Include,
    MinWords,
    QuestionMark,
    filter_prompts,
    format_report,
    known_filters,
    make_filter,
    make_filters,
    register_filter,
)
from persona_exp.prompts.sources import TEXT_COLUMNS, TOPIC_COLUMNS, load_default, load_file
from persona_exp.prompts.split import PAPER_TEST_FRACTION, split_by_topic

__all__ = [
    "COLUMNS",
    "PAPER_TEST_FRACTION",
    "TEXT_COLUMNS",
    "TOPIC_COLUMNS",
    "UNKNOWN_TOPIC",
    "Dedupe",
    "Exclude",
    "Filter",
    "FilterStep",
    "Include",
    "MinWords",
    "QuestionMark",
    "filter_prompts",
    "format_report",
    "known_filters",
    "load_default",
    "load_file",
    "make_filter",
    "make_filters",
    "normalize_text",
    "prompt_id",
    "register_filter",
    "split_by_topic",
]
