"""Zero-shot yes/no classifiers (PERSONA 3.1 and 3.2): is this profile
consistent, is this question controversial.

:func:`classify` asks one templated yes/no question per item, all in one
stage (cache first, then the model; a dry stage stops with ``StagePending``
when an answer is not cached), and reads each answer with the strict
``yes_no`` parser. Items whose rendered prompt is identical share one call.

Every item gets a verdict: ``True`` (yes), ``False`` (no) or ``None`` when the
model gave no usable answer (the call failed, or the answer was still not a
yes or no after the runner's re-asks). Callers never guess a ``None``: they
*keep* the item, as if there had been no check, and count it as
"unanswered" in their report, so a flaky provider never silently shrinks a
population or a prompt set. (Failed calls are not cached, so a rerun asks
them again.)

:class:`ControversialFilter` is the prompt filter of PERSONA 3.2 built on it:
it keeps the prompts a model calls controversial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import polars as pl

from pydantic import Field

from persona_exp.errors import PersonaExpError
from persona_exp.plan import Plan
from persona_exp.prompts.filters import filter_prompts, make_filter
from persona_exp.steps.calls import add_call
from persona_exp.steps.templates import CONTROVERSIAL, Templated

__all__ = [
    "Classification",
    "ControversialFilter",
    "ControversialParams",
    "apply_prompt_filters",
    "build_prompt_filters",
    "classify",
    "controversial_entry",
    "controversial_params",
]


@dataclass
class Classification:
    """The verdict per item (True, False, or None = unanswered) and, for the
    unanswered ones, why (``"failed: ..."``, ``"parse_failed: ..."``)."""

    verdicts: dict[str, bool | None]
    errors: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # item -> call key

    @property
    def yes(self) -> int:
        return sum(v is True for v in self.verdicts.values())

    @property
    def no(self) -> int:
        return sum(v is False for v in self.verdicts.values())

    @property
    def unanswered(self) -> int:
        return sum(v is None for v in self.verdicts.values())

    def counts(self) -> dict[str, int]:
        return {"checked": len(self.verdicts), "yes": self.yes, "no": self.no, "unanswered": self.unanswered}


def classify(ctx: Any, step: str, role: str, template: str, items: Mapping[str, Mapping[str, str]]) -> Classification:
    """One yes/no call per item (``items``: item id -> the template's values),
    answered in one stage; see the module docstring for what ``None`` means."""
    plan = Plan()
    keys = {item: add_call(plan, ctx, step, role, template, values, parser="yes_no") for item, values in items.items()}
    results = ctx.run_stage(plan) if keys else {}
    verdicts: dict[str, bool | None] = {}
    errors: dict[str, str] = {}
    for item, key in keys.items():
        res = results[key]
        if res.ok and isinstance(res.value, bool):
            verdicts[item] = res.value
        else:
            verdicts[item] = None
            errors[item] = f"{res.status}: {res.error}"
    return Classification(verdicts, errors, keys)


class ControversialFilter:
    """Keeps the prompts a model says are controversial (PERSONA 3.2: of the
    PRISM opening prompts with a question mark and five words, those an LLM
    judged controversial).

    One ``template`` call per distinct prompt text (field ``{question}``),
    asked of the model role ``role`` through ``ctx.run_stage``. A prompt the
    model gave no yes/no for is kept and counted in ``last["unanswered"]``;
    ``last`` holds the counts of the latest ``apply``.
    """

    name = "controversial"

    def __init__(self, ctx: Any, role: str = "generator", template: str = CONTROVERSIAL, *, step: str = "prompt_controversial"):
        self.ctx, self.role, self.template, self.step = ctx, role, template, step
        self.last: dict[str, Any] = {}

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        texts = frame.get_column("text").to_list()
        result = classify(self.ctx, self.step, self.role, self.template, {t: {"question": t} for t in dict.fromkeys(texts)})
        keep = [result.verdicts[t] is not False for t in texts]
        self.last = {
            "checked": len(texts),
            "controversial": sum(result.verdicts[t] is True for t in texts),
            "not_controversial": sum(result.verdicts[t] is False for t in texts),
            "unanswered": sum(result.verdicts[t] is None for t in texts),
            "calls": len(result.verdicts),
            "role": self.role,
        }
        if result.errors:
            self.last["errors"] = sorted(set(result.errors.values()))[:5]
        return frame.filter(pl.Series("keep", keep, dtype=pl.Boolean))

    def __repr__(self) -> str:
        return f"ControversialFilter(role={self.role!r})"


class ControversialParams(Templated):
    """A spec's ``{controversial: {role: ..., template: ...}}`` prompt filter entry."""

    TEMPLATE_FIELDS = {"template": ("question",)}

    role: str = Field("generator", min_length=1, description="the model role (a key of models:) that answers")
    template: str = Field(CONTROVERSIAL, description="the yes/no prompt; {question} is filled per prompt")


def controversial_params(param: Any) -> ControversialParams | None:
    """The parameters of a ``controversial`` filter entry: ``true`` (or no
    value) for the defaults, ``false`` for off (None), or a mapping of
    ``role`` and ``template``. Raises pydantic's ValidationError or ValueError."""
    if param is False:
        return None
    if param is True or param is None:
        return ControversialParams()
    if isinstance(param, ControversialParams):
        return param
    if isinstance(param, Mapping):
        return ControversialParams.model_validate(dict(param))
    raise ValueError(f"controversial takes true, false or a mapping such as {{role: generator, template: ...}}, got {param!r}")


def controversial_entry(entry: Any) -> tuple[bool, Any]:
    """Whether a spec's prompt filter entry is the controversial filter, and its parameter."""
    if entry == "controversial":
        return True, None
    if isinstance(entry, Mapping) and len(entry) == 1 and "controversial" in entry:
        return True, entry["controversial"]
    return False, None


def build_prompt_filters(entries: Sequence[Any], ctx: Any, where: str) -> list[Any]:
    """A spec's list of prompt filters (``where`` names it in errors, e.g.
    ``prompts.filters``), with its controversial entries built as
    :class:`ControversialFilter` on ``ctx``'s stager and the others by
    :func:`persona_exp.prompts.filters.make_filter`. Switched-off entries are left out."""
    built: list[Any] = []
    for i, entry in enumerate(entries or []):
        is_it, param = controversial_entry(entry)
        if not is_it:
            made = make_filter(entry, f"{where}[{i}]")
        else:
            params = controversial_params(param)
            if params is not None and (ctx is None or getattr(ctx, "stage", None) is None):
                raise PersonaExpError(f"{where}[{i}]: the controversial filter asks a model, so it needs the run's models and call cache "
                                      "(a Context with a stager, see persona_exp.pipeline.stage_context).")
            made = None if params is None else ControversialFilter(ctx, params.role, params.template)
        if made is not None:
            built.append(made)
    return built


def apply_prompt_filters(frame: pl.DataFrame, entries: Sequence[Any], ctx: Any, where: str) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Builds (see :func:`build_prompt_filters`) and applies a spec's prompt
    filters; per filter a report line (name, before, removed, after) and, for a
    controversial filter, its counts (controversial, unanswered, calls...)."""
    built = build_prompt_filters(entries, ctx, where)
    frame, steps = filter_prompts(frame, built)
    lines = []
    for f, step in zip(built, steps):
        line = step._asdict()
        extra = getattr(f, "last", None)
        if isinstance(extra, dict):
            line.update({k: v for k, v in extra.items() if k not in line})
        lines.append(line)
    return frame, lines
