"""Loading prompt files: formats, column choice, ids, and errors naming file and field."""

from __future__ import annotations

import hashlib
import json
import re

import polars as pl
import pytest

from persona_exp import prompts
from persona_exp.errors import DataError

ROWS = [
    {"conversation_id": "c1", "opening_prompt": "Should zoos exist at all today?", "topic_cluster": "Animals"},
    {"conversation_id": "c2", "opening_prompt": "Is remote work better for most people?", "topic_cluster": None},
    {"conversation_id": "c3", "opening_prompt": "Hi there", "topic_cluster": "Greetings"},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet", ".json", ".tsv"])
def test_every_format_gives_the_same_frame(tmp_path, suffix):
    df = pl.DataFrame(ROWS)
    path = tmp_path / f"prism{suffix}"
    if suffix == ".jsonl":
        write_jsonl(path, ROWS)
    elif suffix == ".csv":
        df.write_csv(path)
    elif suffix == ".tsv":
        df.write_csv(path, separator="\t", quote_style="never")
    elif suffix == ".parquet":
        df.write_parquet(path)
    else:
        path.write_text(json.dumps(ROWS), encoding="utf-8")
    frame = prompts.load_file(path)
    assert frame.columns == ["id", "text", "topic", "source"]
    assert frame["text"].to_list() == [r["opening_prompt"] for r in ROWS]
    assert frame["topic"].to_list() == ["Animals", "unknown", "Greetings"]
    assert frame["source"].to_list() == [path.name] * 3
    assert frame["id"].to_list() == [prompts.prompt_id(r["opening_prompt"]) for r in ROWS]


def test_default_text_column_preference_and_explicit_columns(tmp_path):
    rows = [{"text": "a text field", "question": "Which one is read first here?", "label": 4}]
    path = write_jsonl(tmp_path / "q.jsonl", rows)
    assert prompts.load_file(path)["text"].to_list() == ["Which one is read first here?"]
    frame = prompts.load_file(path, text_column="text", topic_column="label", source="mine")
    assert frame.row(0) == (prompts.prompt_id("a text field"), "a text field", "4", "mine")


def test_topic_falls_back_to_the_topic_column_then_unknown(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"question": "Is this a question or not?", "topic": "misc"}])
    assert prompts.load_file(path)["topic"].to_list() == ["misc"]
    path = write_jsonl(tmp_path / "u.jsonl", [{"question": "Is this a question or not?"}])
    assert prompts.load_file(path)["topic"].to_list() == ["unknown"]


def test_ids_are_stable_content_hashes():
    a = prompts.prompt_id("Should  zoos exist?")
    assert a == prompts.prompt_id("should zoos exist?\n") == prompts.prompt_id("SHOULD ZOOS EXIST?")
    assert a != prompts.prompt_id("Should zoos exist")
    assert re.fullmatch(r"[0-9a-f]{16}", a)
    # the documented recipe: BLAKE2b (8-byte digest) of the lower-cased, single-spaced text;
    # a change here would silently re-key every cache built on prompt ids
    expected = hashlib.blake2b(b"is it ever acceptable to lie?", digest_size=8).hexdigest()
    assert prompts.prompt_id("Is it  ever acceptable\tto LIE?") == expected


# --------------------------------------------------------------------------- errors


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "absent.jsonl"
    with pytest.raises(DataError, match=re.escape(str(path))):
        prompts.load_file(path)


def test_unknown_text_column_names_file_and_column(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", ROWS)
    with pytest.raises(DataError) as err:
        prompts.load_file(path, text_column="prompt")
    msg = str(err.value)
    assert str(path) in msg and "'prompt'" in msg and "text_column" in msg and "'opening_prompt'" in msg


def test_unknown_topic_column_names_file_and_column(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", ROWS)
    with pytest.raises(DataError) as err:
        prompts.load_file(path, topic_column="cluster")
    assert str(path) in str(err.value) and "'cluster'" in str(err.value) and "topic_column" in str(err.value)


def test_no_known_text_column_lists_the_ones_tried(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"body": "Is this the right column?"}])
    with pytest.raises(DataError) as err:
        prompts.load_file(path)
    msg = str(err.value)
    assert str(path) in msg and "opening_prompt" in msg and "'body'" in msg


@pytest.mark.parametrize(
    "name, content",
    [
        ("broken.jsonl", b'{"opening_prompt": "Is this fine?"}\n{not json at all\n'),
        ("broken.parquet", b"PAR1 this is not a parquet file"),
        ("broken.csv", b'opening_prompt\n"\xff\xfe not utf-8?"\n'),
        ("broken.json", b'[{"opening_prompt": "Is this fine?"'),
        ("empty.csv", b""),
    ],
)
def test_corrupt_file_is_named(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(str(path))):
        prompts.load_file(path)


def test_unsupported_extension_and_directory(tmp_path):
    path = tmp_path / "prompts.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(DataError, match=r"\.xlsx"):
        prompts.load_file(path)
    with pytest.raises(DataError, match="not a file"):
        prompts.load_file(tmp_path)


def test_missing_or_non_text_values_name_the_column(tmp_path):
    path = write_jsonl(tmp_path / "n.jsonl", [{"question": "Is this fine?"}, {"question": None}])
    with pytest.raises(DataError, match=r"'question'.*record 2"):
        prompts.load_file(path)
    path = write_jsonl(tmp_path / "i.jsonl", [{"question": 7}])
    with pytest.raises(DataError, match=r"'question'.*strings"):
        prompts.load_file(path)
    path = write_jsonl(tmp_path / "s.jsonl", [{"question": "Is this fine?", "topic": {"a": 1}}])
    with pytest.raises(DataError, match=r"topic column 'topic'"):
        prompts.load_file(path)
