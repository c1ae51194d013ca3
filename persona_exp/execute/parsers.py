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


_A_BETTER = "Output (a) is better than Output (b)"


def a_better(text: str) -> str:
    """WikiPersonas' judge verdict, JSON {"Output (a) is better than Output (b)": true|false},
    as the letter of the preferred output (a bare A or B is accepted too)."""
    obj = _json_object(text)
    if obj is not None and isinstance(obj.get(_A_BETTER), bool):
        return "A" if obj[_A_BETTER] else "B"
    try:
        return choice(text)
    except ParseFailure:
        raise ParseFailure(f'Reply with JSON only: {{"Concise explanation": "...", "{_A_BETTER}": true or false}}.') from None


def yes_no(text: str) -> bool:
    """`yes` or `no` as the first word (any case, punctuation ignored), or JSON {"answer": "yes"}."""
    obj = _json_object(text)
    word = str(obj.get("answer", "")) if obj is not None else text
    m = re.match(r"\W*(yes|no)\b", word.strip(), re.I)
    if not m:
        raise ParseFailure("Answer with one word: yes or no.")
    return m.group(1).lower() == "yes"


_ITEM = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*\u2022])\s+(.+?)\s*$", re.M)


def questions(text: str) -> list[str]:
    """The items of a numbered or bulleted list (one question per line)."""
    items = [q.strip().strip('"') for q in _ITEM.findall(text)]
    items = [q for q in items if q]
    if not items:
        raise ParseFailure("Give the questions as a numbered list, one per line: 1. ...")
    return items


def cot_response(text: str) -> str:
    """The answer after the last `Response:` of WikiPersonas' chain-of-thought format."""
    start = text.rfind("Response:")
    body = text[start + len("Response:"):].strip() if start >= 0 else ""
    if not body:
        raise ParseFailure("Use the format: Axis: ... Categories: ... Chosen category: ... Response: ...")
    return body


def text(text: str) -> str:
    """Free text (an open persona field): the answer with its whitespace
    collapsed; an empty answer is not one."""
    body = " ".join(text.split())
    if not body:
        raise ParseFailure("Reply with the text itself; the answer was empty.")
    return body


_PERSON = re.compile(r"^\s*[-*\u2022]\s+(.+?)\s*$")


def _part(text: str) -> str:
    return text.strip().strip("*\"'").strip()


def people(text: str) -> dict[str, list]:
    """WikiPersonas' people-by-axis lines, ``- category, name, description``
    (the description may contain commas, names may not). Returns
    ``{"people": [[category, name, description], ...], "unparsed": [line, ...]}``
    with every other non-blank line in ``unparsed``; no person line at all is
    a parse failure."""
    found: list[list[str]] = []
    unparsed: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _PERSON.match(line)
        parts = [_part(p) for p in m.group(1).split(",", 2)] if m else []
        if len(parts) == 3 and all(parts):
            found.append(parts)
        else:
            unparsed.append(line.strip())
    if not found:
        raise ParseFailure("List the people one per line as: - sub-category, name, one-sentence description")
    return {"people": found, "unparsed": unparsed}


PARSERS: dict[str, Callable[[str], Any]] = {
    "choice": choice,
    "revised": revised,
    "needs_revision": needs_revision,
    "a_better": a_better,
    "yes_no": yes_no,
    "questions": questions,
    "cot_response": cot_response,
    "text": text,
    "people": people,
}


def parse(parser: str | None, text: str) -> Any:
    if parser is None:
        return text
    return PARSERS[parser](text)
