"""Loading YAML specs with errors that point at the file, line, column and field.

PyYAML's composer keeps a mark (line, column) for every node; we walk the node
tree once to map each field path to its marks, then translate pydantic's
validation errors (which carry field paths) back to positions in the file.
Command-line overrides (``--set a.b=value``) are applied to the parsed data
before validation and located as ``--set a.b`` in messages. Problems found
later, while the run reads its files and plans (more questions asked for than
the filters leave), get the position of their field too: see
:func:`located_errors`.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from persona_exp.errors import DataError, InvalidArgumentError, PersonaExpError, PlanError, SpecError, did_you_mean
from persona_exp.spec.models import FieldError, unwrap

M = TypeVar("M", bound=BaseModel)
Path_ = tuple[str | int, ...]

# A spec is a page of settings: these bounds are far above any real one and
# stop a YAML alias "bomb" (a few lines that expand to billions of values) or
# runaway nesting before anything walks or validates the data.
MAX_VALUES = 200_000
MAX_DEPTH = 64


@dataclass
class Located:
    """Parsed YAML data plus where each field path was written."""

    data: Any
    source: str
    value_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    overridden: dict[Path_, str] = field(default_factory=dict)

    def where(self, path: Path_, *, key: bool = False) -> str:
        """`file:line:col` of the closest written ancestor of ``path``, or the
        ``--set`` item that gave it (or a block holding it)."""
        for cut in range(len(path) + 1):
            if path[:cut] in self.overridden:
                return f"--set {self.overridden[path[:cut]]}"
        for cut in range(len(path), -1, -1):
            p = path[:cut]
            marks = self.key_marks if key and cut == len(path) else self.value_marks
            if p in marks:
                line, col = marks[p]
                return f"{self.source}:{line}:{col}"
        return f"{self.source}:1:1"

    def of(self, field: str | Path_, *, key: bool = False) -> str:
        """`file:line:col` of a field given as written in messages,
        ``loc.of("experiment.n_questions")`` or ``loc.of("population.filters[1]")``."""
        return self.where(field_path(field) if isinstance(field, str) else field, key=key)


_PART = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def field_path(dotted: str) -> Path_:
    """``"population.filters[1]"`` -> ``("population", "filters", 1)``."""
    return tuple(int(m.group(2)) if m.group(2) is not None else m.group(1) for m in _PART.finditer(dotted))


def _char(c: int | str) -> str:
    """A character as U+XXXX (PyYAML reports a code point or a character)."""
    return f"U+{(ord(c) if isinstance(c, str) else c):04X}"


def _line_col(text: str | bytes, index: int) -> tuple[int, int]:
    newline = "\n" if isinstance(text, str) else b"\n"
    start = text.rfind(newline, 0, index) + 1  # type: ignore[arg-type]
    return text.count(newline, 0, index) + 1, index - start + 1  # type: ignore[arg-type]


def _walk(node: yaml.Node, path: Path_, loc: Located, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0 or len(path) > MAX_DEPTH:
        what = f"nests deeper than {MAX_DEPTH} levels" if len(path) > MAX_DEPTH else f"expands to more than {MAX_VALUES:,} values (through YAML aliases?)"
        raise SpecError(
            f"{loc.source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: {_dotted(path[:12])}{'...' if len(path) > 12 else ''}: "
            f"the spec {what}; "
            "a spec holds settings, so write them out plainly."
        )
    loc.value_marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise SpecError(
                    f"{loc.source}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}: "
                    f"{_dotted(path + (key,))}: the key {key!r} appears twice in this mapping (first on line {seen[key]}); "
                    "keep one."
                )
            seen[key] = key_node.start_mark.line + 1
            loc.key_marks[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(value_node, path + (key,), loc, budget)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), loc, budget)


def parse_yaml(text: str, source: str) -> Located:
    """Parses YAML text, keeping the position of every field."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else f"{source}:1:1"
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SpecError(f"{where}: this is not valid YAML ({problem}).") from None
    except yaml.reader.ReaderError as exc:  # a control character (binary data): no mark, but a position
        line, col = _line_col(text, exc.position)
        raise SpecError(
            f"{source}:{line}:{col}: this is not valid YAML (character {_char(exc.character)} is not allowed in YAML text); "
            "a spec is a plain text file, is this the right file?"
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}:1:1: this is not valid YAML ({exc}).") from None
    except RecursionError:
        raise SpecError(f"{source}:1:1: the spec nests too deeply to read; a spec holds settings, so write them out plainly.") from None
    loc = Located(data=data, source=source)
    if node is not None:
        _walk(node, (), loc, [MAX_VALUES])
    return loc


def read_spec_file(path: str | Path) -> Located:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{p}: no such spec file.") from None
    except OSError as exc:
        raise SpecError(f"{p}: cannot read the spec ({exc.strerror or exc}).") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw, exc.start)
        raise SpecError(
            f"{p}:{line}:{col}: the spec is not UTF-8 text (byte 0x{raw[exc.start]:02x} cannot be read); "
            "save it as UTF-8, or check that this is the right file."
        ) from None
    return parse_yaml(text, str(p))


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _split_override(item: str) -> tuple[Path_, str]:
    if "=" not in item:
        raise SpecError(f"--set {item}: an override has the form key.path=value, e.g. --set models.judge.model=openai/gpt-4o.")
    key, value = item.split("=", 1)
    parts: list[str | int] = []
    for part in key.strip().split("."):
        if not part:
            raise SpecError(f"--set {item}: the key path {key!r} has an empty part.")
        parts.append(int(part) if part.lstrip("-").isdigit() else part)
    return tuple(parts), value


def apply_overrides(loc: Located, overrides: list[str]) -> Located:
    """Applies ``--set key.path=value`` items; values are read as YAML scalars/lists."""
    for item in overrides:
        path, raw = _split_override(item)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if loc.data is None:
            loc.data = {}
        target = loc.data
        for i, part in enumerate(path[:-1]):
            nxt = path[i + 1]
            if isinstance(target, dict):
                if part not in target or not isinstance(target[part], (dict, list)):
                    target[part] = [] if isinstance(nxt, int) else {}
                target = target[part]
            elif isinstance(target, list) and isinstance(part, int) and -len(target) <= part < len(target):
                target = target[part]
            else:
                raise SpecError(f"--set {item}: {_dotted(path[: i + 1])} does not exist in the spec.")
        last = path[-1]
        if isinstance(target, dict):
            target[last] = value
        elif isinstance(target, list) and isinstance(last, int) and -len(target) <= last < len(target):
            target[last] = value
        else:
            raise SpecError(f"--set {item}: {_dotted(path)} does not exist in the spec.")
        loc.overridden[path] = f"{_dotted(path)}={raw}"
    return loc


def _data_path(data: Any, loc_parts: tuple[Any, ...]) -> Path_:
    """Keeps only the parts of a pydantic error location that exist in the data
    (pydantic inserts union tags and validator names)."""
    out: list[str | int] = []
    cur = data
    for part in loc_parts:
        if isinstance(cur, dict) and part not in cur and cur.get("kind") == part:
            continue  # the tag of a discriminated union (e.g. experiment.kind)
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and not part.startswith(("function-", "tagged-union")):
            # A missing or unknown key: keep it so the message names it.
            out.append(part)
            cur = None
    return tuple(out)


def _models_at(model: type[BaseModel], loc_parts: tuple[Any, ...]) -> list[type[BaseModel]]:
    """The models that may sit at a pydantic error location (several for a
    union, e.g. the experiment kinds); [] when unclear."""
    current: list[Any] = [model]
    for part in loc_parts:
        models = [t for t in current if isinstance(t, type) and issubclass(t, BaseModel)]
        tagged = [m for m in models if "kind" in m.model_fields and m.model_fields["kind"].default == part]
        if tagged:  # the tag pydantic puts in the location of a discriminated union
            current = tagged
            continue
        nxt: list[Any] = []
        for t in current:
            if isinstance(t, type) and issubclass(t, BaseModel):
                if part in t.model_fields:
                    nxt += unwrap(t.model_fields[part].annotation)
            elif typing.get_origin(t) is dict and isinstance(part, str):
                nxt += unwrap(typing.get_args(t)[1])
            elif typing.get_origin(t) is list and isinstance(part, int):
                nxt += unwrap(typing.get_args(t)[0])
        current = nxt
    return [t for t in current if isinstance(t, type) and issubclass(t, BaseModel)]


def _message(error: dict[str, Any], model: type[BaseModel]) -> str:
    """One problem in words: pydantic's message, made specific where it helps
    (unknown keys and misspelt values get the nearest valid name)."""
    kind = error.get("type", "")
    given = error.get("input")
    ctx = error.get("ctx") or {}
    loc_parts = tuple(error.get("loc", ()))
    if kind == "extra_forbidden":
        holders = _models_at(model, loc_parts[:-1])
        fields = list(holders[0].model_fields) if len(holders) == 1 else []
        return "unknown key; check its spelling or remove it" + did_you_mean(loc_parts[-1] if loc_parts else None, fields)
    if kind == "missing":
        return "this field is required"
    if kind == "union_tag_not_found":
        kinds = [m.model_fields["kind"].default for m in _models_at(model, loc_parts) if "kind" in m.model_fields]
        return "this field is required: it says which experiment this is" + (f", one of {', '.join(kinds)}" if kinds else "")
    cause = ctx.get("error")
    if kind == "value_error" and isinstance(cause, ValueError):
        return str(cause)  # our validators' own sentence, without pydantic's "Value error, "
    if kind in ("model_type", "model_attributes_type", "dict_type") and not loc_parts:
        return "a spec is a mapping of settings (name:, models:, experiment: ...), not " + type(given).__name__
    msg = re.sub(r" or (instance of \w+|object to extract fields from)", "", str(error.get("msg", "invalid value")))
    if "input" in error and not isinstance(given, (dict, list)):
        msg += f" (got {given!r})"
    if kind in ("less_than_equal", "less_than", "greater_than_equal", "greater_than") and loc_parts:
        holders = _models_at(model, loc_parts[:-1])
        info = holders[0].model_fields.get(str(loc_parts[-1])) if len(holders) == 1 else None
        if info is not None and info.description:
            msg += f"; {loc_parts[-1]}: {info.description}"  # why the bound is what it is
    if kind in ("literal_error", "union_tag_invalid"):
        expected = str(ctx.get("expected") or ctx.get("expected_tags") or "")
        word = given if kind == "literal_error" else ctx.get("tag")
        msg += did_you_mean(word, re.findall(r"'([^']*)'", expected))
    elif kind == "int_parsing" and isinstance(given, str) and re.fullmatch(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+", given.strip()):
        msg += "; write a whole number in digits, e.g. 1000000 rather than 1e6"
    return msg


def _either(msgs: list[str]) -> str:
    """Alternatives at one field as one sentence, the value shown once."""
    got = re.search(r" \(got .*\)$", msgs[-1])
    if got and all(m.endswith(got.group(0)) for m in msgs):
        msgs = [m[: -len(got.group(0))] for m in msgs[:-1]] + msgs[-1:]
    return " or ".join(msgs)


def validate(loc: Located, model: type[M]) -> M:
    """Validates parsed data against ``model``; errors name file:line:col and field.

    The first problem leads, unknown keys first (a misspelt key is why a
    required one is "missing"); problems at the same field (the members of
    a union, e.g. a list or "all") are one sentence."""
    try:
        return model.model_validate(loc.data if loc.data is not None else {})
    except ValidationError as exc:
        problems: dict[tuple[str, str], list[str]] = {}
        errors = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
        for err in errors:
            cause = (err.get("ctx") or {}).get("error")
            inner = cause.path if isinstance(cause, FieldError) else ()  # a validator pointing at one of its fields
            path = _data_path(loc.data, tuple(err["loc"]) + tuple(inner))
            if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
                path = path + ("kind",)
            key = err.get("type") == "extra_forbidden" or (isinstance(cause, FieldError) and cause.key)
            problems.setdefault((loc.where(path, key=key), _dotted(path)), []).append(_message(err, model))
        lines = [f"{where}: {field}: {_either(list(dict.fromkeys(msgs)))}" for (where, field), msgs in problems.items()]
        more = f" ({len(lines) - 1} more: " + "; ".join(lines[1:4]) + (" ...)" if len(lines) > 4 else ")")
        raise SpecError(lines[0] + "." + (more if len(lines) > 1 else "")) from None


def load(path: str | Path, model: type[M], overrides: list[str] | None = None) -> tuple[M, Located]:
    """Reads, overrides and validates a spec file."""
    loc = apply_overrides(read_spec_file(path), list(overrides or []))
    if loc.data is None:
        raise SpecError(
            f"{loc.source}:1:1: the spec is empty (nothing but blank lines or comments); a spec needs at least "
            "name, models and experiment (see experiments/loo.yaml)."
        )
    return validate(loc, model), loc


_INPUT_ERRORS = (DataError, InvalidArgumentError, PlanError, SpecError)
_LOCATED = re.compile(r"^(--set |\S.*?:\d+:\d+: )")
_LEADING_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])+)(?=[\s:,;]|$)")


def locate(exc: PersonaExpError, loc: Located, sections: Sequence[str]) -> None:
    """Puts file:line:column in front of an error raised after the spec was
    validated (while reading its files or planning): at the field the message
    starts with (``experiment.n_questions is 500 but ...``), else at the
    error's ``field``. Errors that already carry a location stay as they are."""
    text = str(exc)
    if _LOCATED.match(text):
        return
    if text.startswith(f"{loc.source}: "):  # names the spec file but no line: the field it starts with gets one
        text = text[len(loc.source) + 2:]
    leading = _LEADING_FIELD.match(text)
    field_ = leading.group(1) if leading and field_path(leading.group(1))[0] in sections else getattr(exc, "field", None)
    if not field_:
        return
    shown = text if text.startswith(field_) else f"{field_}: {text}"
    exc.args = (f"{loc.of(field_)}: {shown}",)
    exc.field = None


@contextmanager
def located_errors(path: str | Path, overrides: Sequence[str] = (), model: type[BaseModel] | None = None, *,
                   field: str | None = None) -> Iterator[None]:
    """Gives the errors raised inside (see :func:`locate`) the position of
    their field in the spec at ``path`` (with the same ``--set`` overrides):
    ``model`` is the spec's model, whose top-level fields a message may start
    with, and ``field`` the block the code inside serves (e.g. ``population``),
    for errors that name no field of their own."""
    try:
        yield
    except PersonaExpError as exc:
        # Bad input only: a pending stage, a budget stop or a failing model is
        # about the run, not about a line of the spec.
        if (type(exc) is PersonaExpError or isinstance(exc, _INPUT_ERRORS)) and not _LOCATED.match(str(exc)):
            exc.field = getattr(exc, "field", None) or field
            try:
                loc = apply_overrides(read_spec_file(path), list(overrides))
            except PersonaExpError:
                raise exc from None
            locate(exc, loc, list(model.model_fields) if model is not None else [])
        raise
