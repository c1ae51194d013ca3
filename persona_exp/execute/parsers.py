"""Strict parsers for structured answers.

An answer that does not parse is never coerced: the runner re-asks (a bounded
number of times) with the reason, and otherwise records a parse failure that the
run counts and reports. Two declared exceptions, for models too weak for a
format: ``LENIENT`` readings of free-text answers whose markers are missing
(a revision without `REVISED PREFERENCE:` is the whole answer), which the run
counts and reports as lenient; and ``SCHEMAS``, the JSON form each parser also
accepts, which a role can ask for as structured output (``response_format``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable


class ParseFailure(ValueError):
    """The answer does not have the requested form; the message says what was expected."""


def _whole_json(text: str, field: str) -> Any:
    """``field`` of an answer that is one JSON object and nothing else (what
    structured output returns), else None: free text that merely contains
    braces is never read as JSON."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        return None
    try:
        obj = json.loads(body)
    except json.JSONDecodeError:
        return None
    return obj.get(field) if isinstance(obj, dict) else None


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
    """The text after `REVISED PREFERENCE:` up to `DONE` (the paper's format),
    or JSON {"revised_preference": "..."}."""
    value = _whole_json(text, "revised_preference")
    if isinstance(value, str) and value.strip():
        return value.strip()
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
    """The items of a numbered or bulleted list (one question per line), or
    JSON {"questions": [...]}."""
    value = _whole_json(text, "questions")
    if isinstance(value, list) and all(isinstance(q, str) for q in value) and any(q.strip() for q in value):
        return [q.strip() for q in value if q.strip()]
    items = [q.strip().strip('"') for q in _ITEM.findall(text)]
    items = [q for q in items if q]
    if not items:
        raise ParseFailure("Give the questions as a numbered list, one per line: 1. ...")
    return items


def cot_response(text: str) -> str:
    """The answer after the last `Response:` of WikiPersonas' chain-of-thought
    format, or the "response" of its JSON form."""
    value = _whole_json(text, "response")
    if isinstance(value, str) and value.strip():
        return value.strip()
    start = text.rfind("Response:")
    body = text[start + len("Response:"):].strip() if start >= 0 else ""
    if not body:
        raise ParseFailure("Use the format: Axis: ... Categories: ... Chosen category: ... Response: ...")
    return body


def text(text: str) -> str:
    """Free text (an open persona field): the answer with its whitespace
    collapsed (or JSON {"text": "..."}); an empty answer is not one."""
    value = _whole_json(text, "text")
    body = " ".join((value if isinstance(value, str) else text).split())
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


def _whole_revision(text: str) -> str | None:
    lines = text.strip().splitlines()
    if lines and lines[-1].strip() == "DONE":
        lines.pop()
    body = "\n".join(lines).strip()
    return body or None


def _question_lines(text: str) -> list[str] | None:
    found = [ln.strip().strip('"') for ln in text.splitlines() if ln.strip().endswith("?")]
    return found or None


# The declared lenient readings: what a marker-less answer means, for parsers
# whose markers only delimit free text. A choice or a yes/no is never guessed.
LENIENT: dict[str, Callable[[str], Any]] = {
    "revised": _whole_revision,  # the revision is the whole answer
    "cot_response": lambda t: " ".join(t.split()) or None,  # the response is the whole answer
    "questions": _question_lines,  # every line that ends with a question mark
}


def lenient(parser: str | None, text: str) -> Any:
    """The declared lenient reading of an answer the strict parser refused (None: there is none)."""
    read = LENIENT.get(parser or "")
    return None if read is None else read(text)


def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}

# The JSON form each parser accepts, sent as a JSON schema when a role asks for structured output.
SCHEMAS: dict[str, dict[str, Any]] = {
    "choice": _obj({"choice": {"type": "string", "enum": ["A", "B"]}}),
    "revised": _obj({"revised_preference": _STR}),
    "needs_revision": _obj({"needs_revision": _BOOL}),
    "a_better": _obj({"Concise explanation": _STR, _A_BETTER: _BOOL}),
    "yes_no": _obj({"answer": {"type": "string", "enum": ["yes", "no"]}}),
    "questions": _obj({"questions": {"type": "array", "items": _STR}}),
    "cot_response": _obj({"axis": _STR, "categories": _STR, "chosen_category": _STR, "response": _STR}),
    "text": _obj({"text": _STR}),
}


def response_format(parser: str | None) -> dict[str, Any] | None:
    """The ``response_format`` asking for ``parser``'s JSON form (None when it has none)."""
    schema = SCHEMAS.get(parser or "")
    if schema is None:
        return None
    return {"type": "json_schema", "json_schema": {"name": parser, "schema": schema, "strict": True}}
