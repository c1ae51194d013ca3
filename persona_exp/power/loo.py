"""The bulk path for leave-one-out designs.

A pool is built once through the real pipeline on the simulator: the spec at
``pool_factor`` times the largest design of the grid (designs are
prefix-stable, so a larger one holds a smaller one's kind of items), with the
generator's answers from the per-call simulator. A replicate then draws its
personas (per attribute) and questions from the pool WITHOUT replacement and
decides every judgment anew with fresh logistic noise (``bulk.verdicts``).
A pool is itself a random sample, so n units drawn from it without
replacement are, over pools, exactly a fresh sample of n (drawing with
replacement would add the pool's own deviation to every replicate and
inflate both the false-positive rate and the spread). What a single pool
costs is Monte-Carlo precision: replicates share units, so the larger the
pool factor the closer they are to independent. The replicate's verdict
table then goes through the experiment's own ``analyze``, as ``run`` would.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import polars as pl

from persona_exp.execute import sim as S
from persona_exp.execute.runner import CallResult, run_in_memory
from persona_exp.experiments import KINDS
from persona_exp.experiments.base import Analysis, Context, Design
from persona_exp.plan import Plan
from persona_exp.power.bulk import Judgments, judge_frame, logistic_noise, prepare_judgments, verdicts

_A = CallResult("", "judge", "judge", "ok", False, text="A", value="A")
_B = CallResult("", "judge", "judge", "ok", False, text="B", value="B")


@dataclass
class LooPool:
    """The pool design's items and their judgments, ready to resample."""

    items: pl.DataFrame  # the pool design's items, one per (attribute, persona, question)
    without: Judgments  # per item, the judgment of the version without a_i (answer A against B as shown)
    with_: Judgments  # per item, the judgment of the version with a_i
    ctx: Context
    judge: dict[str, Any]  # the judge role's sim settings
    temperature: float
    grid: dict[str, np.ndarray]  # attribute -> (personas x questions) matrix of item rows
    questions: list[str]

    def portable(self) -> "LooPool":
        """The pool without what cannot go to another process (the run's
        stager, the population): what the analysis reads is kept."""
        ctx = Context(self.ctx.name, self.ctx.seed, self.ctx.params, self.ctx.models, pl.DataFrame(), pl.DataFrame(), analysis=self.ctx.analysis)
        return dataclasses.replace(self, ctx=ctx)

    def simulator(self, effects: dict[str, float], draw: int = 0) -> S.Simulator:
        settings = {**self.judge, "effects": {**(self.judge.get("effects") or {}), **effects}, "draw": draw}
        return S.Simulator(settings, 0, self.temperature)


def generator_results(plan: Plan, models: Any, judge_role: str, known: Any = None) -> dict[str, CallResult]:
    """Answers every call of ``plan`` but the judge's (the judge's verdicts
    are what the bulk path draws) on the per-call simulator. The calls go
    straight to ``sim.complete`` and their parser, in the plan's order, which
    is what the runner does for a simulated role without its cache, leases
    and async machinery; anything else (a real role, a parse failure, an
    empty answer) goes through the runner in memory instead."""
    from persona_exp.execute.parsers import ParseFailure, parse

    known = dict(known or {})
    calls = [c for c in plan.calls.values() if c.role != judge_role]
    if not all(models[c.role].is_sim for c in calls):
        return _through_runner(calls, models, known)
    sampling = {role: models[role].sampling() for role in {c.role for c in calls}}
    out: dict[str, CallResult] = {}
    for c in calls:
        if c.key in known:
            out[c.key] = known[c.key]
            continue
        outputs = {k: out[k].output() for k in c.inputs.values()}
        slots = {name: outputs[k] for name, k in c.inputs.items()}
        text, usage = S.complete(models[c.role].model, c.render(outputs), sampling[c.role], replicate=c.replicate, slots=slots)
        try:
            value = parse(c.parser, text)
        except ParseFailure:
            return _through_runner(calls, models, known)
        if not text.strip():
            return _through_runner(calls, models, known)
        out[c.key] = CallResult(c.key, c.step, c.role, "ok", False, text=text, value=value, model=models[c.role].model,
                                prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"])
    return out


def _through_runner(calls: list[Any], models: Any, known: dict[str, CallResult]) -> dict[str, CallResult]:
    sub = Plan()
    sub.include(calls)
    results, _ = run_in_memory(models, sub, known=known)
    return results


def build_pool(prep: Any, judge_role: str = "judge") -> LooPool:
    """The pool of a prepared (in-memory, simulated) leave-one-out spec."""
    design, spec = prep.design, prep.spec
    results = generator_results(design.plan, spec.models, judge_role, prep.stager.results)
    calls = design.plan.calls
    frames: dict[str, dict[str, str]] = {}

    def side(keys: Sequence[str]) -> Judgments:
        a, b, personas = [], [], []
        for key in keys:
            call = calls[key]
            a.append(results[call.inputs["response_a"]].output().strip())
            b.append(results[call.inputs["response_b"]].output().strip())
            frame = judge_frame(call)
            if frame not in frames:
                frames[frame] = S.persona_attributes(frame)
            personas.append(frames[frame])
        return prepare_judgments(a, b, personas, int(judge["seed"]))

    cfg = spec.models[judge_role]
    judge = cfg.sim.model_dump() if cfg.sim is not None else {}
    judge.setdefault("seed", 0)
    items = design.items
    questions, grid = _grid(items)
    return LooPool(items, side(items["judge_without_key"].to_list()), side(items["judge_with_key"].to_list()), prep.ctx, judge,
                   float(cfg.temperature or 0.0), grid, questions)


def _grid(items: pl.DataFrame) -> tuple[list[str], dict[str, np.ndarray]]:
    """The questions in order, and per attribute the (personas x questions) matrix of item rows."""
    items = items.with_row_index("_row")
    questions = list(dict.fromkeys(items["question_id"].to_list()))
    qpos = {q: i for i, q in enumerate(questions)}
    grid = {}
    for (attr,), g in items.group_by(["attribute"], maintain_order=True):
        personas = list(dict.fromkeys(g["persona_id"].to_list()))
        ppos = {p: i for i, p in enumerate(personas)}
        m = np.full((len(personas), len(questions)), -1, dtype=np.int64)
        for row, pid, qid in zip(g["_row"], g["persona_id"], g["question_id"]):
            m[ppos[pid], qpos[qid]] = row
        grid[attr] = m
    return questions, grid


def _pool_part(args: tuple[str, list[str], list[str]]) -> tuple:
    """A pool of some of the attributes (in a worker process): a leave-one-out
    design's items for one attribute do not depend on the other attributes."""
    from persona_exp.pipeline import prepare

    spec_path, overrides, attributes = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = prepare(spec_path, [*overrides, f"experiment.attributes=[{','.join(attributes)}]"], dry=True, progress=False, simulate=True)
        pool = build_pool(prep)
    return pool.items, pool.without, pool.with_


def _concat(parts: list[Judgments]) -> Judgments:
    names: list[str] = list(dict.fromkeys(a for p in parts for a in p.attributes))
    pos = {a: i for i, a in enumerate(names)}
    offsets = np.cumsum([0] + [p.n for p in parts[:-1]])
    return Judgments(np.concatenate([p.quality_part for p in parts]), np.concatenate([p.rows + o for p, o in zip(parts, offsets)]),
                     np.concatenate([np.array([pos[a] for a in p.attributes], dtype=np.int64)[p.attrs] if len(p.attrs) else p.attrs for p in parts]),
                     np.concatenate([p.parts for p in parts]), names)


def build_pool_parallel(spec_path: str, overrides: list[str], jobs: int) -> LooPool:
    """The same pool as ``build_pool`` (up to the order of its attributes),
    built by ``jobs`` processes, each planning and answering a share of the
    attributes. The population is built first, here, so that the workers
    read it instead of all writing it."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from persona_exp.pipeline import load_spec, prepare
    from persona_exp.population import ATTRIBUTES, attribute

    spec = load_spec(spec_path, overrides)
    names = [a.name for a in ATTRIBUTES] if spec.experiment.attributes == "all" else [attribute(n).name for n in spec.experiment.attributes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = prepare(spec_path, [*overrides, f"experiment.attributes=[{names[0]}]"], dry=True, progress=False, simulate=True)
    groups = [names[i::jobs] for i in range(jobs) if names[i::jobs]]
    with ProcessPoolExecutor(max_workers=len(groups), mp_context=mp.get_context("spawn")) as ex:
        parts = list(ex.map(_pool_part, [(spec_path, overrides, g) for g in groups]))
    items = pl.concat([p[0] for p in parts], how="vertical_relaxed")
    questions, grid = _grid(items)
    cfg = spec.models["judge"]
    judge = cfg.sim.model_dump() if cfg.sim is not None else {}
    judge.setdefault("seed", 0)
    ctx = dataclasses.replace(first.ctx, params=spec.experiment)
    return LooPool(items, _concat([p[1] for p in parts]), _concat([p[2] for p in parts]), ctx, judge, float(cfg.temperature or 0.0), grid, questions)


def replicate(pool: LooPool, n_personas: int, n_questions: int, sim: S.Simulator, rng: np.random.Generator,
              signals: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[Design, dict[str, CallResult]]:
    """One replicate of the design ``n_personas`` x ``n_questions``: units
    drawn without replacement from the pool, every verdict drawn anew. ``signals`` are the pool's utility differences for
    ``sim`` when already computed."""
    if signals is None:
        signals = (pool.without.signal(sim), pool.with_.signal(sim))
    n_questions = min(n_questions, len(pool.questions))
    qs = rng.choice(len(pool.questions), n_questions, replace=False)
    rows = []
    for attr, m in pool.grid.items():
        n = min(n_personas, m.shape[0])  # the population has fewer: the real design uses them all
        ps = rng.choice(m.shape[0], n, replace=False)
        block = m[np.ix_(ps, qs)]
        if (block < 0).any():
            continue  # an attribute the pool lacks some question for (not in a leave-one-out pool)
        rows.append(block.ravel())
    r = np.concatenate(rows)
    noise_without = logistic_noise(sim, rng, len(r))
    noise_with = logistic_noise(sim, rng, len(r))
    a_without = signals[0][r] + noise_without > 0
    a_with = signals[1][r] + noise_with > 0
    keys_without = [f"w{i}" for i in range(len(r))]
    keys_with = [f"v{i}" for i in range(len(r))]
    items = pool.items[r].with_columns(pl.Series("judge_without_key", keys_without), pl.Series("judge_with_key", keys_with))
    results = dict(zip(keys_without, [_A if x else _B for x in a_without.tolist()]))
    results.update(zip(keys_with, [_A if x else _B for x in a_with.tolist()]))
    return Design(Plan(), items), results


def analyze(pool: LooPool, design: Design, results: dict[str, CallResult], seed: int) -> Analysis:
    """The leave-one-out analysis `run` uses, with the replicate's seed for its bootstrap."""
    ctx = dataclasses.replace(pool.ctx, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return KINDS["loo"].analyze(ctx, design, results)


__all__ = ["LooPool", "analyze", "build_pool", "generator_results", "replicate", "verdicts"]
