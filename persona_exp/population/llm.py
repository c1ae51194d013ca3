"""Language-model steps of population curation, run on top of the procedural population.

The procedural population (census draw, consistency rules, enrichment; or a
famous-person file) needs no model and is stored as parquet under its key. The
steps here ask a model, through the run's stager (``Context.run_stage``: the
call cache first, then the model; ``persona-exp plan`` stops with a pending
note when an answer is not cached), so they run on every build and a rerun is
all cache hits. They are declared in the spec's ``population.llm:`` block
(:class:`~persona_exp.population.build.PopulationLLM`):

- ``check`` (PERSONA 3.1): one yes/no ``check_template`` call per persona,
  shown as ``Key: value`` lines (census and procedural attributes as drawn);
  personas the model calls inconsistent are dropped (the paper dropped about
  8.5%). A persona with no usable answer is kept and counted as unanswered.
  With ``oversample`` the procedural population is drawn that much larger and
  the first ``size`` accepted personas (in draw order) are kept; when fewer
  are accepted the population is smaller than ``size`` and the report says by
  how much. The representativeness table is recomputed for the kept personas
  (the TVDs before the check stay in the report).
- ``fields``: for each listed procedural attribute (detailed_job_description,
  defining_quirks, mannerisms, personal_time, lifestyle...), one
  ``field_template`` call per kept persona to whom the attribute applies,
  written after the check so that no call is spent on dropped profiles. The
  persona is shown without the fields being rewritten (each is written from
  the same census and procedural profile), the field label is the attribute
  name with spaces, and the age is also stated on its own (``{age}``, e.g.
  "34 years old"), so that a child's or a 95-year-old's text fits the age.
  The model's text replaces the procedural value; where the call failed (or
  the answer was empty after the re-asks) the procedural value stays and is
  counted.
- ``generate_axes`` (WikiPersonas G.1): one ``people_template`` call per axis;
  the answer's ``- category, name, description`` lines become a
  :class:`~persona_exp.population.famous.FamousSet` (lines that do not parse
  and people listed twice on an axis are counted and reported; an axis with no
  person line is an error naming it), from which
  :func:`~persona_exp.population.famous.build_famous_population` draws as from
  a file.

What each step did goes to ``population.report["llm"]`` (shown by
``persona-exp population``, stored in every run's manifest).
"""

from __future__ import annotations

from typing import Any, Sequence

import polars as pl

from persona_exp.errors import DataError, PersonaExpError
from persona_exp.plan import Plan
from persona_exp.population.attributes import ATTRIBUTES, attribute
from persona_exp.population.build import CHECK_OFF_NOTE, DEFAULT_SIZE, Population, PopulationLLM, PopulationSpec, census_pool, population_key
from persona_exp.population.famous import FamousSet, build_famous_population, slug
from persona_exp.population.render import render_persona
from persona_exp.population.represent import representativeness
from persona_exp.steps.calls import add_call
from persona_exp.steps.classify import classify
from persona_exp.steps.templates import CONSISTENCY, FAMOUS_PEOPLE, OPEN_FIELD

__all__ = [
    "CHECK_STEP",
    "FIELDS_STEP",
    "PEOPLE_STEP",
    "apply_llm_steps",
    "build_generated_famous",
    "consistency_check",
    "generate_people",
    "needs_model",
    "write_open_fields",
]

CHECK_STEP = "population_check"
FIELDS_STEP = "population_fields"
PEOPLE_STEP = "famous_people"
_SHOWN = 20  # ids and errors listed in a report


def _model(ctx: Any, role: str) -> str:
    models = getattr(ctx, "models", {}) or {}
    if role not in models:
        raise PersonaExpError(f"population.llm.role: the model role {role!r} is not defined under models.")
    return models[role].model


# --------------------------------------------------------------------------- consistency check


def consistency_check(ctx: Any, frame: pl.DataFrame, *, role: str = "generator", template: str = CONSISTENCY,
                      keep: int | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Asks the model whether each persona is consistent; drops those it says
    no to and keeps the first ``keep`` of the others (None = all). Returns the
    kept rows and the counts: ``checked``, ``rejected``, ``unanswered`` (kept),
    ``rate`` (rejected of the answered), ``accepted``, ``kept``, ``short``
    (``keep`` minus kept, when positive) and ``surplus`` (accepted beyond ``keep``)."""
    ids = frame.get_column("persona_id").to_list()
    items = {pid: {"persona": render_persona(row)} for pid, row in zip(ids, frame.iter_rows(named=True))}
    result = classify(ctx, CHECK_STEP, role, template, items)
    verdicts = [result.verdicts[pid] for pid in ids]
    accepted = frame.filter(pl.Series("ok", [v is not False for v in verdicts], dtype=pl.Boolean))
    kept = accepted if keep is None else accepted.head(keep)
    kept_ids = set(kept.get_column("persona_id").to_list())
    answered = result.yes + result.no
    report = {
        "role": role,
        "model": _model(ctx, role),
        "checked": len(ids),
        "rejected": result.no,
        "unanswered": result.unanswered,
        "rate": round(result.no / answered, 6) if answered else None,
        "accepted": accepted.height,
        "kept": kept.height,
        "asked": keep,
        "short": max(0, keep - kept.height) if keep is not None else 0,
        "surplus": accepted.height - kept.height,
        "rejected_ids": [pid for pid, v in zip(ids, verdicts) if v is False],
        "unanswered_ids": [pid for pid, v in zip(ids, verdicts) if v is None and pid in kept_ids][:_SHOWN],
        "errors": sorted(set(result.errors.values()))[:5],
    }
    return kept, report


def _income_numbers(frame: pl.DataFrame) -> pl.DataFrame:
    """``_income`` read back from the income text ("$45,300", "$15,000 to
    $17,499", "Loss of $1,200", "No income"), so the kept personas fall in the
    same income bands as the source (representativeness)."""
    text = pl.col("income")
    first = text.str.extract(r"\$([\d,]+)", 1).str.replace_all(",", "").cast(pl.Int64, strict=False)
    value = (pl.when(text == "No income").then(pl.lit(0, dtype=pl.Int64))
             .when(text.str.starts_with("Loss of")).then(-first)
             .otherwise(first))
    return frame.with_columns(value.alias("_income"))


def _represent(spec: PopulationSpec, frame: pl.DataFrame) -> list[dict[str, Any]]:
    _, _, pool, _ = census_pool(spec)
    return representativeness(_income_numbers(frame) if "income" in frame.columns else frame, pool)


# --------------------------------------------------------------------------- open fields


def _label(name: str) -> str:
    return name.replace("_", " ")


def _age_phrase(age: Any) -> str:
    """The persona's age in words for the open-field prompt: "34 years old", "1 year old", "under 1 year old"
    (the census writes age 0 for babies under one)."""
    if age is None:
        return "of unknown age"
    age = int(age)
    return "under 1 year old" if age == 0 else f"{age} year{'' if age == 1 else 's'} old"


def write_open_fields(ctx: Any, frame: pl.DataFrame, fields: Sequence[str], *, role: str = "generator",
                      template: str = OPEN_FIELD) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Replaces the procedural value of each of ``fields`` by the model's text
    (one call per persona and field, one stage); see the module docstring.
    Per field the report counts ``written``, ``failed`` (procedural value kept)
    and ``not_applicable`` (no call: the attribute does not apply)."""
    fields = [attribute(f).name for f in fields]
    missing = [f for f in fields if f not in frame.columns]
    if missing:
        raise DataError(f"the persona frame has no column {', '.join(missing)}; open fields rewrite procedural attributes.")
    shown = [a.name for a in ATTRIBUTES if a.name in frame.columns and a.name not in fields]
    plan = Plan()
    rows = frame.to_dicts()
    keys: dict[tuple[int, str], str] = {}
    for i, row in enumerate(rows):
        persona = render_persona(row, shown)
        age = _age_phrase(row.get("age"))
        for f in fields:
            if attribute(f).applies(row):
                keys[i, f] = add_call(plan, ctx, FIELDS_STEP, role, template, {"persona": persona, "field": _label(f), "age": age}, parser="text")
    results = ctx.run_stage(plan) if keys else {}
    columns = {f: frame.get_column(f).to_list() for f in fields}
    per_field = {f: {"written": 0, "failed": 0, "not_applicable": 0} for f in fields}
    errors: set[str] = set()
    failed_ids: list[str] = []
    for i, row in enumerate(rows):
        for f in fields:
            key = keys.get((i, f))
            if key is None:
                per_field[f]["not_applicable"] += 1
                continue
            res = results[key]
            if res.ok and isinstance(res.value, str) and res.value:
                columns[f][i] = res.value
                per_field[f]["written"] += 1
            else:
                per_field[f]["failed"] += 1
                errors.add(f"{res.status}: {res.error}")
                failed_ids.append(f"{row['persona_id']}:{f}")
    out = frame.with_columns([pl.Series(f, columns[f], dtype=pl.String) for f in fields])
    report = {
        "role": role,
        "model": _model(ctx, role),
        "fields": per_field,
        "calls": len(keys),
        "failed": sum(v["failed"] for v in per_field.values()),
        "failed_items": failed_ids[:_SHOWN],
        "errors": sorted(errors)[:5],
    }
    return out, report


# --------------------------------------------------------------------------- census: both steps


def apply_llm_steps(pop: Population, spec: PopulationSpec, ctx: Any) -> Population:
    """The census steps of ``spec.llm`` (check, then fields) on the procedural
    population ``pop`` (built from ``spec.procedural()``); a new Population
    whose report gains ``llm`` and whose key is that of the final frame."""
    llm = spec.llm
    if llm is None or not (llm.check or llm.fields):
        return pop
    size = spec.size if spec.size is not None else DEFAULT_SIZE
    frame = pop.frame
    report = dict(pop.report)
    summary: dict[str, Any] = {"role": llm.role, "model": _model(ctx, llm.role), "procedural_key": pop.key, "procedural_size": pop.frame.height}
    notes = [n for n in report.get("notes", []) if n != CHECK_OFF_NOTE]
    if llm.check:
        frame, check = consistency_check(ctx, frame, role=llm.role, template=llm.check_template, keep=size)
        if frame.height == 0:
            raise DataError(
                f"population.llm.check: the model {summary['model']} (role {llm.role}) called all {check['checked']} profiles "
                "inconsistent, so no persona is left; check the model and population.llm.check_template."
            )
        check["oversample"] = llm.oversample
        summary["check"] = check
        if "representativeness" in report:
            check["tvd_before"] = {e["attribute"]: e["tvd"] for e in report["representativeness"]}
            report["representativeness"] = _represent(spec, frame)
        rate = f"{100 * check['rate']:.1f}%" if check["rate"] is not None else "n/a"
        notes.append(f"Language-model consistency check ({summary['model']}): {check['rejected']} of {check['checked']} profiles rejected "
                     f"({rate} of those answered; PERSONA dropped about 8.5%), {check['unanswered']} unanswered and kept.")
        if check["short"]:
            notes.append(f"The check left {check['kept']} personas, {check['short']} fewer than population.size {size}; "
                         "raise population.llm.oversample to draw more.")
    if llm.fields:
        frame, fields = write_open_fields(ctx, frame, llm.fields, role=llm.role, template=llm.field_template)
        summary["fields"] = fields
        written = sum(v["written"] for v in fields["fields"].values())
        notes.append(f"Open fields written by {summary['model']}: {', '.join(llm.fields)} ({written} values"
                     + (f"; {fields['failed']} calls failed and kept their procedural value" if fields["failed"] else "") + ").")
    report.update({"size": frame.height, "spec": spec.model_dump(mode="json"), "llm": summary, "notes": notes})
    return Population(frame, report, population_key(frame))


# --------------------------------------------------------------------------- famous: generated people


def generate_people(ctx: Any, axes: Sequence[str], *, role: str = "generator", template: str = FAMOUS_PEOPLE) -> tuple[FamousSet, dict[str, Any]]:
    """One ``template`` call per axis, answered in one stage; the ``- category,
    name, description`` lines as a FamousSet (axes in the given order) and a
    report per axis: people, categories, unparsed lines, duplicates."""
    plan = Plan()
    keys = {axis: add_call(plan, ctx, PEOPLE_STEP, role, template, {"axis": axis}, parser="people") for axis in axes}
    results = ctx.run_stage(plan)
    model = _model(ctx, role)
    data: dict[str, Any] = {}
    per_axis: dict[str, dict[str, Any]] = {}
    for axis, key in keys.items():
        res = results[key]
        if not res.ok:
            why = "the call failed" if res.status != "parse_failed" else "no line of the answer has the form '- category, name, description'"
            raise DataError(
                f"population.llm.generate_axes: the model {model} (role {role}) gave no usable people for the axis {axis!r}: "
                f"{why} ({res.status}: {res.error}). Rerun to retry, or change llm.people_template."
            )
        categories: dict[str, list[dict[str, str]]] = {}
        seen: set[str] = set()
        duplicates = 0
        for category, name, description in res.value["people"]:
            if slug(name) in seen:
                duplicates += 1
                continue
            seen.add(slug(name))
            categories.setdefault(category, []).append({"name": name, "description": description})
        data[axis] = {"categories": categories}
        per_axis[axis] = {"people": len(seen), "categories": len(categories), "unparsed_lines": len(res.value["unparsed"]),
                          "duplicates": duplicates, "unparsed": res.value["unparsed"][:5]}
    fset = FamousSet.model_validate({"about": f"people by axis generated by {model}", "axes": data})
    unparsed = sum(a["unparsed_lines"] for a in per_axis.values())
    report = {"role": role, "model": model, "axes": per_axis, "unparsed_lines": unparsed,
              "duplicates": sum(a["duplicates"] for a in per_axis.values())}
    return fset, report


def build_generated_famous(spec: PopulationSpec, ctx: Any, *, seed: int) -> Population:
    """A famous population from people the model names for ``spec.llm.generate_axes``."""
    llm: PopulationLLM = spec.llm  # type: ignore[assignment]
    fset, gen = generate_people(ctx, llm.generate_axes or [], role=llm.role, template=llm.people_template)
    source = f"people generated by {gen['model']} (role {llm.role}) for the axes {', '.join(llm.generate_axes or [])}"
    pop = build_famous_population(fset, spec.size, seed=seed, source=source)
    report = dict(pop.report)
    report["spec"] = spec.model_dump(mode="json")
    report["llm"] = {"role": llm.role, "model": gen["model"], "people": gen}
    notes = list(report.get("notes", []))
    skipped = [f"{gen['unparsed_lines']} line(s) of the model's answers did not parse"] if gen["unparsed_lines"] else []
    skipped += [f"{gen['duplicates']} person(s) listed twice on an axis were dropped"] if gen["duplicates"] else []
    notes.append(f"People generated by {gen['model']} (WikiPersonas G.1), one call per axis"
                 + (f"; {' and '.join(skipped)}." if skipped else "."))
    report["notes"] = notes
    return Population(pop.frame, report, pop.key)


def needs_model(spec: PopulationSpec) -> bool:
    """Whether building this population asks a model (its ``llm`` block has an active step)."""
    return spec.llm is not None and spec.llm.active
