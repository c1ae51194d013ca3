"""Strict parsers for structured answers.

An answer that does not parse is never coerced: the runner re-asks (a bounded
number of times) with the reason, and otherwise records a parse failure that the
run counts and reports.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable


class ParseFailure(ValueError):
    """The answer does not have the requested form; the message says what was expected."""


def _json_object(text: str) -> dict[str, Any] | None:
    m = re.search(r"\{.*\}", text, re.S)
    if not m:
        return None
    try:
        obj = json.loads(m.group(0))
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def choice(text: str) -> str:
    """`A` or `B`, bare (optionally as `Response A`) or as JSON {"choice": "A"}."""
    obj = _json_object(text)
    if obj is not None and "choice" in obj:
        value = str(obj["choice"]).strip().upper()
    else:
        value = re.sub(r"^(RESPONSE|ANSWER)\s+", "", text.strip().strip(".*\"' ").upper())
    if value in ("A", "B"):
        return value
    raise ParseFailure('Reply with exactly one letter, A or B (or JSON {"choice": "A"}).')


def revised(text: str) -> str:
    """The text after `REVISED PREFERENCE:` up to `DONE` (the paper's format)."""
    marker = "REVISED PREFERENCE:"
    start = text.find(marker)
    body = text[start + len(marker):].strip() if start >= 0 else ""
    lines = body.rsplit("\n", 1)
    if len(lines) == 2 and lines[1].strip() == "DONE":
        body = lines[0].strip()
    if not body:
        raise ParseFailure("Give the revision in the format: REVISED PREFERENCE: ... then DONE on its own line.")
    return body


def needs_revision(text: str) -> bool:
    """JSON {"needs_revision": true|false}."""
    obj = _json_object(text)
    if obj is None or not isinstance(obj.get("needs_revision"), bool):
        raise ParseFailure('Reply with JSON only: {"needs_revision": true} or {"needs_revision": false}.')
    return obj["needs_revision"]


PARSERS: dict[str, Callable[[str], Any]] = {"choice": choice, "revised": revised, "needs_revision": needs_revision}


def parse(parser: str | None, text: str) -> Any:
    if parser is None:
        return text
    return PARSERS[parser](text)
