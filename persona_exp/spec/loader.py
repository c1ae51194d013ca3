"""Loading YAML specs with errors that point at the file, line, column and field.

PyYAML's composer keeps a mark (line, column) for every node; we walk the node
tree once to map each field path to its marks, then translate pydantic's
validation errors (which carry field paths) back to positions in the file.
Command-line overrides (``--set a.b=value``) are applied to the parsed data
before validation and located as ``--set a.b`` in messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from persona_exp.errors import SpecError

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
        """`file:line:col` of the closest written ancestor of ``path``."""
        for cut in range(len(path), -1, -1):
            p = path[:cut]
            if p in self.overridden:
                return f"--set {self.overridden[p]}"
            marks = self.key_marks if key and cut == len(path) else self.value_marks
            if p in marks:
                line, col = marks[p]
                return f"{self.source}:{line}:{col}"
        return self.source


def _walk(node: yaml.Node, path: Path_, loc: Located, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0 or len(path) > MAX_DEPTH:
        what = f"nests deeper than {MAX_DEPTH} levels" if len(path) > MAX_DEPTH else f"expands to more than {MAX_VALUES:,} values (through YAML aliases?)"
        raise SpecError(
            f"{loc.source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: {_dotted(path)}: the spec {what}; "
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
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SpecError(f"{where}: this is not valid YAML ({problem}).") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: this is not valid YAML ({exc}).") from None
    except RecursionError:
        raise SpecError(f"{source}: the spec nests too deeply to read; a spec holds settings, so write them out plainly.") from None
    loc = Located(data=data, source=source)
    if node is not None:
        _walk(node, (), loc, [MAX_VALUES])
    return loc


def read_spec_file(path: str | Path) -> Located:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{p}: no such spec file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{p}: cannot read the spec ({exc}).") from None
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


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key; check its spelling or remove it"
    if kind == "missing":
        return "this field is required"
    msg = str(error.get("msg", "invalid value"))
    if "input" in error and kind not in ("missing",) and not isinstance(error["input"], (dict, list)):
        msg += f" (got {error['input']!r})"
    return msg


def validate(loc: Located, model: type[M]) -> M:
    """Validates parsed data against ``model``; errors name file:line:col and field."""
    try:
        return model.model_validate(loc.data if loc.data is not None else {})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = _data_path(loc.data, tuple(err["loc"]))
            if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
                path = path + ("kind",)
            where = loc.where(path, key=err.get("type") == "extra_forbidden")
            problems.append(f"{where}: {_dotted(path)}: {_message(err)}")
        head = problems[0]
        more = f" ({len(problems) - 1} more: " + "; ".join(problems[1:4]) + (" ...)" if len(problems) > 4 else ")")
        raise SpecError(head + "." + (more if len(problems) > 1 else "")) from None


def load(path: str | Path, model: type[M], overrides: list[str] | None = None) -> tuple[M, Located]:
    """Reads, overrides and validates a spec file."""
    loc = apply_overrides(read_spec_file(path), list(overrides or []))
    return validate(loc, model), loc
