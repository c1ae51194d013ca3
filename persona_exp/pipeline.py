"""From a spec file to a stored run: load, populate, plan, execute, analyze, store.

Everything the CLI does is callable from Python, e.g.
``persona_exp.pipeline.run("experiments/loo.yaml")``.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

import persona_exp
from persona_exp import prompts as prompt_sets
from persona_exp.errors import InvalidArgumentError, PersonaExpError, SpecError, did_you_mean
from persona_exp.execute import CallCache, RunCounts
from persona_exp.execute.budget import Budget, Estimate, run_plan
from persona_exp.execute.llm import check_model_names, preflight
from persona_exp.execute.ray_executor import RayExecutor, parse_executor
from persona_exp.execute.runner import explain, reason_of
from persona_exp.execute.stage import Stager
from persona_exp.experiments import KINDS
from persona_exp.experiments.base import Analysis, Context, Design
from persona_exp.plan.keys import node_key
from persona_exp.spec import load
from persona_exp.spec.loader import located_errors
from persona_exp.spec.experiment import ExperimentSpec
from persona_exp.spec.paths import resolve_input_files
from persona_exp.steps.context import StagePending
from persona_exp.store import check_run_name, label_simulated, simulated_roles, write_run
from persona_exp.store.runs import new_run_id


@dataclass
class Prepared:
    spec: ExperimentSpec
    spec_path: str
    root: Path
    cache_path: Path
    ctx: Context
    design: Design
    population: Any
    prompt_report: list[dict[str, Any]]
    timings: dict[str, float]
    stager: Stager
    pending: StagePending | None = None  # dry planning stopped at calls not answered yet
    warnings: list[str] = field(default_factory=list)  # what would stop a run (dry planning only: a run stops at once)
    overrides: list[str] = field(default_factory=list)  # the --set items, kept so `runs` can tell runs apart


@dataclass
class RunOutcome:
    run_dir: Path
    run_id: str
    counts: RunCounts
    analysis: Analysis
    manifest: dict[str, Any]
    failures: list[dict[str, Any]]


def load_spec(path: str | Path, overrides: Sequence[str] = (), *, for_run: bool = True) -> ExperimentSpec:
    """Loads and checks a spec; ``for_run=False`` skips the checks that only matter
    for running its experiment (e.g. to build just the population). Input file
    paths come back absolute (see spec.paths), so the spec runs from any folder."""
    spec, loc = load(path, ExperimentSpec, list(overrides))
    spec = resolve_input_files(spec, loc, path)
    module = KINDS[spec.experiment.kind]
    roles = module.roles(spec.experiment) if hasattr(module, "roles") else module.ROLES
    for role in roles:
        if role not in spec.models:
            typo = next((r for r in spec.models if r not in roles and did_you_mean(r, [role])), None)
            raise SpecError(
                f"{loc.where(('models', typo) if typo else ('models',), key=bool(typo))}: models: the {spec.experiment.kind} experiment "
                f"needs a model for the role {role!r}" + (f", and models.{typo} looks like a misspelling of it" if typo else "")
                + f"; add models.{role}.model (e.g. sim/judge or sim/generator to run offline)."
            )
    sources = getattr(module, "POPULATION_SOURCES", ("census",))
    if for_run and spec.population.source not in sources:
        raise SpecError(
            f"{loc.where(('population', 'source'))}: population.source: the {spec.experiment.kind} experiment needs a "
            f"{' or '.join(sources)} population (its personas have census attributes), not {spec.population.source!r}."
        )
    if for_run and not getattr(module, "USES_PROMPTS", True) and "prompts" in spec.model_fields_set:
        raise SpecError(
            f"{loc.where(('prompts',), key=True)}: prompts: the {spec.experiment.kind} experiment writes its own questions "
            f"(experiment.personal_template and divergent_template) and filters them with experiment.question_filters, so it reads no prompt set; "
            f"remove the prompts block."
        )
    curation = _curation_roles(spec, loc)
    for role, path in curation:
        if role not in spec.models:
            field = _dotted(path)
            raise SpecError(
                f"{loc.where(path)}: {field}: the model role {role!r} is not defined under models (which has "
                f"{', '.join(spec.models) or 'no role'}); add models.{role}.model (e.g. sim/generator to run offline) "
                f"or set {field} to one of those roles."
            )
    used = {role for role, _ in curation}
    for role in spec.models:
        if role not in roles and role not in used:
            extra = " (population.llm.role and a controversial prompt filter's role may name others)"
            raise SpecError(
                f"{loc.where(('models', role), key=True)}: models.{role}: unknown model role{did_you_mean(role, roles)} for a "
                f"{spec.experiment.kind} experiment, which uses {', '.join(roles)}{extra}."
            )
    check_model_names(spec.models, loc)
    _check_output(spec, loc)
    return spec


def _check_output(spec: ExperimentSpec, loc: Any) -> None:
    """output.dir must be (or become) a folder and output.cache a file: found
    before anything is built or sent, not as a traceback halfway through."""
    for field, path, want_dir in (("dir", spec.output.dir, True), ("cache", spec.output.cache, False)):
        if path is None:
            continue
        p = Path(path)
        blocker = next((q for q in (p, *p.parents) if q.exists() and not q.is_dir()), None)
        if want_dir and blocker is not None:
            why = "is a file" if blocker == p else f"is inside {blocker}, which is a file"
        elif not want_dir and p.is_dir():
            why = "is a folder; give the path of a cache file (e.g. my-cache.sqlite)"
        elif not want_dir and blocker is not None and blocker != p:
            why = f"is inside {blocker}, which is a file"
        else:
            continue
        raise SpecError(f"{loc.where(('output', field))}: output.{field}: {path} {why}, so "
                        f"{'runs and the call cache' if want_dir else 'the call cache'} cannot be stored there. Point output.{field} elsewhere (e.g. --set output.{field}=...).")


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _curation_roles(spec: ExperimentSpec, loc: Any) -> list[tuple[str, tuple]]:
    """The model roles of the population's llm steps and of controversial
    prompt filters, each with the spec path that names it; a malformed
    controversial entry is a SpecError here."""
    from pydantic import ValidationError

    from persona_exp.steps.classify import controversial_entry, controversial_params

    out: list[tuple[str, tuple]] = []
    llm = spec.population.llm
    if llm is not None and llm.active:
        out.append((llm.role, ("population", "llm", "role")))
    lists = [(("prompts", "filters"), spec.prompts.filters)]
    if isinstance(getattr(spec.experiment, "question_filters", None), list):
        lists.append((("experiment", "question_filters"), spec.experiment.question_filters))
    entries = []
    for where, filters in lists:
        for i, entry in enumerate(filters):
            is_it, param = controversial_entry(entry)
            if is_it:
                entries.append((where + (i, "controversial"), param))
    for path, param in entries:
        try:
            params = controversial_params(param)
        except ValidationError as exc:
            err = exc.errors()[0]
            sub = path + tuple(err["loc"])
            msg = "unknown key; the controversial filter takes role and template" if err["type"] == "extra_forbidden" else err["msg"]
            raise SpecError(f"{loc.where(sub, key=err['type'] == 'extra_forbidden')}: {_dotted(sub)}: {msg}.") from None
        except ValueError as exc:
            raise SpecError(f"{loc.where(path)}: {_dotted(path)}: {exc}.") from None
        if params is not None:
            out.append((params.role, path + ("role",)))
    return out


def stage_context(spec: ExperimentSpec, *, dry: bool = False, progress: bool = True) -> tuple[Context, Stager, Path]:
    """The run's Context with a stager on the spec's call cache (see
    execute.stage): what the population, prompt and experiment steps use to
    get model answers while planning."""
    root = Path(spec.output.dir)
    cache_path = Path(spec.output.cache) if spec.output.cache else root / "cache.sqlite"
    stager = Stager(spec.models, cache_path, dry=dry, progress=progress)
    ctx = Context(spec.name, spec.seed, spec.experiment, spec.models, pl.DataFrame(), pl.DataFrame(), stage=stager, analysis=spec.analysis)
    return ctx, stager, cache_path


def procedural_population_path(spec: ExperimentSpec, root: Path) -> Path:
    """Where the procedural population of a spec is stored (its content key:
    the population spec without the llm block, at the size actually drawn)."""
    procedural = spec.population.procedural()
    identity = {"spec": procedural.model_dump(exclude={"llm"}), "seed": spec.seed}
    if procedural.source == "famous":
        from persona_exp.population.famous import famous_fingerprint

        identity["people_fingerprint"] = famous_fingerprint(procedural.people)  # an edited file is a new population
    return root / "populations" / f"{node_key('population', identity)}.parquet"


def _population(spec: ExperimentSpec, root: Path, ctx: Context | None = None):
    """The spec's population: the procedural one (stored as parquet under its
    key and reused), then the ``population.llm`` steps on top of it, which ask
    the model through ``ctx``'s stager on every build (their calls are cached).
    Without ``ctx`` only a population without llm steps can be built."""
    from persona_exp.population import build_population, load_population, save_population
    from persona_exp.population.stored import StalePopulationError
    from persona_exp.population.llm import apply_llm_steps, build_generated_famous, needs_model

    pspec = spec.population
    if pspec.source == "persona":
        from persona_exp.population.released import released_population

        return released_population(pspec)
    if needs_model(pspec) and (ctx is None or ctx.stage is None):
        raise PersonaExpError(
            "population.llm asks a model (consistency check, open fields or generated people), so building this population needs "
            "the run's models and call cache: use persona_exp.pipeline.prepare, or pass a Context with a stager (see stage_context)."
        )
    if pspec.source == "famous" and needs_model(pspec) and pspec.llm.generate_axes is not None:  # type: ignore[union-attr]
        return build_generated_famous(pspec, ctx, seed=spec.seed)
    path = procedural_population_path(spec, root)
    try:
        pop = load_population(path) if path.exists() else None
    except StalePopulationError:
        pop = None  # saved under an older key scheme: built again and saved over it
    if pop is None:
        pop = build_population(pspec.procedural(), seed=spec.seed)
        save_population(pop, path)
    if needs_model(pspec):
        pop = apply_llm_steps(pop, pspec, ctx)
    return pop


def _prompts(spec: ExperimentSpec, ctx: Context | None = None) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """The spec's prompts after its filters, and per filter what it removed.
    A ``controversial`` filter asks the model through ``ctx``'s stager; its
    report line also says how many prompts got no answer (kept)."""
    from persona_exp.steps.classify import apply_prompt_filters

    p = spec.prompts
    frame = prompt_sets.load_default() if p.source == "default" else prompt_sets.load_file(p.source, p.text_column, p.topic_column)
    return apply_prompt_filters(frame, p.filters, ctx, "prompts.filters")


def _located(exc: PersonaExpError, spec_path: str | Path, overrides: Sequence[str]) -> str:
    """An error's message with the FILE:LINE:COL of the spec field it names (see spec.loader.located_errors)."""
    try:
        with located_errors(spec_path, overrides, ExperimentSpec):
            raise exc
    except PersonaExpError as located:
        return str(located)


def prepare(spec_path: str | Path, overrides: Sequence[str] = (), *, dry: bool = False, progress: bool = True,
            budget: Budget | None = None, limit: int | None = None, simulate: bool = False, executor: Any = None) -> Prepared:
    """Loads the spec, builds the population and prompts, and plans the run.

    Steps that need model answers while planning run them through a stager
    (see execute.stage); with ``dry=True`` nothing is sent to a model, and the
    plan stops at the first staged calls that are not cached (``pending``).
    ``budget`` and ``limit`` (see execute.budget) already hold for staged calls;
    ``simulate`` lets a dry plan answer staged calls of simulated roles in
    memory (free, nothing stored) instead of stopping there; ``executor``
    (execute.ray_executor) sends the staged calls, as it sends the plan's.
    """
    t0 = time.perf_counter()
    spec = load_spec(spec_path, overrides)
    warnings = []
    try:  # credentials and endpoints, before anything is sent
        with located_errors(spec_path, overrides, ExperimentSpec):
            reserves = preflight(spec.models, str(spec_path))
    except SpecError as exc:
        if not dry:
            raise
        warnings.append(f"a run would stop here: {exc}")
    else:
        for problem in reserves:  # a fallback deployment's: said, not refused
            text = _located(problem, spec_path, overrides)
            if dry:
                warnings.append(text)
            else:
                print(f"warning: {text}", file=sys.stderr, flush=True)
    root = Path(spec.output.dir)
    ctx, stager, cache_path = stage_context(spec, dry=dry, progress=progress)
    stager.budget, stager.limit, stager.simulate, stager.executor = budget, limit, simulate, executor
    module = KINDS[spec.experiment.kind]
    pending = None
    population = None
    try:
        with located_errors(spec_path, overrides, ExperimentSpec, field="population"):
            population = _population(spec, root, ctx)
        ctx.personas = population.frame
        t1 = time.perf_counter()
        if getattr(module, "USES_PROMPTS", True):
            with located_errors(spec_path, overrides, ExperimentSpec, field="prompts"):
                ctx.prompts, prompt_report = _prompts(spec, ctx)
        else:  # the experiment writes its questions and sets ctx.prompts in build
            ctx.prompts, prompt_report = pl.DataFrame(schema={c: pl.String for c in prompt_sets.COLUMNS}), []
        with located_errors(spec_path, overrides, ExperimentSpec, field="experiment"):
            design = module.build(ctx)
    except StagePending as exc:
        t1 = time.perf_counter()
        pending, prompt_report = exc, []
        design = Design(exc.plan, pl.DataFrame(), [f"planned up to step {exc.step}: {exc}"])
    else:
        full = stager.plan
        full.update(design.plan)
        design.plan = full
    caveats = getattr(module, "caveats", lambda ctx: [])(ctx)  # what would make answers alike: said before anything is sent
    design.notes[:0] = [c for c in caveats if c not in design.notes]
    if dry:
        warnings += caveats
    t2 = time.perf_counter()
    return Prepared(spec, str(spec_path), root, cache_path, ctx, design, population, prompt_report,
                    {"population_s": t1 - t0, "plan_s": t2 - t1}, stager, pending, warnings, list(overrides))


def _versions() -> dict[str, str]:
    out = {"persona_exp": persona_exp.__version__, "python": platform.python_version(), "polars": pl.__version__}
    import numpy

    out["numpy"] = numpy.__version__
    if "litellm" in sys.modules:
        from importlib.metadata import version

        out["litellm"] = version("litellm")
    return out


def _preflight(est: Estimate) -> None:
    """The run's pre-flight summary (stderr, with the progress display)."""
    cost = "unknown (no price for " + ", ".join(est.unpriced) + ")" if est.cost is None else f"${est.cost:.4f}"
    print(f"estimate: {sum(s.to_run for s in est.steps):,} calls to send, {est.tokens:,} tokens, {cost}", file=sys.stderr)


def execute(prep: Prepared, *, progress: bool = True, budget: Budget | None = None, limit: int | None = None,
            name: str | None = None, note: str | None = None, executor: Any = None) -> RunOutcome:
    """Runs the prepared plan (under ``budget`` and ``limit``, see
    execute.budget), analyzes the answers and stores the run (with the
    researcher's ``name`` and ``note``, when given); ``executor`` sends the
    plan's calls elsewhere (execute.ray_executor; ``prepare`` took it for the staged calls)."""
    spec, design = prep.spec, prep.design
    t0 = time.perf_counter()
    with CallCache(prep.cache_path) as cache:
        results, counts, est = run_plan(spec.models, cache, design.plan, prep.stager.results, progress=progress, budget=budget, limit=limit,
                                        on_estimate=_preflight if progress else None, executor=executor)
    t1 = time.perf_counter()
    analysis = KINDS[spec.experiment.kind].analyze(prep.ctx, design, results)
    sim_roles = simulated_roles({role: cfg.model for role, cfg in spec.models.items()})
    if sim_roles:
        analysis.title = label_simulated(analysis.title)
    analysis.metrics = {**analysis.metrics, "simulated": bool(sim_roles)}
    if sim_roles and isinstance(analysis.metrics.get("title"), str):
        analysis.metrics["title"] = label_simulated(analysis.metrics["title"])
    left_out = [r for r in results.values() if r.status == "not_run"]
    results = {k: r for k, r in results.items() if r.status != "not_run"}
    t2 = time.perf_counter()
    plan_key = design.plan.plan_key()
    run_id = new_run_id(plan_key)
    resolved = spec.model_dump(mode="json")
    calls = pl.DataFrame(
        [
            {"key": r.key, "step": r.step, "role": r.role, "status": r.status, "cached": r.cached, "value": None if r.value is None else str(r.value),
             "text": r.text, "model": r.model, "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens, "cost": r.cost, "error": r.error,
             "reason": reason_of(r), "lenient": r.lenient, "attempts": r.attempts, "latency_ms": r.latency_ms}
            for r in results.values()
        ],
        schema={"key": pl.String, "step": pl.String, "role": pl.String, "status": pl.String, "cached": pl.Boolean, "value": pl.String, "text": pl.String,
                "model": pl.String, "prompt_tokens": pl.Int64, "completion_tokens": pl.Int64, "cost": pl.Float64, "error": pl.String,
                "reason": pl.String, "lenient": pl.Boolean, "attempts": pl.Int64, "latency_ms": pl.Float64},
    )
    reported: dict[str, set[str]] = {}
    for r in results.values():
        if r.model:
            reported.setdefault(r.role, set()).add(r.model)
    manifest = {
        "experiment": spec.name,
        "kind": spec.experiment.kind,
        "run_id": run_id,
        "name": name,
        "note": note,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
        "spec_path": prep.spec_path,
        "overrides": prep.overrides,
        "spec": resolved,
        "spec_hash": node_key("spec", resolved),
        "plan_hash": plan_key,
        "seed": spec.seed,
        "versions": _versions(),
        "models": {role: {"model": cfg.model, "reported": sorted(reported.get(role, ()))} for role, cfg in spec.models.items()},
        "counts": counts.as_dict(),
        "executor": "local" if executor is None else executor.label,  # where the calls were sent from, staged ones included
        "timings": {**prep.timings, "execute_s": t1 - t0, "analyze_s": t2 - t1},
        "population": {"key": prep.population.key, "size": prep.population.frame.height, "report": prep.population.report},
        "prompts": {"count": prep.ctx.prompts.height, "filters": prep.prompt_report},
        "notes": design.notes + explain(counts.as_dict()),
        "simulated": bool(sim_roles),
        "simulated_roles": sim_roles,
        "estimate": _estimate_record(prep.stager.estimates + [est]),
    }
    if limit is not None:
        manifest["limit"] = {"n": limit, "calls_left_out": len(left_out),
                             "note": f"smoke run (--limit {limit}): only the first {limit} calls of each step were run; {len(left_out)} calls of "
                                     "the plan were left out, so the statistics cover a small subset."}
        manifest["notes"].append(manifest["limit"]["note"])
    if budget is not None:
        manifest["budget"] = {"max_cost_usd": budget.max_cost, "spent_usd": budget.spent, "stopped": budget.stopped > 0, "calls_not_sent": budget.stopped}
        if budget.stopped:
            manifest["budget"]["note"] = (f"stopped for budget: ${budget.spent:.4f} spent of --max-cost {budget.max_cost:g}; {budget.stopped} calls "
                                          "were not sent. Every finished call is cached: rerun with a higher --max-cost to continue.")
            manifest["notes"].append(manifest["budget"]["note"])
    tables = {"personas": prep.population.frame, "prompts": prep.ctx.prompts, "calls": calls, "transcripts": transcripts(design.plan, results),
              "design": design.items, **analysis.tables}
    run_dir = write_run(prep.root, spec.name, run_id, manifest, analysis.metrics, tables, exports=analysis.exports)
    manifest["run_id"] = run_dir.name
    failures = calls.filter(pl.col("status") != "ok").select("step", "role", "status", "reason", "error").to_dicts()
    return RunOutcome(run_dir, run_dir.name, counts, analysis, manifest, failures)


def _estimate_record(parts: list[Estimate]) -> dict[str, Any]:
    """The estimates made before sending (each stage's and the final step's), for the manifest."""
    merged = Estimate([s for e in parts for s in e.steps if s.to_run])
    steps = merged.steps
    return {"calls_to_run": sum(s.to_run for s in steps), "tokens": merged.tokens, "cost_usd": merged.cost,
            "steps": [{"step": s.step, "to_run": s.to_run, "tokens": s.tokens, "cost_usd": s.cost, "lengths": s.lengths} for s in steps]}


def transcripts(plan: Any, results: Mapping[str, Any]) -> pl.DataFrame:
    """What each call of the run was sent: its messages as rendered, slots
    filled with the answers they read (JSON, one row per call key, so a
    message shared by many items is stored once), the calls it read, and its
    re-asks, and which of the role's deployments answered (its name or
    api_base; null for a role without deployments). With the
    calls table (answer, parsed value, status, tokens, requests sent and their
    latency, model as reported) every judgment can be audited; secrets are
    never part of a message."""
    rows = []
    for key, r in results.items():
        c = plan.calls.get(key)
        messages = None if c is None else c.render({k: results[k].output() if k in results else "" for k in c.inputs.values()})
        rows.append({"key": key, "messages": None if messages is None else json.dumps(messages, ensure_ascii=False), "reasks": r.reasks,
                     "inputs": [] if c is None else list(c.inputs.values()), "deployment": getattr(r, "deployment", None)})
    return pl.DataFrame(rows, schema={"key": pl.String, "messages": pl.String, "reasks": pl.Int64, "inputs": pl.List(pl.String),
                                      "deployment": pl.String})


def run(spec_path: str | Path, overrides: Sequence[str] = (), *, progress: bool = True, max_cost: float | None = None,
        limit: int | None = None, name: str | None = None, note: str | None = None, executor: str | None = None) -> RunOutcome:
    """Runs an experiment spec end to end and stores the run; ``max_cost`` (USD)
    and ``limit`` (calls per step) are the guards of execute.budget; ``name``
    (see store.check_run_name) and ``note`` label the stored run; ``executor``
    is ``local`` (default), ``ray`` or ``ray=ADDRESS`` (execute.ray_executor)."""
    check_run_name(name)
    if limit is not None and limit < 1:
        raise InvalidArgumentError(f"--limit {limit}: give the number of calls per step to run, 1 or more.")
    if max_cost is not None and not max_cost >= 0:
        raise InvalidArgumentError(f"--max-cost {max_cost}: give a budget in US dollars, 0 or more.")
    budget = Budget(max_cost) if max_cost is not None else None
    kind, address = parse_executor(executor)
    remote = RayExecutor(address) if kind == "ray" else None  # before anything else: without Ray installed, say so at once
    try:
        if remote is not None:
            remote.connect()  # and a cluster that cannot be reached or started, before the population and plan are built
        prep = prepare(spec_path, overrides, progress=progress, budget=budget, limit=limit, executor=remote)
        return execute(prep, progress=progress, budget=budget, limit=limit, name=name, note=note, executor=remote)
    finally:
        if remote is not None:
            remote.close()

