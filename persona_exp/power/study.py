"""A power study: for each design of a grid, R simulated replicates of the
spec's experiment with planted effects, each analysed exactly as `run` does.

Two ways to get a replicate's answers (both on the offline simulator, so every
figure is SIMULATED):

* ``brute``: the whole pipeline in memory (population, plan, every call on
  the per-call simulator, the experiment's analysis) with a new spec seed and
  a new judge draw per replicate, so personas, questions, contexts and judge
  noise are all drawn anew. Works for every experiment kind; slow.
* ``bulk`` (leave-one-out): the generator's answers of a pool design once,
  then per replicate personas and questions drawn from the pool without
  replacement and every verdict drawn in numpy (see ``power.loo``), analysed
  by the same ``analyze``.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from persona_exp.errors import InvalidArgumentError, PlanError
from persona_exp.power.design import Effect, design_label, design_overrides, effect_overrides, judge_roles, sim_overrides

BULK_PATHS = ("experiment.n_personas", "experiment.n_questions")
CALIBRATION_MULTIPLIERS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0)


@dataclass
class Outcome:
    """What one replicate's analysis said, per headline metric."""

    metric: str
    estimate: float
    null: float | None
    low: float
    high: float
    survives: bool


def outcomes(analysis: Any) -> list[Outcome]:
    """The headline tests of an Analysis (the list every experiment puts in
    ``metrics["headline"]``: estimate, interval, null, survives)."""
    out = []
    for m in analysis.metrics.get("headline") or []:
        out.append(Outcome(str(m["metric"]), _f(m.get("estimate")), None if m.get("null") is None else _f(m["null"]), _f(m.get("low")),
                           _f(m.get("high")), bool(m.get("survives"))))
    return out


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def mc_se(p: float, n: int) -> float:
    """Monte-Carlo standard error of a share estimated from ``n`` replicates."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")


# --- the brute-force path -------------------------------------------------------------------------------------------

def brute_replicate(spec_path: str, overrides: Sequence[str], r: int, base_seed: int, judges: Sequence[str]) -> Any:
    """Replicate ``r`` through the whole pipeline in memory: the spec seed and
    every judge's ``sim.draw`` moved by r, so everything is drawn anew."""
    from persona_exp.execute.runner import run_in_memory
    from persona_exp.experiments import KINDS
    from persona_exp.pipeline import prepare

    ov = [*overrides, f"seed={base_seed + r + 1}", *(f"models.{role}.sim.draw={r + 1}" for role in judges)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = prepare(spec_path, ov, dry=True, progress=False, simulate=True)
        results, _ = run_in_memory(prep.spec.models, prep.design.plan, known=prep.stager.results)
        return KINDS[prep.spec.experiment.kind].analyze(prep.ctx, prep.design, results)


# --- parallel replicates ----------------------------------------------------------------------------------------------

_STATE: Any = None  # a worker's shared input (the bulk pool), set once per process by _init


def _init(state: Any) -> None:
    global _STATE
    _STATE = state
    warnings.simplefilter("ignore")


def parallel_map(task: Callable[[Any], Any], args: list[Any], jobs: int, state: Any = None) -> list[Any]:
    """``task`` (a module-level function, reading the shared ``state`` through
    ``_STATE``) over ``args`` in ``jobs`` processes; results in order. Workers
    are spawned, not forked: a fork of a process whose polars threads hold a
    lock can hang."""
    global _STATE
    if jobs <= 1 or len(args) < 2:
        previous, _STATE = _STATE, state
        try:
            return [task(a) for a in args]
        finally:
            _STATE = previous
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_init, initargs=(state,)) as ex:
        return list(ex.map(task, args, chunksize=max(1, len(args) // (4 * jobs))))


def _brute_task(r: int) -> list[Outcome]:
    spec_path, overrides, seed, judges = _STATE
    return outcomes(brute_replicate(spec_path, overrides, r, seed, judges))


def _bulk_task(arg: tuple[int, int]) -> list[Outcome]:
    from persona_exp.power import loo

    pool, sizes, effects, signals, seed = _STATE
    i, r = arg
    rng = np.random.default_rng([seed, r])  # the same draws for every design: smoother curves
    design, results = loo.replicate(pool, sizes[i][0], sizes[i][1], pool.simulator(effects), rng, signals)
    return outcomes(loo.analyze(pool, design, results, seed + r + 1))


# --- the study --------------------------------------------------------------------------------------------------------

@dataclass
class Study:
    spec_path: str
    overrides: list[str] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    grid: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    reps: int = 200
    target: float = 0.8
    seed: int = 0
    method: str = "auto"  # auto | bulk | brute
    jobs: int = 0  # 0: min(2, cores)
    pool_factor: float = 2.0
    default_effect: float | None = None  # the judges' effect of unplanted attributes (None: the spec's)
    metric: str | None = None  # non-LOO kinds: the headline metric whose detection is the power and that metric-scale effects refer to
    calibration_draws: int = 6  # brute-force kinds: replicates averaged per point of a metric-scale calibration
    null: bool = True  # brute-force kinds: also run each design's replicates in a world with nothing planted (the false-positive arm)
    progress: Callable[[str], None] | None = None


def run_study(study: Study) -> dict[str, Any]:
    """Runs the study and returns its result (JSON-ready)."""
    from persona_exp.pipeline import load_spec

    if study.reps < 2:
        raise InvalidArgumentError(f"--reps {study.reps}: give 2 or more replicates (200 gives a Monte-Carlo error of at most 0.035).")
    if not 0 < study.target < 1:
        raise InvalidArgumentError(f"--target {study.target}: give a power between 0 and 1 (e.g. 0.8).")
    if study.pool_factor < 1:
        raise InvalidArgumentError(f"--pool-factor {study.pool_factor}: give 1 or more (the pool is this many times the largest design).")
    real = load_spec(study.spec_path, study.overrides)
    kind = real.experiment.kind
    sim_ov = sim_overrides(real)
    base = load_spec(study.spec_path, [*study.overrides, *sim_ov])
    method = study.method
    if method == "auto":
        method = "bulk" if kind == "loo" and all(set(d) <= set(BULK_PATHS) for d in study.grid) and _refined(base) else "brute"
    if method == "bulk":
        if kind != "loo" or not _refined(base):
            raise InvalidArgumentError(f"--method bulk covers leave-one-out specs with the default answers (refined); this spec is {kind}: "
                                       "use --method brute (the full pipeline per replicate).")
        bad = sorted({k for d in study.grid for k in d} - set(BULK_PATHS))
        if bad:
            raise InvalidArgumentError(f"--grid {bad[0]}: the bulk path varies {' and '.join(BULK_PATHS)} only; use --method brute to vary {bad[0]}.")
    for e in study.effects:
        if e.metric is not None and kind == "loo" and method != "bulk":
            raise InvalidArgumentError(f"--effect {e.label}: leave-one-out effects on the metric's scale are calibrated on the bulk path; drop "
                                       "--method brute or give the simulator's scale.")
    if study.calibration_draws < 2:
        raise InvalidArgumentError(f"--calibration-draws {study.calibration_draws}: give 2 or more (each point of the calibration is their mean).")
    jobs = study.jobs or min(2, os.cpu_count() or 1)
    say = study.progress or (lambda s: None)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="persona-exp-power-") as tmp:
        common = [*study.overrides, *sim_ov, f"output.dir={tmp}", f"output.cache={tmp}/cache.sqlite",
                  *([] if study.default_effect is None else [f"models.{role}.sim.default_effect={study.default_effect!r}" for role in judge_roles(base)])]
        if method == "bulk":
            designs, calibration, effects = _bulk(study, base, common, jobs, say)
        else:
            effects = {e.attribute: float(e.size) for e in study.effects if e.metric is None}  # type: ignore[arg-type]
            calibration = []
            for e in study.effects:
                if e.metric is not None:
                    calibration.append(calibrate_brute(study, base, common, e, effects, jobs, say))
                    effects[e.attribute] = calibration[-1]["sim_size"]
            designs = _brute(study, base, common, effects, jobs, say)
            if study.null and kind != "loo":  # leave-one-out counts false positives on the unplanted attributes of the same replicates
                _null_arm(study, base, common, effects, designs, jobs, say)
    on_metric = [c for c in calibration if c["kind"] != "loo"]
    power_metric = study.metric or (on_metric[0]["metric"] if len({c["metric"] for c in on_metric}) == 1 else None)
    for d in designs:
        d.update(_cost(study.spec_path, study.overrides, d["design"], real))
        if on_metric:  # what the calibrated effects gave in this design's replicates, to set beside the asked value
            d["metric_values"] = {c["effect"]: _observed(d["replicates"], c, base) for c in on_metric}
        _summarise(d, kind, effects, power_metric, study.target)
    order = sorted(designs, key=lambda d: (d["cost_usd"] if d["cost_usd"] is not None else math.inf, d["calls"] or 0, d["label"]))
    recommended = next((d["label"] for d in order if d["reaches_target"]), None)
    roles = {role: cfg.model for role, cfg in real.models.items()}
    return {
        "simulated": True,
        "title": f"SIMULATED power analysis of {real.name} ({kind}) on the offline simulator",
        "spec": study.spec_path, "experiment": real.name, "kind": kind, "method": method, "reps": study.reps, "target": study.target,
        "seed": study.seed, "jobs": jobs, "pool_factor": study.pool_factor if method == "bulk" else None,
        "multiplicity": base.analysis.multiplicity if base.analysis else "holm", "level": getattr(base.experiment, "level", 0.95),
        "effects": [{"label": e.label, "attribute": e.attribute, "sim_size": effects.get(e.attribute), "metric": e.metric,
                     "on": next((c["metric"] for c in calibration if c["effect"] == e.label), None)} for e in study.effects],
        "default_effect": _judge_default(base) if study.default_effect is None else study.default_effect,
        "calibration": calibration, "designs": designs, "recommended": recommended,
        "null_arm": bool(study.null and kind != "loo" and method == "brute"),
        "models": roles, "seconds": time.perf_counter() - t0,
        "notes": _notes(method, real, sim_ov) + (["--pool-factor 1: the largest design uses every unit of the pool in each replicate, so its "
                                                  "power is given those personas and questions (only the judge's noise is drawn anew)"]
                                                 if method == "bulk" and study.pool_factor == 1 else []),
    }


def _refined(spec: Any) -> bool:
    return getattr(spec.experiment, "answers", "refined") == "refined"


def _judge_default(spec: Any) -> float:
    cfg = spec.models.get("judge")
    return float(cfg.sim.default_effect) if cfg is not None and cfg.sim is not None else 1.0


def _notes(method: str, real: Any, sim_ov: list[str]) -> list[str]:
    out = ["Every figure comes from the offline simulator with the planted effects: it says what the design can detect in a simulated world, "
           "nothing about any real model."]
    if method == "bulk":
        out.append("bulk path: the generator's answers of one pool design (pool factor x the largest design), personas and questions drawn "
                   "from it without replacement per replicate, every judge verdict drawn anew, each replicate analysed by the experiment's own "
                   "analysis. Replicates share the pool's units, so the real Monte-Carlo error is somewhat above the one shown; a larger "
                   "--pool-factor brings it closer.")
    else:
        out.append("brute-force path: the full pipeline in memory per replicate (new spec seed and judge draw each time), analysed as run does.")
    if sim_ov:
        out.append("the spec's real models were replaced by the simulator for the replicates (" + ", ".join(sim_ov) + "); the cost is the real models'.")
    return out


def _brute(study: Study, base: Any, common: list[str], effects: dict[str, float], jobs: int, say: Callable[[str], None]) -> list[dict]:
    judges = judge_roles(base)
    designs = []
    for i, design in enumerate(study.grid):
        ov = [*common, *design_overrides(design), *effect_overrides(base, effects)]
        t = time.perf_counter()
        analyses = parallel_map(_brute_task, list(range(study.reps)), jobs, (study.spec_path, ov, study.seed, judges))
        say(f"design {i + 1}/{len(study.grid)} ({design_label(design)}): {study.reps} replicates in {time.perf_counter() - t:.1f}s")
        designs.append({"design": design, "label": design_label(design), "replicates": analyses})
    return designs


def null_overrides(spec: Any) -> list[str]:
    """Overrides of a world where nothing is planted at all: every judge's
    attribute effects, default effect and shared quality term at 0, so its
    verdicts are its noise and every headline test's null holds (with the
    quality term or a default effect on, a revision or a condition can be truly
    better, and a "false positive" would be a true difference)."""
    out = []
    for role in judge_roles(spec):
        out += [f"models.{role}.sim.effects={{}}", f"models.{role}.sim.default_effect=0", f"models.{role}.sim.quality=0"]
    return out


def _null_arm(study: Study, base: Any, common: list[str], effects: dict[str, float], designs: list[dict], jobs: int,
              say: Callable[[str], None]) -> None:
    """The false-positive arm of the brute-force kinds: every design's
    replicates again, same replicate numbers (so the same spec seeds and
    judge draws), in a world where nothing is planted (``null_overrides``)."""
    judges = judge_roles(base)
    for i, d in enumerate(designs):
        ov = [*common, *design_overrides(d["design"]), *null_overrides(base)]
        t = time.perf_counter()
        d["null_replicates"] = parallel_map(_brute_task, list(range(study.reps)), jobs, (study.spec_path, ov, study.seed, judges))
        say(f"null arm of design {i + 1}/{len(designs)} ({d['label']}): {study.reps} replicates in {time.perf_counter() - t:.1f}s")


def _bulk(study: Study, base: Any, common: list[str], jobs: int, say: Callable[[str], None]) -> tuple[list[dict], list[dict], dict[str, float]]:
    from persona_exp.pipeline import prepare
    from persona_exp.power import loo

    p = base.experiment
    sizes = [(d.get(BULK_PATHS[0], p.n_personas), d.get(BULK_PATHS[1], p.n_questions)) for d in study.grid]
    pool_p = math.ceil(study.pool_factor * max(s[0] for s in sizes))
    pool_q = math.ceil(study.pool_factor * max(s[1] for s in sizes))
    t = time.perf_counter()
    def make(n_q: int) -> Any:
        ov = [*common, f"experiment.n_personas={pool_p}", f"experiment.n_questions={n_q}"]
        if jobs > 1:
            return loo.build_pool_parallel(study.spec_path, ov, jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return loo.build_pool(prepare(study.spec_path, ov, dry=True, progress=False, simulate=True))

    try:
        pool = make(pool_q)
    except PlanError:  # fewer prompts than the pool asks: every prompt is in the pool
        pool_q = max(s[1] for s in sizes)
        pool = make(pool_q)
    if study.pool_factor == 1 and len(study.grid) == 1:
        say("the pool is the design itself (--pool-factor 1): every replicate has the same personas and questions, only the judge's noise is "
            "drawn anew, so this is the power given these units, not over fresh samples")
    say(f"pool of {pool.items.height:,} items ({pool_p} personas x {pool_q} questions per attribute) in {time.perf_counter() - t:.1f}s")
    calibration = []
    effects: dict[str, float] = {}
    for e in study.effects:
        if e.metric is None:
            effects[e.attribute] = float(e.size)  # type: ignore[arg-type]
    for e in study.effects:
        if e.metric is not None:
            curve = calibrate(pool, e.attribute, effects, np.random.default_rng([study.seed, 7]))
            effects[e.attribute] = size_for(curve, e.metric, e.label)
            calibration.append({"effect": e.label, "attribute": e.attribute, "kind": "loo", "metric": f"kappa[{e.attribute}]", "curve": curve,
                                "value_is": "kappa gap: its kappa minus the mean of the others', over the pool", "sim_size": effects[e.attribute]})
    sim = pool.simulator(effects)
    signals = (pool.without.signal(sim), pool.with_.signal(sim))

    t = time.perf_counter()
    args = [(i, r) for i in range(len(study.grid)) for r in range(study.reps)]
    flat = parallel_map(_bulk_task, args, jobs, (pool.portable(), sizes, effects, signals, study.seed))
    say(f"{len(args)} replicates in {time.perf_counter() - t:.1f}s ({jobs} processes)")
    designs = []
    for i, design in enumerate(study.grid):
        full = {BULK_PATHS[0]: sizes[i][0], BULK_PATHS[1]: sizes[i][1], **design}
        designs.append({"design": full, "label": design_label(design), "replicates": flat[i * study.reps:(i + 1) * study.reps]})
    return designs, calibration, effects


def loo_kappa_gap(pool: Any, attribute: str, sim: Any, rng: np.random.Generator) -> float:
    """Kappa of ``attribute`` minus the mean kappa of the other attributes, over
    every item of the pool, for one draw of the judge's noise: the quantity the
    leave-one-out test compares with 0."""
    from persona_exp import stats

    items = pool.items
    refined_a = items["refined_is_a"].to_numpy()
    w = (pool.without.signal(sim) + _noise(sim, rng, pool.without.n) > 0) == refined_a
    v = (pool.with_.signal(sim) + _noise(sim, rng, pool.with_.n) > 0) == refined_a
    attrs = items["attribute"].to_numpy()
    kappas = {}
    for a in np.unique(attrs):
        m = attrs == a
        kappas[a] = stats.cohen_kappa(w[m].astype(np.int8), v[m].astype(np.int8), k=2)
    others = [k for a, k in kappas.items() if a != attribute and np.isfinite(k)]
    return float(kappas[attribute] - np.mean(others))


def _noise(sim: Any, rng: np.random.Generator, n: int) -> np.ndarray:
    from persona_exp.power.bulk import logistic_noise

    return logistic_noise(sim, rng, n)


def calibrate(pool: Any, attribute: str, planted: dict[str, float], rng: np.random.Generator, draws: int = 4) -> list[dict[str, float]]:
    """The mapping from the simulator's effect for ``attribute`` to its kappa
    gap (kappa minus the others' mean), by simulation over the whole pool:
    a grid of effects, each averaged over ``draws`` noise draws."""
    if attribute not in set(pool.items["attribute"].unique().to_list()):
        raise InvalidArgumentError(f"--effect {attribute}: no persona of the pool's population has this attribute, so its kappa cannot move.")
    default = pool.simulator({}).default_effect or 1.0
    curve = []
    for mult in CALIBRATION_MULTIPLIERS:
        size = min(mult * default, 100.0)
        sim = pool.simulator({**planted, attribute: size})
        gap = float(np.mean([loo_kappa_gap(pool, attribute, sim, rng) for _ in range(draws)]))
        curve.append({"sim_size": size, "kappa_gap": gap})
    return curve


def size_for(curve: list[dict[str, float]], gap: float, label: str) -> float:
    """The simulator effect whose calibrated kappa gap is ``gap`` (linear
    interpolation on the curve made monotone: a larger effect, a lower kappa)."""
    sizes = np.array([c["sim_size"] for c in curve])
    gaps = np.minimum.accumulate(np.array([c["kappa_gap"] for c in curve]))
    if not gaps[-1] <= gap <= gaps[0]:
        raise InvalidArgumentError(f"--effect {label}: the simulator reaches kappa gaps from {gaps[0]:+.3f} to {gaps[-1]:+.3f} for this attribute "
                                   "(see the calibration); ask for a gap in that range.")
    # np.interp needs increasing x: walk the curve from the largest effect down.
    return float(np.interp(gap, gaps[::-1], sizes[::-1]))


# --- metric-scale effects of the brute-force kinds ---------------------------------------------------------------------

BRUTE_CALIBRATION_MULTIPLIERS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# A small design per kind: a metric's expected value hardly depends on the design's size, its cost does.
SMALL_DESIGN = {"conditioning": {"experiment.n_personas": 6, "experiment.n_questions": 4},
                "agreement": {"experiment.n_personas": 6, "experiment.n_questions": 4},
                "dpf": {"experiment.n_train": 4, "experiment.n_seen_test": 2, "experiment.n_heldout": 2},
                "wikipersona": {"experiment.n_personal": 3, "experiment.n_divergent": 3}}
DEFAULT_METRIC = {"dpf": "prefers_revision[all]", "wikipersona": "win_rate[persona]"}
CALIBRATION_REPLICATES = 100_000  # calibration replicates are numbered from here: draws apart from the study's


def small_design(spec: Any) -> dict[str, int]:
    """The kind's small design, never larger than the spec's own."""
    out = {}
    for path, size in SMALL_DESIGN.get(spec.experiment.kind, {}).items():
        own = getattr(spec.experiment, path.rsplit(".", 1)[-1], None)
        out[path] = min(size, own) if isinstance(own, int) else size
    return out


def effect_metric(spec: Any, asked: str | None, attribute: str = "") -> str:
    """The headline metric a metric-scale effect refers to: ``--metric``, else
    the kind's main one (DPF: the overall rate; WikiPersonas: the win rate of
    the condition named after the planted attribute, e.g. ``name`` (the one
    attribute its judge is shown), else of ``persona``; conditioning: the
    first mode after the base mode under the first critic; agreement: the
    first judge pair's kappa)."""
    if asked:
        return asked
    x = spec.experiment
    if x.kind == "wikipersona" and attribute in x.conditions:
        return f"win_rate[{attribute}]"
    if x.kind in DEFAULT_METRIC:
        return DEFAULT_METRIC[x.kind]
    if x.kind == "conditioning":
        others = [m for m in x.modes if m != x.base_mode]
        return f"accuracy[{(others or x.modes)[0]}/{x.critics[0]}]"
    judges = list(x.judges)
    return f"kappa[{judges[0]}~{judges[1]}]"


def metric_value(outs: list[Outcome], name: str, spec: Any) -> float:
    """The metric-scale value of one replicate: the headline estimate minus
    its null (0.5 for a rate, 0 for a kappa); for conditioning, a mode's
    accuracy minus the base mode's under the same critic (what its test compares)."""
    by = {o.metric: o for o in outs}
    o = by.get(name)
    if o is None:
        return float("nan")
    if spec.experiment.kind == "conditioning":
        critic = name[name.index("/") + 1:-1]
        ref = by.get(f"accuracy[{spec.experiment.base_mode}/{critic}]")
        return o.estimate - ref.estimate if ref is not None else float("nan")
    return o.estimate - o.null if o.null is not None else float("nan")


def _value_is(name: str, spec: Any) -> str:
    if spec.experiment.kind == "conditioning":
        return f"{name} minus the base mode {spec.experiment.base_mode}'s accuracy under the same critic"
    return f"{name} minus its null ({'0' if name.startswith('kappa') else '0.5'})"


def _calib_task(arg: tuple[list[str], int]) -> list[Outcome]:
    spec_path, seed, judges = _STATE
    overrides, r = arg
    return outcomes(brute_replicate(spec_path, overrides, r, seed, judges))


def calibrate_brute(study: Study, base: Any, common: list[str], effect: Effect, planted: dict[str, float], jobs: int,
                    say: Callable[[str], None]) -> dict[str, Any]:
    """The mapping from the simulator's effect for the attribute to the
    headline metric's value, by simulation: the full pipeline on the kind's
    small design, ``calibration_draws`` replicates (new population sample,
    questions and judge draw) per simulator effect on a grid, averaged; then
    the effect whose value is the asked one, by monotone interpolation."""
    name = effect_metric(base, study.metric, effect.attribute)
    design = small_design(base)
    default = study.default_effect or _judge_default(base) or 1.0
    sizes = sorted({min(m * default, 100.0) for m in BRUTE_CALIBRATION_MULTIPLIERS})
    judges = judge_roles(base)
    args = [([*common, *design_overrides(design), *effect_overrides(base, {**planted, effect.attribute: size})], CALIBRATION_REPLICATES + r)
            for size in sizes for r in range(study.calibration_draws)]
    t = time.perf_counter()
    flat = parallel_map(_calib_task, args, jobs, (study.spec_path, study.seed, judges))
    names = list(dict.fromkeys(o.metric for outs in flat for o in outs))
    if name not in names:
        from persona_exp.errors import did_you_mean

        raise InvalidArgumentError(f"--metric {name!r}: the effect {effect.label} needs a headline metric of this experiment and this is none{did_you_mean(name, names)}; "
                                   f"its metrics are {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}. Pick one with --metric.")
    if base.experiment.kind == "conditioning" and name.startswith(f"accuracy[{base.experiment.base_mode}/"):
        raise InvalidArgumentError(f"--metric {name!r}: this is the base mode, the one the others are compared with; pick another mode's accuracy.")
    curve = []
    k = study.calibration_draws
    for i, size in enumerate(sizes):
        vals = np.array([metric_value(outs, name, base) for outs in flat[i * k:(i + 1) * k]])
        vals = vals[np.isfinite(vals)]
        curve.append({"sim_size": size, "value": float(vals.mean()) if vals.size else float("nan"),
                      "mc_se": float(vals.std(ddof=1) / math.sqrt(vals.size)) if vals.size > 1 else float("nan")})
    say(f"calibrated {effect.label} on {name} ({design_label(design)}, {len(args)} replicates) in {time.perf_counter() - t:.1f}s")
    return {"effect": effect.label, "attribute": effect.attribute, "kind": base.experiment.kind, "metric": name, "value_is": _value_is(name, base),
            "asked": effect.metric, "design": design, "draws": k, "curve": curve, "sim_size": size_for_value(curve, float(effect.metric), effect.label)}  # type: ignore[arg-type]


def size_for_value(curve: list[dict[str, float]], value: float, label: str) -> float:
    """The simulator effect whose calibrated value is ``value``: linear
    interpolation on the curve made monotone in the direction it moves
    overall (Monte-Carlo wiggles flattened)."""
    table = ", ".join(f"{c['sim_size']:g} -> {c['value']:+.3f}" for c in curve)
    sizes = np.array([c["sim_size"] for c in curve])
    vals = np.array([c["value"] for c in curve])
    ok = np.isfinite(vals)
    sizes, vals = sizes[ok], vals[ok]
    if vals.size < 2 or vals[-1] == vals[0]:
        raise InvalidArgumentError(f"--effect {label}: the simulator's effect for this attribute does not move the metric (SIMULATED calibration, "
                                   f"simulator effect -> value: {table}); plant another attribute, pick another metric with --metric, or give "
                                   "the simulator's scale.")
    rising = vals[-1] > vals[0]
    mono = np.maximum.accumulate(vals) if rising else np.minimum.accumulate(vals)
    low, high = sorted((float(mono[0]), float(mono[-1])))
    if not low <= value <= high:
        raise InvalidArgumentError(f"--effect {label}: the simulator reaches values from {low:+.3f} to {high:+.3f} on this metric for this attribute "
                                   f"(SIMULATED calibration, simulator effect -> value: {table}); ask for a value in that range, plant another "
                                   "attribute or pick another metric with --metric.")
    return float(np.interp(value, mono, sizes) if rising else np.interp(value, mono[::-1], sizes[::-1]))


def _observed(runs: list[list[Outcome]], cal: dict[str, Any], spec: Any) -> dict[str, Any]:
    """The mean metric-scale value over a design's replicates (with its
    Monte-Carlo error), to set beside the value the calibration aimed at."""
    vals = np.array([metric_value(outs, cal["metric"], spec) for outs in runs])
    vals = vals[np.isfinite(vals)]
    return {"metric": cal["metric"], "value_is": cal["value_is"], "asked": cal["asked"], "mean": float(vals.mean()) if vals.size else float("nan"),
            "mc_se": float(vals.std(ddof=1) / math.sqrt(vals.size)) if vals.size > 1 else float("nan")}


def _cost(spec_path: str, overrides: list[str], design: dict[str, Any], real: Any) -> dict[str, Any]:
    """Calls and estimated cost of the design on the spec's own models (the
    plan's pricing); n/a when the spec's models are simulated."""
    from persona_exp.execute import CallCache
    from persona_exp.execute.budget import estimate
    from persona_exp.pipeline import prepare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = prepare(spec_path, [*overrides, *design_overrides(design)], dry=True, progress=False, simulate=True)
        if all(cfg.is_sim for cfg in real.models.values()):
            return {"calls": len(prep.design.plan), "cost_usd": None,
                    "cost_note": "cost n/a: the spec's models are simulated (set real models, e.g. --set models.judge.model=..., to price the design)"}
        with CallCache(prep.cache_path if prep.cache_path.exists() else ":memory:") as cache:
            est = estimate(prep.design.plan, prep.spec.models, cache)
    note = "" if est.cost is not None else "unknown: no price for " + ", ".join(est.unpriced)
    if prep.pending:
        note = (note + "; " if note else "") + "covers only the calls planned before the first staged step"
    return {"calls": len(prep.design.plan), "cost_usd": est.cost, "cost_note": note}


def _summarise(d: dict[str, Any], kind: str, effects: dict[str, float], metric: str | None, target: float) -> None:
    """Power per planted effect (LOO: its attribute's kappa below the others'
    and surviving the correction), false-positive rates on the unplanted
    attributes, interval widths; for other kinds, the detection rate of each
    headline metric."""
    runs: list[list[Outcome]] = d.pop("replicates")
    n = len(runs)
    d["reps"] = n
    power: dict[str, dict[str, float]] = {}
    if kind == "loo":
        for attr in effects:
            hits, widths = [], []
            for outs in runs:
                o = next((x for x in outs if x.metric == f"kappa[{attr}]"), None)
                hits.append(bool(o and o.survives and o.null is not None and o.estimate < o.null))
                if o and np.isfinite(o.high - o.low):
                    widths.append(o.high - o.low)
            p = float(np.mean(hits))
            power[attr] = {"power": p, "mc_se": mc_se(p, n), "mean_width": float(np.mean(widths)) if widths else float("nan")}
        # A false positive: an unplanted attribute flagged as MORE influential than the rest (kappa below the others'
        # mean). Flags the other way are expected once something is planted: the planted attribute pulls the others'
        # mean down, so the unplanted ones sit truly above it; they are counted apart (flagged, either direction).
        planted = {f"kappa[{a}]" for a in effects}
        tested, fp, flagged, any_fp, any_flag, widths = 0, 0, 0, 0, 0, []
        for outs in runs:
            others = [o for o in outs if o.metric not in planted and o.null is not None and np.isfinite(o.estimate)]
            tested += len(others)
            k_fp = sum(o.survives and o.estimate < o.null for o in others)  # type: ignore[operator]
            k_any = sum(o.survives for o in others)
            fp, flagged = fp + k_fp, flagged + k_any
            any_fp, any_flag = any_fp + (k_fp > 0), any_flag + (k_any > 0)
            widths += [o.high - o.low for o in others if np.isfinite(o.high - o.low)]
        for name, count, denom in (("false_positive_rate", fp, tested), ("flagged_rate", flagged, tested),
                                   ("familywise_false_positive", any_fp, n), ("familywise_flagged", any_flag, n)):
            rate = count / denom if denom else float("nan")
            d[name] = rate
            d[name + "_se"] = mc_se(rate, denom)  # per test: as if the tests were independent
        d["mean_width_unplanted"] = float(np.mean(widths)) if widths else float("nan")
    else:
        names = list(dict.fromkeys(o.metric for outs in runs for o in outs))
        if metric is not None and metric not in names:
            from persona_exp.errors import did_you_mean

            raise InvalidArgumentError(f"--metric {metric!r}: not a headline metric of this experiment{did_you_mean(metric, names)}; "
                                       f"its metrics are {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}.")
        for name in ([metric] if metric else names):
            hits = [any(o.metric == name and o.survives for o in outs) for outs in runs]
            widths = [o.high - o.low for outs in runs for o in outs if o.metric == name and np.isfinite(o.high - o.low)]
            p = float(np.mean(hits))
            power[name] = {"power": p, "mc_se": mc_se(p, n), "mean_width": float(np.mean(widths)) if widths else float("nan")}
        null_runs = d.pop("null_replicates", None)
        if null_runs is None:
            d["false_positive_rate"] = None
            d["false_positive_note"] = "n/a: the null arm was not run (--no-null)"
        else:
            _null_summary(d, null_runs, list(power))
    d["power"] = power
    d["reaches_target"] = bool(power) and all(v["power"] >= target for v in power.values())


def _null_summary(d: dict[str, Any], runs: list[list[Outcome]], names: list[str]) -> None:
    """False positives of the null arm over the tests the power counts: the
    share of (replicate, metric) tests surviving the correction, with a
    standard error clustered by replicate (a replicate's tests share its
    draws), and the share of replicates with at least one survivor."""
    n = len(runs)
    counts = np.array([[sum(o.metric == name and o.survives for o in outs) for name in names] for outs in runs], dtype=float)
    tested = np.array([sum(any(o.metric == name for o in outs) for name in names) for outs in runs], dtype=float)
    k, m = counts.sum(axis=1), tested
    rate = float(k.sum() / m.sum()) if m.sum() else float("nan")
    se = float(math.sqrt(n / (n - 1) * np.sum((k - rate * m) ** 2)) / m.sum()) if m.sum() and n > 1 else float("nan")
    any_fp = float(np.mean(k > 0)) if n else float("nan")
    d["false_positive_rate"] = rate
    d["false_positive_rate_se"] = se
    d["familywise_false_positive"] = any_fp
    d["familywise_false_positive_se"] = mc_se(any_fp, n)
    d["null_arm"] = {"simulated": True, "reps": n, "tests": int(m.sum()), "metrics": names,
                     "per_metric": {name: float(np.mean(counts[:, j] > 0)) for j, name in enumerate(names)}}
    d["false_positive_note"] = ("SIMULATED null arm: the same replicates (seeds and judge draws) in a world where nothing is planted (every judge's effects, default effect and quality term at 0); a test surviving there is "
                                "counted as a false positive")


__all__ = ["Effect", "Study", "brute_replicate", "calibrate", "calibrate_brute", "effect_metric", "loo_kappa_gap", "mc_se", "metric_value",
           "null_overrides", "outcomes", "run_study", "size_for", "size_for_value"]
