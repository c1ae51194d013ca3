"""The plan: every LLM call an experiment needs, keyed by content, deduplicated.

A call's messages are rendered at plan time except for *slots* that hold the
output of an earlier call (a critique reads the base answer, a judge reads two
answers). A slot is written into the message text as a sentinel and the call's
key covers the sentinel plus the *key* of the call that fills it, so every key
is known before anything runs (a Merkle DAG) and the cache decides what runs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from persona_exp.errors import PlanError
from persona_exp.plan.keys import call_key, node_key, sampling_json

_SLOT = "\x00slot:{}\x00"
_SLOT_RE = re.compile("\x00slot:([A-Za-z0-9_]+)\x00")


def slot(name: str) -> str:
    """The placeholder for the output of input ``name`` inside a message."""
    return _SLOT.format(name)


@dataclass(slots=True)
class Call:
    """One LLM call of the plan."""

    key: str
    step: str
    role: str
    messages: tuple[dict[str, str], ...]
    inputs: dict[str, str] = field(default_factory=dict)  # slot name -> key of the call that fills it
    replicate: int = 0
    parser: str | None = None  # name of a strict answer parser (see execute.parsers)

    def render(self, outputs: Mapping[str, str]) -> list[dict[str, str]]:
        """The messages with every slot filled from the outputs of the input calls."""
        if not self.inputs:
            return [dict(m) for m in self.messages]
        values = {name: outputs[key] for name, key in self.inputs.items()}
        return [{**m, "content": _SLOT_RE.sub(lambda mt: values[mt.group(1)], m["content"])} for m in self.messages]


class Plan:
    """An ordered set of steps, each a set of calls; identical calls are merged."""

    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.steps: list[str] = []
        self.requested = Counter()  # step -> calls asked for before merging
        self._sampling: dict[int, tuple[Mapping[str, Any], bytes]] = {}  # id -> (dict kept alive, its canonical JSON)

    def add(
        self,
        step: str,
        role: str,
        model: str,
        messages: Iterable[Mapping[str, str]],
        sampling: Mapping[str, Any],
        *,
        inputs: Mapping[str, str] | None = None,
        replicate: int = 0,
        parser: str | None = None,
    ) -> str:
        """Adds a call (or finds the identical one) and returns its key."""
        msgs = tuple({"role": m["role"], "content": m["content"]} for m in messages)
        inputs = dict(inputs or {})
        used = {name for m in msgs if "\x00" in m["content"] for name in _SLOT_RE.findall(m["content"])}
        if used != set(inputs):
            raise PlanError(f"step {step}: message slots {sorted(used)} do not match inputs {sorted(inputs)}.")
        for name, key in inputs.items():
            if key not in self.calls:
                raise PlanError(f"step {step}: input {name} refers to a call that is not in the plan.")
        cached = self._sampling.get(id(sampling))
        if cached is None or cached[0] is not sampling:
            cached = (sampling, sampling_json(sampling))
            self._sampling[id(sampling)] = cached
        # Structured output asks for the parser's JSON schema: the answer's form changes, so the key does.
        form = parser if parser is not None and sampling.get("structured_output") else None
        key = call_key(model, msgs, sampling, replicate, inputs=inputs, sampling_bytes=cached[1], response_format=form)
        if step not in self.steps:
            self.steps.append(step)
        self.requested[step] += 1
        if key not in self.calls:
            self.calls[key] = Call(key, step, role, msgs, inputs, replicate, parser)
        return key

    def include(self, calls: Iterable[Call]) -> None:
        """Brings in calls of another plan (e.g. answered by an earlier stage)
        so that new calls can read them; they do not count as requested here."""
        for c in calls:
            if c.key not in self.calls:
                if any(k not in self.calls for k in c.inputs.values()):
                    raise PlanError(f"step {c.step}: include a call's inputs before the call.")
                self.calls[c.key] = c
                if c.step not in self.steps:
                    self.steps.append(c.step)

    def update(self, other: "Plan") -> None:
        """Adds the calls of ``other`` that are not here yet (a merged plan keeps
        the requested counts of both; inputs still precede their readers)."""
        for key, c in other.calls.items():
            if key not in self.calls:
                for k in c.inputs.values():
                    if k not in self.calls and k not in other.calls:
                        raise PlanError(f"step {c.step}: input refers to a call that is in neither plan.")
                self.calls[key] = c
        for step in other.steps:
            if step not in self.steps:
                self.steps.append(step)
        self.requested.update(other.requested)

    def levels(self) -> list[list[Call]]:
        """Calls in dependency order: level 0 reads no other call, level n reads
        calls of lower levels only. (Inputs always precede a call in ``calls``,
        so one pass in insertion order suffices.)"""
        level: dict[str, int] = {}
        out: list[list[Call]] = []
        for c in self.calls.values():
            lv = 1 + max((level[k] for k in c.inputs.values()), default=-1)
            level[c.key] = lv
            if lv == len(out):
                out.append([])
            out[lv].append(c)
        return out

    def by_step(self) -> dict[str, list[Call]]:
        out: dict[str, list[Call]] = {s: [] for s in self.steps}
        for c in self.calls.values():
            out[c.step].append(c)
        return out

    def plan_key(self) -> str:
        """A key for the whole plan (changes when any call changes)."""
        return node_key("plan", {}, sorted(self.calls))

    def __len__(self) -> int:
        return len(self.calls)
