"""The spec fuzzer: every broken spec is a one-paragraph error with exit code 2.

Each shipped spec (experiments/*.yaml) is mutated in deterministic ways that
make it invalid by construction: a required key deleted, wrong types, negative
and huge numbers, floats and booleans for counts, unknown keys and misspelt
values, empty strings and nulls, repeated list items, deep junk, truncated or
malformed YAML, tabs, bytes that are not UTF-8, binary data, an empty file.
``persona-exp plan FILE`` must exit with 2, name the file and a line
(``FILE:LINE:COL``), print no traceback and finish within seconds.

Why invalid by construction holds: every numeric field of a spec is
non-negative, bounded well below 10^12 (seeds below 2^63) and, outside
``FLOAT_FIELDS``, a whole number; every list names each thing once; every
block forbids unknown keys; text fields are never empty (``description``
aside) and only ``CLOSED`` ones get misspelt; ``experiment`` is required, so a
file cut before it is incomplete. Nullable fields are not set to null
(``NULLABLE``).
"""

from __future__ import annotations

import copy
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from persona_exp.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "experiments").glob("*.yaml"))

FLOAT_FIELDS = {"temperature", "top_p", "default_effect", "noise", "strength", "inconsistent_rate", "test_fraction", "level",
                "length_band", "max_similarity", "oversample", "timeout"}
NULLABLE = {"temperature", "top_p", "size", "max_tokens", "sim", "persons", "housing", "dictionary", "people", "axes", "llm",
            "text_column", "topic_column", "human", "cache", "rpm", "tpm", "api_base", "api_version", "cache_as", "api_key_env"}
FREE_TEXT = {"description"}  # any text (even empty) is valid here
# Text from a closed set (kinds, sources, models, attributes, modes...) or naming
# something that must exist (a role, a file): a misspelling is an error. (A name,
# a path or a URL misspelt is just another valid one.)
CLOSED = {"kind", "source", "model", "attributes", "modes", "critics", "conditions", "judges", "slice_by", "filters", "multiplicity", "axes"}

Path_ = tuple[Any, ...]


def _leaves(node: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Every value of the parsed spec with its path, parents before children."""
    out = [(path, node)]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _leaves(v, path + (i,))
    return out


def _copy_to_parent(data: Any, path: Path_) -> tuple[Any, Any]:
    """A deep copy of ``data`` and, in it, the container of the node at ``path``."""
    out = copy.deepcopy(data)
    target = out
    for part in path[:-1]:
        target = target[part]
    return out, target


def _set(data: Any, path: Path_, value: Any) -> Any:
    out, target = _copy_to_parent(data, path)
    target[path[-1]] = value
    return out


def _delete(data: Any, path: Path_) -> Any:
    out, target = _copy_to_parent(data, path)
    del target[path[-1]]
    return out


def _rename(data: Any, path: Path_, new: str) -> Any:
    """The key at ``path`` renamed, keeping its place among its siblings."""
    out, target = _copy_to_parent(data, path)
    items = [(new if k == path[-1] else k, v) for k, v in target.items()]
    target.clear()
    target.update(items)
    return out


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")


def _field(path: Path_) -> str | None:
    """The name of the field a path ends at (a list item: its list's name)."""
    names = [p for p in path if isinstance(p, str)]
    return names[-1] if names else None


def _typo(text: str) -> str:
    """A misspelling no valid value has: the last letter doubled, or an x added."""
    return text + text[-1] if text and text[-1].isalpha() else text + "x"


def mutations(spec: Path) -> list[tuple[str, bytes]]:
    """Invalid variants of one spec, as (name, file content)."""
    text = spec.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    out: list[tuple[str, bytes]] = []

    def add(name: str, content: Any) -> None:
        out.append((f"{spec.stem}:{name}", content if isinstance(content, bytes) else _dump(content)))

    role = next(iter(data["models"]))
    for path in [("name",), ("models",), ("experiment",), ("experiment", "kind"), ("models", role, "model")]:
        add(f"delete {'.'.join(map(str, path))}", _delete(data, path))

    for path, value in _leaves(data):
        where = ".".join(map(str, path)) or "(top)"
        field = _field(path)
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            is_seed = field == "seed"
            add(f"negative {where}", _set(data, path, -1))
            add(f"2**70 {where}", _set(data, path, 2**70))
            if not is_seed:
                add(f"1.0e12 {where}", _set(data, path, 1.0e12))
                add(f"10**12 {where}", _set(data, path, 10**12))
            add(f"'1e12' {where}", _set(data, path, "1e12"))
            if field not in FLOAT_FIELDS and "effects" not in path:  # planted effects are floats too
                add(f"float {where}", _set(data, path, 2.5))
            add(f"string {where}", _set(data, path, "many"))
            add(f"list {where}", _set(data, path, [1, 2]))
            add(f"dict {where}", _set(data, path, {"a": 1}))
            add(f"true {where}", _set(data, path, True))
            if field not in NULLABLE:
                add(f"null {where}", _set(data, path, None))
        elif isinstance(value, str) and field not in FREE_TEXT:
            if field in CLOSED:
                add(f"typo {where}", _set(data, path, _typo(value)))
            add(f"empty {where}", _set(data, path, ""))
            if field not in NULLABLE:
                add(f"null {where}", _set(data, path, None))
            add(f"list for text {where}", _set(data, path, [value]))
        elif isinstance(value, dict):
            add(f"unknown key in {where}", _set(data, path, {**value, "bogus_key": 1}) if path else {**value, "bogus_key": 1})
            if path:
                add(f"list for mapping {where}", _set(data, path, [1, 2]))
                add(f"text for mapping {where}", _set(data, path, "text"))
            for key in value:
                if isinstance(key, str) and len(key) > 2 and key not in FREE_TEXT:
                    add(f"misspelt key {where}.{key}", _rename(data, path + (key,), key[:-1]))
        elif isinstance(value, list) and value:
            add(f"mapping for list {where}", _set(data, path, {"a": 1}))
            add(f"number for list {where}", _set(data, path, 5))
            add(f"repeated item {where}", _set(data, path, value + [value[0]]))

    deep_list: Any = []
    for _ in range(80):
        deep_list = [deep_list]
    deep_map: Any = "x"
    for _ in range(30):
        deep_map = {"a": deep_map}
    add("deep list junk", _set(data, ("experiment", "kind"), deep_list))
    add("deep mapping junk", _set(data, ("population",), deep_map))
    add("top-level list", [data])

    # Text-level damage.
    body = text.encode("utf-8")
    first = re.search(r"^[^#\s]", text, re.M).start()  # after the header comments
    cut = text.index("\nexperiment:")  # experiment is required: every cut before it is incomplete
    for f in (0.0, 0.3, 0.55, 0.8, 1.0):
        add(f"truncated at {f:.0%} of the settings before experiment", text[: first + int((cut - first) * f) + 1].encode("utf-8"))
    indented = next(m for m in re.finditer(r"^( +)\S", text, re.M))
    add("tab indentation", (text[: indented.start(1)] + "\t" + text[indented.end(1):]).encode("utf-8"))
    add("unclosed bracket", text.replace("\nmodels:\n", "\nmodels: [\n", 1).encode("utf-8"))
    add("line without colon", text.replace("\nseed:", "\nthis line has no colon\nseed:", 1).encode("utf-8"))
    add("duplicate key", body + b"\nseed: 1\n")
    name_at = body.index(b"\ndescription:") + len(b"\ndescription: ")
    add("not UTF-8", body[:name_at] + b"\xff\xfe" + body[name_at:])
    add("NUL byte", body[:name_at] + b"\x00" + body[name_at:])
    return out


def whole_file_cases() -> list[tuple[str, bytes]]:
    rng = random.Random(0)
    return [
        ("empty file", b""),
        ("top-level text", b"just some words\n"),
        ("only whitespace", b"\n\n   \n"),
        ("only comments", b"# a spec\n# with nothing in it\n"),
        ("binary: every byte", bytes(range(256)) * 4),
        ("binary: NUL bytes", b"\x00" * 64),
        ("binary: PNG", b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(512))),
        ("binary: ASCII control bytes", bytes(rng.choice(b"\x01\x02\x03\x07\x08abc\n") for _ in range(300))),
    ]


CASES = [case for spec in SPECS for case in mutations(spec)] + whole_file_cases()


def plan(path: Path, capsys) -> tuple[int, str, float]:
    start = time.monotonic()
    code = main(["plan", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err, time.monotonic() - start


def check_error(path: Path, code: int, output: str, seconds: float) -> str:
    """Exit 2, one paragraph that names the file and a line, no traceback, quick."""
    assert "Traceback" not in output, output
    assert code == 2, output
    assert seconds < 10, f"took {seconds:.1f} s"
    message = output.split("persona-exp: error: ", 1)[-1].strip()
    assert re.search(re.escape(str(path)) + r":\d+:\d+: ", message), message
    assert "\n\n" not in message, message
    return message


def test_there_are_over_a_hundred_distinct_mutations():
    assert len(CASES) >= 100
    assert len({content for _, content in CASES}) == len(CASES), "every case differs from the others"


@pytest.mark.parametrize("name,content", CASES, ids=[name for name, _ in CASES])
def test_a_broken_spec_is_a_located_error(name, content, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # populations and caches of a plan land here
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    check_error(path, *plan(path, capsys))


# Errors found only while planning (after the spec validated): each points at
# the line of the field it is about (a block list's value starts at its first item).
SEMANTIC = [  # spec, field set, its value, the field the error is about, text of that field's line, words of the message
    ("loo.yaml", "experiment.n_questions", 5000, "experiment.n_questions", "n_questions: 5000", "prompts remain"),
    ("agreement.yaml", "experiment.n_personas", 500, "experiment.n_personas", "n_personas: 500", "the population has 200 personas"),
    ("loo.yaml", "population.filters", ["age >= 200"], "population.filters", "- age >= 200", "leave no person"),
    ("conditioning.yaml", "prompts.filters", [{"include": "zzzz-no-such-words"}], "experiment.n_questions", "n_questions:", "only 0 prompts remain"),
    ("wikipersona.yaml", "population.size", 5000, "population.size", "size: 5000", "famous personas"),
    ("wikipersona.yaml", "population.axes", ["no_such_axis"], "population.axes", "- no_such_axis", "not an axis"),
]


@pytest.mark.parametrize("spec,field,value,about,line_text,words", SEMANTIC, ids=[f"{s}:{f}" for s, f, *_ in SEMANTIC])
def test_planning_errors_point_at_their_field(spec, field, value, about, line_text, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = yaml.safe_load((ROOT / "experiments" / spec).read_text(encoding="utf-8"))
    target = tmp_path / "spec.yaml"
    target.write_bytes(_dump(_set(data, tuple(field.split(".")), value)))
    message = check_error(target, *plan(target, capsys))
    line = next(i for i, text in enumerate(target.read_text().splitlines(), 1) if line_text in text)
    assert re.match(re.escape(str(target)) + rf":{line}:\d+: {re.escape(about)}", message), message
    assert words in message, message


def test_misspelt_names_get_a_suggestion(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = yaml.safe_load((ROOT / "experiments" / "loo.yaml").read_text(encoding="utf-8"))
    cases = [
        (_set(data, ("experiment", "attributes"), ["age", "religon"]), "did you mean 'religion'?"),
        (_set(data, ("experiment", "attributes"), ["age", "Age"]), "listed more than once"),
        (_set(data, ("models", "judge", "sim"), {"effects": {"no_such_atribute": 4, "religon": 1}}), "unknown persona attribute"),
        (_set(data, ("models", "judge", "sim"), {"effects": {"religon": 1}}), "did you mean 'religion'?"),
        (_set(data, ("experiment", "kind"), "lo"), "did you mean 'loo'?"),
        (_rename(data, ("experiment", "n_questions"), "n_question"), "did you mean 'n_questions'?"),
        (_rename(data, ("models", "judge", "temperature"), "temprature"), "did you mean 'temperature'?"),
        (_set(data, ("population", "filters"), ["agee >= 18"]), "did you mean 'age'?"),
        (_set(data, ("prompts", "filters"), [{"question_mak": True}]), "did you mean 'question_mark'?"),
        ({**data, "analysis": {"multiplicity": "holmm"}}, "did you mean 'holm'?"),
    ]
    for spec, words in cases:
        path = tmp_path / "spec.yaml"
        path.write_bytes(_dump(spec))
        message = check_error(path, *plan(path, capsys))
        assert words in message, message


def _cli(path: Path, timeout: float) -> tuple[int, str, float]:
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "persona_exp", "plan", str(path)], capture_output=True, text=True, timeout=timeout, cwd=path.parent)
    return out.returncode, out.stdout + out.stderr, time.monotonic() - start


@pytest.mark.parametrize("name", ["binary: every byte", "huge sizes", "alias bomb"])
def test_the_command_fails_cleanly_in_its_own_process(name, tmp_path):
    """A separate process proves no abort (a failed allocation would kill it
    with a signal, not exit 2) and no hang (the timeout)."""
    loo = yaml.safe_load((ROOT / "experiments" / "loo.yaml").read_text(encoding="utf-8"))
    if name == "huge sizes":
        content = _dump(_set(_set(loo, ("population", "size"), 10**12), ("experiment", "n_personas"), 10**12))
    elif name == "alias bomb":
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
        content = _dump(loo) + ("\n".join(lines) + "\n").encode()
    else:
        content = dict(whole_file_cases())[name]
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    check_error(path, *_cli(path, timeout=60))
