"""The prompt frame: one row per prompt, the same columns whatever the source.

Every source (the embedded default set, a PRISM-format file, later the
engine's generated sets) produces a polars DataFrame with the columns of
``COLUMNS``, so filters, splits and the engine never need to know where a
prompt came from.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from typing import Any

import polars as pl

from persona_exp.errors import DataError

#: The columns every prompt frame has, in this order.
COLUMNS = ("id", "text", "topic", "source")

#: The topic of a prompt whose source gives none.
UNKNOWN_TOPIC = "unknown"

SCHEMA = {name: pl.String for name in COLUMNS}


def normalize_text(text: str) -> str:
    """The form under which two prompts count as the same question.

    NFKC folds look-alike characters (full-width letters, ligatures), casefold
    ignores case, and splitting on whitespace ignores spacing and line breaks.
    Deduplication and ids both use this, so two prompts share an id exactly
    when deduplication would drop one of them.
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def prompt_id(text: str) -> str:
    """A stable 16-hex-digit id: the BLAKE2b digest of the normalized text.

    Content-derived ids stay the same across runs, machines and sources, so a
    question found both in PRISM and in another set is recognisably one prompt.
    """
    return hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=8).hexdigest()


def make_frame(texts: Iterable[str], topics: Iterable[str | None], source: str) -> pl.DataFrame:
    """Build a prompt frame; a missing or blank topic becomes ``"unknown"``."""
    texts = list(texts)
    clean_topics = [t.strip() if isinstance(t, str) and t.strip() else UNKNOWN_TOPIC for t in topics]
    return pl.DataFrame(
        {
            "id": [prompt_id(t) for t in texts],
            "text": texts,
            "topic": clean_topics,
            "source": [source] * len(texts),
        },
        schema=SCHEMA,
    )


def check_frame(frame: Any, needed: tuple[str, ...], where: str) -> pl.DataFrame:
    """Fail early, naming the column, when a frame lacks what a step reads."""
    if not isinstance(frame, pl.DataFrame):
        raise DataError(f"{where}: frame must be a polars DataFrame of prompts, got {type(frame).__name__}.")
    for name in needed:
        if name not in frame.columns:
            raise DataError(
                f"{where}: frame has no column '{name}' (it has: {', '.join(frame.columns) or 'none'}); "
                "load prompts with load_default() or load_file()."
            )
        if frame.schema[name] != pl.String:
            raise DataError(f"{where}: column '{name}' must hold strings, got {frame.schema[name]}.")
    return frame
