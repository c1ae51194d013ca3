"""Where prompts come from: the embedded default set and PRISM-format files.

The LLM-generated sets of WikiPersonas (personal and divergent questions) need
model calls, so they are written by a plan step
(:func:`persona_exp.steps.questions.generate_questions`, used by the
wikipersona experiment), which returns frames of the same shape (the columns
of ``COLUMNS``, plus the ``owner`` of each list).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import polars as pl

from persona_exp.errors import DataError
from persona_exp.prompts._frame import SCHEMA, UNKNOWN_TOPIC, make_frame

#: Text columns tried in order when none is named: PRISM's opening prompt first.
TEXT_COLUMNS = ("opening_prompt", "question", "text", "instruction", "prompt")  # the last two: released PERSONA files
#: Topic columns tried in order when none is named: PRISM's cluster label first.
TOPIC_COLUMNS = ("topic_cluster", "topic")

DEFAULT_FILE = "default_prompts.jsonl"
DEFAULT_SOURCE = "default"

_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def load_default() -> pl.DataFrame:
    """The embedded set of value-laden, opinion-dividing questions.

    Shipped inside the package (read through importlib.resources, so it works
    from a wheel or a zip) to give every experiment a prompt set that needs no
    download. Source ``"default"``; the ids are stored in the file and equal
    ``prompt_id(text)``.
    """
    resource = resources.files("persona_exp.prompts").joinpath(DEFAULT_FILE)
    rows: list[dict[str, str]] = []
    for line_no, line in enumerate(resource.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{DEFAULT_FILE} line {line_no}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where} is not valid JSON: {exc.msg}.") from exc
        for field in ("id", "topic", "text"):
            if not isinstance(record.get(field), str) or not record[field].strip():
                raise DataError(f"{where}: field '{field}' must be a non-empty string.")
        rows.append({"id": record["id"], "text": record["text"], "topic": record["topic"], "source": DEFAULT_SOURCE})
    return pl.DataFrame(rows, schema=SCHEMA)


def load_file(
    path: str | Path,
    text_column: str | None = None,
    topic_column: str | None = None,
    *,
    source: str | None = None,
) -> pl.DataFrame:
    """Prompts from a PRISM-format file (JSONL, JSON, CSV, TSV or parquet).

    ``text_column`` defaults to the first of ``opening_prompt``, ``question``,
    ``text`` the file has; ``topic_column`` to the first of ``topic_cluster``,
    ``topic`` (topic ``"unknown"`` when there is none, or where a value is
    missing). ``source`` defaults to the file name. Only the named columns are
    read, so large conversation dumps load quickly.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"prompt file {path} does not exist.")
    if not path.is_file():
        raise DataError(f"prompt file {path} is not a file.")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"prompt file {path} has an unsupported extension '{path.suffix}'; "
            f"use one of {', '.join(sorted(_FORMATS))}."
        )

    lazy = _scan(path, fmt)
    try:
        names = lazy.collect_schema().names()
    except Exception as exc:  # polars raises several unrelated classes on corrupt input
        raise DataError(f"cannot read prompt file {path} as {fmt}: {_reason(exc)}") from exc

    text_col = _pick(path, names, text_column, TEXT_COLUMNS, "text_column", required=True)
    topic_col = _pick(path, names, topic_column, TOPIC_COLUMNS, "topic_column", required=False)
    wanted = [text_col] + ([topic_col] if topic_col and topic_col != text_col else [])
    try:
        data = lazy.select(wanted).collect()
    except Exception as exc:
        raise DataError(f"cannot read column '{text_col}' of prompt file {path}: {_reason(exc)}") from exc

    texts = data.get_column(text_col)
    if texts.dtype != pl.String:
        raise DataError(
            f"prompt file {path}: text column '{text_col}' must hold strings, got {texts.dtype}; "
            "name another column with text_column=."
        )
    if texts.null_count():
        first = int(texts.is_null().arg_true()[0]) + 1
        raise DataError(
            f"prompt file {path}: text column '{text_col}' is missing in {texts.null_count()} "
            f"record(s) (first in record {first}, counting from 1)."
        )
    if topic_col is None:
        topics = [UNKNOWN_TOPIC] * data.height
    else:
        dtype = data.schema[topic_col]
        if dtype.is_nested() or dtype == pl.Object:
            raise DataError(
                f"prompt file {path}: topic column '{topic_col}' must hold labels (text or numbers), "
                f"got {dtype}; name another with topic_column=."
            )
        topics = data.get_column(topic_col).cast(pl.String).to_list()
    return make_frame(texts.to_list(), topics, path.name if source is None else str(source))


def _scan(path: Path, fmt: str) -> pl.LazyFrame:
    if fmt == "jsonl":
        # Infer the schema from every line: PRISM records differ in their nested fields.
        return pl.scan_ndjson(path, infer_schema_length=None)
    if fmt == "csv":
        return pl.scan_csv(path, infer_schema=False)  # every column as text: no guessed types
    if fmt == "tsv":
        return pl.scan_csv(path, separator="\t", infer_schema=False, quote_char=None)
    if fmt == "parquet":
        return pl.scan_parquet(path)
    try:
        return pl.read_json(path).lazy()
    except Exception as exc:
        raise DataError(f"cannot read prompt file {path} as json: {_reason(exc)}") from exc


def _pick(
    path: Path, names: list[str], given: str | None, candidates: tuple[str, ...], arg: str, *, required: bool
) -> str | None:
    have = ", ".join(repr(n) for n in names) or "none"
    if given is not None:
        if given not in names:
            raise DataError(f"prompt file {path} has no column '{given}' (given as {arg}); its columns are: {have}.")
        return given
    for name in candidates:
        if name in names:
            return name
    if required:
        raise DataError(
            f"prompt file {path} has none of the text columns {', '.join(candidates)}; "
            f"pass {arg}= naming one of its columns: {have}."
        )
    return None


def _reason(exc: Exception) -> str:
    """The first line of a library error, enough to say what is wrong."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".") + "."


__all__ = ["DEFAULT_SOURCE", "TEXT_COLUMNS", "TOPIC_COLUMNS", "load_default", "load_file"]
