#!/usr/bin/env python
"""Speed of ``persona_exp.stats`` against named baselines, measured in one run.

Every row times one of our public functions and a baseline that computes the
same thing (or, for the memory floor, the least work any implementation must
do), on the same data, in the same process. Timings are the best of several
repeats after a warm-up call (``time.perf_counter``). The data are generated
with fixed seeds.

Where ours and a baseline compute the same number (a kappa, a kappa matrix,
the point estimate of an interval) the script checks that they agree; random
outputs (bootstrap intervals, samples) get a loose statistical check instead.

    python benchmarks/bench_stats.py              # full scale
    python benchmarks/bench_stats.py --quick      # 1/10 scale smoke test
    python benchmarks/bench_stats.py --json out.json

Exit status: 0 when every agreement check holds, even if a speed target is
missed (the table is a report); 1 when an agreement check fails.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from _report import Report  # shared by the benchmarks
from _report import print_table as _print_table

import numpy as np

try:
    import persona_exp
    from persona_exp import stats as px
except ImportError as exc:  # pragma: no cover - reported, not handled
    sys.exit(f"cannot import persona_exp ({exc}); build and install the package first.")

try:
    from sklearn.metrics import cohen_kappa_score
except ImportError:  # the baseline rows are then skipped
    cohen_kappa_score = None

try:
    import scipy
    from scipy import stats as sps
except ImportError:
    scipy = None
    sps = None


SEED = 20240611
KAPPA_TOL = 1e-9


# --------------------------------------------------------------------------- timing


def measure(
    fn: Callable[[], Any],
    repeats: int,
    *,
    warmup: Callable[[], Any] | None = None,
) -> tuple[float, Any]:
    """Best (min) wall time of ``repeats`` calls of ``fn`` after one warm-up call.

    ``warmup`` replaces the warm-up call (slow baselines warm up on a small
    input). Returns the best time and the result of the last call.
    """
    (warmup or fn)()
    best = float("inf")
    result = None
    for _ in range(max(1, repeats)):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_count(x: float) -> str:
    """10000000 -> '1e7', 3000000 -> '3e6', 1586 -> '1586'."""
    x = int(x)
    if x < 10_000:
        return str(x)
    exp = len(str(x)) - 1
    mant = x / 10**exp
    return f"{mant:g}e{exp}"


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    case: str
    ours_s: float | None
    baseline: str
    baseline_s: float | None
    kind: str  # "max_ratio": ours/base <= target; "min_speedup": base/ours >= target; "max_time": ours <= target s
    target: float
    note: str = ""
    ratio: float | None = field(default=None)
    passed: bool | None = field(default=None)

    def __post_init__(self) -> None:
        if self.ours_s is None:
            return
        if self.kind == "max_ratio" and self.baseline_s is not None:
            self.ratio = self.ours_s / self.baseline_s
            self.passed = self.ratio <= self.target
        elif self.kind == "min_speedup" and self.baseline_s is not None:
            self.ratio = self.baseline_s / self.ours_s
            self.passed = self.ratio >= self.target
        elif self.kind == "max_time":
            self.passed = self.ours_s <= self.target

    def ratio_text(self) -> str:
        if self.ratio is None:
            return "-"
        if self.kind == "max_ratio":
            return f"ours/base {self.ratio:.2f}x"
        return f"base/ours {self.ratio:,.0f}x" if self.ratio >= 100 else f"base/ours {self.ratio:.2f}x"

    def target_text(self) -> str:
        if self.kind == "max_ratio":
            return f"ours <= {self.target:g}x base"
        if self.kind == "min_speedup":
            return f">= {self.target:,g}x faster"
        return f"ours <= {self.target * 1e3:g} ms"

    def result_text(self) -> str:
        return "SKIP" if self.passed is None else ("PASS" if self.passed else "MISS")


def close(x: float, y: float, tol: float = KAPPA_TOL) -> bool:
    return (np.isnan(x) and np.isnan(y)) or abs(x - y) <= tol


# --------------------------------------------------------------------------- data


def correlated_binary(rng: np.random.Generator, n: int, prevalence: float = 0.3, flip: float = 0.2):
    """Two annotators who each see a latent label and flip it with probability ``flip``."""
    truth = rng.random(n) < prevalence
    a = (truth ^ (rng.random(n) < flip)).astype(np.uint8)
    b = (truth ^ (rng.random(n) < flip)).astype(np.uint8)
    return a, b


def correlated_categorical(rng: np.random.Generator, n: int, k: int, agree: float = 0.6):
    """Skewed categories; b copies a with probability ``agree``, otherwise draws afresh."""
    p = np.arange(k, 0, -1, dtype=np.float64)
    p /= p.sum()
    a = rng.choice(k, size=n, p=p).astype(np.uint8)
    other = rng.choice(k, size=n, p=p).astype(np.uint8)
    b = np.where(rng.random(n) < agree, a, other).astype(np.uint8)
    return a, b


# --------------------------------------------------------------------------- numpy baselines


def kappa_from_table(cm: np.ndarray) -> float:
    cm = np.asarray(cm, dtype=np.float64)
    n = cm.sum()
    po = np.trace(cm) / n
    pe = float(cm.sum(axis=1) @ cm.sum(axis=0)) / (n * n)
    return float("nan") if pe == 1.0 else (po - pe) / (1.0 - pe)


def numpy_kappa_bincount(a: np.ndarray, b: np.ndarray, k: int) -> float:
    cm = np.bincount(a.astype(np.intp) * k + b, minlength=k * k).reshape(k, k)
    return kappa_from_table(cm)


def numpy_kappa_matrix_gemm(labels: np.ndarray, k: int) -> np.ndarray:
    """All pairwise confusion tables from one float32 GEMM of the one-hot labels.

    Row ``i*k + c`` of ``X`` is the indicator of annotator i giving label c, so
    block (i, j) of ``X @ X.T`` is the k x k confusion table of annotators i
    and j. A missing label (-1) has an all-zero one-hot column, so each table
    counts exactly the items both annotators labelled.
    """
    m, n = labels.shape
    cats = np.arange(k, dtype=labels.dtype)
    X = (labels[:, None, :] == cats[None, :, None]).reshape(m * k, n).astype(np.float32)
    G = X @ X.T
    T = G.reshape(m, k, m, k).transpose(0, 2, 1, 3).astype(np.float64)  # (m, m, k, k)
    total = T.sum(axis=(2, 3))
    po = np.trace(T, axis1=2, axis2=3) / total
    rows, cols = T.sum(axis=3), T.sum(axis=2)
    pe = np.einsum("ijc,ijc->ij", rows, cols) / (total * total)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (po - pe) / (1.0 - pe)
    kappa[(pe == 1.0) | (total == 0)] = np.nan
    return kappa


def binary_kappa_stat(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Vectorized Cohen's kappa of 0/1 labels along ``axis`` (for scipy.stats.bootstrap)."""
    n = x.shape[axis]
    po = np.count_nonzero(x == y, axis=axis) / n
    pa = np.count_nonzero(x, axis=axis) / n
    pb = np.count_nonzero(y, axis=axis) / n
    pe = pa * pb + (1.0 - pa) * (1.0 - pb)
    return (po - pe) / (1.0 - pe)


def sklearn_kappa(a: np.ndarray, b: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(a, b))


# --------------------------------------------------------------------------- cases


def bench_kappa_binary(rep: Report, n: int, repeats: int) -> None:
    print(f"\n[kappa] {fmt_count(n)} binary judgments (uint8)", flush=True)
    a, b = correlated_binary(np.random.default_rng(SEED), n)

    t_ours, ours = measure(lambda: px.cohen_kappa(a, b), repeats)
    t_floor, _ = measure(lambda: np.sum(a) + np.sum(b), repeats)
    rep.row(f"kappa, {fmt_count(n)} binary", t_ours, "np.sum(a)+np.sum(b) (memory floor)", t_floor, "max_ratio", 1.5)

    ref = numpy_kappa_bincount(a, b, 2)
    rep.check("kappa binary == numpy confusion-table kappa", close(ours, ref), f"ours {ours:.15f}, numpy {ref:.15f}")

    if cohen_kappa_score is None:
        rep.row(f"kappa, {fmt_count(n)} binary", t_ours, "sklearn cohen_kappa_score (not installed)", None, "min_speedup", 100)
        return
    t_sk, sk = measure(
        lambda: sklearn_kappa(a, b),
        min(repeats, 3),
        warmup=lambda: sklearn_kappa(a[:10_000], b[:10_000]),
    )
    rep.row(f"kappa, {fmt_count(n)} binary", t_ours, "sklearn cohen_kappa_score", t_sk, "min_speedup", 100)
    rep.check("kappa binary == sklearn", close(ours, sk), f"ours {ours:.15f}, sklearn {sk:.15f}")


def bench_kappa_categorical(rep: Report, n: int, k: int, repeats: int) -> None:
    print(f"\n[kappa] {fmt_count(n)} judgments, {k} categories (uint8)", flush=True)
    a, b = correlated_categorical(np.random.default_rng(SEED + 1), n, k)

    t_ours, ours = measure(lambda: px.cohen_kappa(a, b), repeats)
    t_np, ref = measure(lambda: numpy_kappa_bincount(a, b, k), repeats)
    rep.row(f"kappa, {fmt_count(n)} x {k} categories", t_ours, "numpy bincount(a*k+b) kappa", t_np, "min_speedup", 3)
    rep.check(f"kappa {k} categories == numpy bincount kappa", close(ours, ref), f"ours {ours:.15f}, numpy {ref:.15f}")


def bench_kappa_matrix(rep: Report, m: int, n: int, repeats: int, sk_pairs: int) -> None:
    k = 2
    n_pairs = m * (m - 1) // 2
    print(f"\n[kappa matrix] {m} annotators x {fmt_count(n)} items, binary, no missing (int8)", flush=True)
    rng = np.random.default_rng(SEED + 2)
    truth = rng.random(n) < 0.4
    flip = rng.uniform(0.05, 0.35, size=(m, 1))  # annotators differ in reliability
    labels = (truth[None, :] ^ (rng.random((m, n)) < flip)).astype(np.int8)

    t_ours, ours = measure(lambda: px.kappa_matrix(labels), repeats)
    t_gemm, gemm = measure(lambda: numpy_kappa_matrix_gemm(labels, k), repeats)
    label = f"kappa matrix, {m} x {fmt_count(n)}"
    rep.row(label, t_ours, "numpy one-hot float32 GEMM", t_gemm, "min_speedup", 1)

    ours = np.asarray(ours, dtype=np.float64)
    same_nan = ours.shape == gemm.shape and bool(np.array_equal(np.isnan(ours), np.isnan(gemm)))
    diff = float(np.nanmax(np.abs(ours - gemm))) if same_nan else float("inf")
    rep.check(
        "kappa matrix == numpy GEMM (all pairs and diagonal)",
        same_nan and diff <= KAPPA_TOL,
        f"shape {ours.shape}, max |diff| {diff:.2e}" + ("" if same_nan else ", NaN pattern or shape differs"),
    )

    if cohen_kappa_score is None:
        rep.row(label, t_ours, "sklearn double loop (not installed)", None, "min_speedup", 300)
        return
    iu, ju = np.triu_indices(m, k=1)
    pick = np.linspace(0, n_pairs - 1, min(sk_pairs, n_pairs)).round().astype(int)
    pairs = list(zip(iu[pick].tolist(), ju[pick].tolist()))

    def sk_loop() -> list[float]:
        return [sklearn_kappa(labels[i], labels[j]) for i, j in pairs]

    t_sub, sk_vals = measure(
        sk_loop,
        min(repeats, 2),
        warmup=lambda: sklearn_kappa(labels[pairs[0][0]], labels[pairs[0][1]]),
    )
    t_sk = t_sub * n_pairs / len(pairs)
    rep.row(
        label,
        t_ours,
        f"sklearn double loop (est. from {len(pairs)} pairs)",
        t_sk,
        "min_speedup",
        300,
        note=f"sklearn loop timed on {len(pairs)} of {n_pairs} pairs ({fmt_time(t_sub)}) and "
        f"extrapolated linearly x{n_pairs / len(pairs):.1f} to all pairs",
    )
    sk_diff = max(abs(ours[i, j] - v) for (i, j), v in zip(pairs, sk_vals))
    rep.check(
        f"kappa matrix == sklearn on the {len(pairs)} timed pairs",
        sk_diff <= KAPPA_TOL,
        f"max |diff| {sk_diff:.2e}",
    )


def bench_kappa_ci(rep: Report, n: int, n_resamples: int, repeats: int) -> None:
    print(f"\n[kappa CI] 95% percentile bootstrap, {n_resamples} resamples, {fmt_count(n)} binary items", flush=True)
    a, b = correlated_binary(np.random.default_rng(SEED + 3), n)

    t_ours, ours = measure(lambda: px.kappa_ci(a, b, n_resamples=n_resamples, method="percentile", seed=0), repeats)
    ref = numpy_kappa_bincount(a, b, 2)
    rep.check("kappa_ci estimate == numpy kappa", close(ours.estimate, ref), f"ours {ours.estimate:.15f}, numpy {ref:.15f}")
    label = f"kappa 95% CI, {n_resamples} resamples, {fmt_count(n)}"

    if sps is None:
        rep.row(label, t_ours, "scipy.stats.bootstrap (not installed)", None, "min_speedup", 5000)
        return
    # scipy resamples an index array of shape (batch, n); batch=100 keeps that near 1 GB.
    batch = 100
    seed_kw = "rng" if "rng" in inspect.signature(sps.bootstrap).parameters else "random_state"

    def run_scipy(x: np.ndarray, y: np.ndarray, resamples: int):
        return sps.bootstrap(
            (x, y),
            binary_kappa_stat,
            paired=True,
            vectorized=True,
            n_resamples=resamples,
            confidence_level=0.95,
            method="percentile",
            batch=batch,
            **{seed_kw: np.random.default_rng(SEED)},
        )

    t_sp, res = measure(
        lambda: run_scipy(a, b, n_resamples),
        1,
        warmup=lambda: run_scipy(a[:1000], b[:1000], 20),
    )
    rep.row(
        label,
        t_ours,
        f"scipy.stats.bootstrap (vectorized, batch={batch}, 1 run)",
        t_sp,
        "min_speedup",
        5000,
    )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    width = hi - lo
    # Different random draws: the ends agree up to Monte Carlo error (about 3% of
    # the width for 1000 resamples); a quarter of the width is a loose bound.
    ok = abs(ours.low - lo) <= 0.25 * width and abs(ours.high - hi) <= 0.25 * width
    rep.check(
        "kappa_ci interval ~ scipy bootstrap interval (loose: ends within 25% of width)",
        ok,
        f"ours [{ours.low:.5f}, {ours.high:.5f}], scipy [{lo:.5f}, {hi:.5f}]",
    )


def bench_cluster_ci(rep: Report, n: int, n_clusters: int, n_resamples: int, repeats: int) -> None:
    print(
        f"\n[kappa CI] cluster bootstrap, {n_resamples} resamples, {fmt_count(n)} items in {n_clusters} clusters",
        flush=True,
    )
    rng = np.random.default_rng(SEED + 4)
    clusters = rng.integers(0, n_clusters, size=n, dtype=np.int64)
    clusters[:n_clusters] = np.arange(n_clusters)  # every cluster present
    flip = rng.uniform(0.05, 0.4, size=n_clusters)[clusters]  # agreement varies by persona
    truth = rng.random(n) < 0.3
    a = (truth ^ (rng.random(n) < flip)).astype(np.uint8)
    b = (truth ^ (rng.random(n) < flip)).astype(np.uint8)

    t_ours, ours = measure(
        lambda: px.kappa_ci(a, b, clusters=clusters, n_resamples=n_resamples, seed=0), repeats
    )
    rep.row(
        f"cluster CI, {n_resamples} resamples, {fmt_count(n)} / {n_clusters} cl.",
        t_ours,
        "none (absolute target)",
        None,
        "max_time",
        0.100,
    )
    ref = numpy_kappa_bincount(a, b, 2)
    rep.check(
        "cluster kappa_ci estimate == numpy kappa",
        close(ours.estimate, ref),
        f"ours {ours.estimate:.15f}, numpy {ref:.15f}; interval [{ours.low:.5f}, {ours.high:.5f}]",
    )


def bench_crossed_ci(rep: Report, n: int | None, n_personas: int, n_questions: int, n_resamples: int, repeats: int,
                     max_time: float) -> None:
    """Crossed persona x question interval. ``n=None``: the full grid, one item
    per cell (LOO scale); otherwise n judgments, each persona on its own
    150-question subset of the pool (as assign_prompts gives)."""
    rng = np.random.default_rng(SEED + 7)
    if n is None:
        persona, question = np.repeat(np.arange(n_personas), n_questions), np.tile(np.arange(n_questions), n_personas)
        what = f"{n_personas} x {n_questions} grid"
    else:
        prompts = px.assign_prompts(n_personas, n_questions, 150, seed=0)
        persona = rng.integers(0, n_personas, size=n)
        question = prompts[persona, rng.integers(0, 150, size=n)]
        what = f"{fmt_count(n)} items, {n_personas} personas x 150 of {n_questions} questions"
    print(f"\n[kappa CI] crossed design, {n_resamples} resamples, {what}", flush=True)
    effect = rng.normal(0, 0.7, n_personas)[persona] + rng.normal(0, 0.7, question.max() + 1)[question]
    a = (rng.random(persona.size) < 0.4).astype(np.uint8)
    b = np.where(rng.random(persona.size) < 1 / (1 + np.exp(-(1 + effect))), a, rng.random(persona.size) < 0.4).astype(np.uint8)
    t_ours, ours = measure(
        lambda: px.kappa_ci(a, b, k=2, clusters=(persona, question), n_resamples=n_resamples, seed=0), repeats
    )
    rep.row(f"crossed CI, {n_resamples} resamples, {what}", t_ours, "none (absolute target)", None, "max_time", max_time)
    ref = numpy_kappa_bincount(a, b, 2)
    rep.check(
        "crossed kappa_ci estimate == numpy kappa, interval around it",
        close(ours.estimate, ref) and ours.low < ours.estimate < ours.high,
        f"ours {ours.estimate:.15f}, numpy {ref:.15f}; interval [{ours.low:.5f}, {ours.high:.5f}] ({ours.method})",
    )


def mean_weight_check(w: np.ndarray, ours: np.ndarray, base: np.ndarray) -> tuple[bool, str]:
    """Both samples must have the same mean weight of the drawn rows, up to 6 standard errors."""
    wo, wb = w[ours], w[base]
    se = float(np.sqrt(wo.var() / wo.size + wb.var() / wb.size))
    d = abs(float(wo.mean()) - float(wb.mean()))
    return d <= 6 * se, f"mean drawn weight ours {wo.mean():.3f}, numpy {wb.mean():.3f} (|diff| {d / se:.1f} SE)"


def bench_weighted_sample(rep: Report, n_rows: int, n_draw: int, repeats: int) -> None:
    print(f"\n[weighted sample] {fmt_count(n_draw)} of {fmt_count(n_rows)} rows (census-like float64 weights)", flush=True)
    rng = np.random.default_rng(SEED + 5)
    w = np.maximum(1.0, np.round(rng.lognormal(mean=4.0, sigma=0.8, size=n_rows)))

    # with replacement
    base_rng = np.random.default_rng(SEED + 6)
    t_ours, ours = measure(lambda: px.weighted_sample(w, n_draw, replace=True, seed=0), repeats)
    t_np, base = measure(lambda: base_rng.choice(n_rows, size=n_draw, replace=True, p=w / w.sum()), repeats)
    rep.row(
        f"weighted sample {fmt_count(n_draw)}/{fmt_count(n_rows)}, replace",
        t_ours,
        "numpy Generator.choice(p=w/w.sum())",
        t_np,
        "min_speedup",
        5,
    )
    ours = np.asarray(ours)
    valid = ours.shape == (n_draw,) and ours.dtype.kind in "iu" and ours.min() >= 0 and ours.max() < n_rows
    ok, detail = mean_weight_check(w, ours, base) if valid else (False, "")
    rep.check(
        "weighted_sample(replace=True) valid and ~ numpy",
        valid and ok,
        f"{ours.size} indices in range: {valid}; {detail}",
    )

    # without replacement
    base_rng = np.random.default_rng(SEED + 7)

    def np_keys() -> np.ndarray:
        keys = base_rng.exponential(size=n_rows) / w
        return np.argpartition(keys, n_draw)[:n_draw]

    t_ours, ours = measure(lambda: px.weighted_sample(w, n_draw, replace=False, seed=0), repeats)
    t_np, base = measure(np_keys, repeats)
    rep.row(
        f"weighted sample {fmt_count(n_draw)}/{fmt_count(n_rows)}, no replace",
        t_ours,
        "numpy exponential keys + argpartition",
        t_np,
        "min_speedup",
        2,
    )
    ours = np.asarray(ours)
    valid = (
        ours.shape == (n_draw,)
        and ours.dtype.kind in "iu"
        and ours.min() >= 0
        and ours.max() < n_rows
        and bool(np.all(np.diff(ours) > 0))  # ascending and distinct
    )
    ok, detail = mean_weight_check(w, ours, base) if valid else (False, "")
    rep.check(
        "weighted_sample(replace=False) distinct, ascending and ~ numpy",
        valid and ok,
        f"{ours.size} distinct ascending indices: {valid}; {detail}",
    )


# --------------------------------------------------------------------------- report


def environment(scale: float, repeats: int) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        from sklearn import __version__ as sk_version
    except ImportError:
        sk_version = None
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "numpy": np.__version__,
        "scipy": getattr(scipy, "__version__", None),
        "scikit-learn": sk_version,
        "persona_exp": getattr(persona_exp, "__version__", "unknown"),
        "scale": scale,
        "repeats": repeats,
        "thread_env": {k: os.environ[k] for k in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
    }
    if hasattr(os, "getloadavg"):
        env["loadavg_1min_at_start"] = round(os.getloadavg()[0], 2)
    return env


def print_env(env: dict[str, Any]) -> None:
    print("persona_exp.stats benchmark")
    print(f"  persona_exp {env['persona_exp']} | numpy {env['numpy']} | scipy {env['scipy']} | scikit-learn {env['scikit-learn']}")
    print(f"  python {env['python']} on {env['platform']}")
    print(f"  cores: {env['cpu_count']} (usable by this process: {env['usable_cores']})")
    if env["thread_env"]:
        print(f"  thread settings: {env['thread_env']}")
    if "loadavg_1min_at_start" in env:
        load = env["loadavg_1min_at_start"]
        warn = "  (busy machine: timings may be noisy)" if load > 1.5 else ""
        print(f"  load average (1 min) at start: {load}{warn}")
    print(f"  scale {env['scale']:g}, best of {env['repeats']} repeats after a warm-up (fewer for slow baselines)")


def print_table(rows: list[Row]) -> None:
    headers = ("case", "ours", "baseline", "baseline time", "ratio", "target", "result")
    _print_table(headers, [(r.case, fmt_time(r.ours_s), r.baseline, fmt_time(r.baseline_s), r.ratio_text(), r.target_text(), r.result_text()) for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="run at 1/10 scale (smoke test)")
    parser.add_argument("--json", metavar="PATH", help="write the environment, rows and checks as JSON")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (default 5)")
    args = parser.parse_args(argv)

    scale = 0.1 if args.quick else 1.0
    repeats = max(1, args.repeats)

    def sized(x: float) -> int:
        return max(1, int(round(x * scale)))

    env = environment(scale, repeats)
    print_env(env)

    rep = Report(Row)
    t_start = time.perf_counter()
    cases: list[tuple[str, Callable[[], None]]] = [
        ("kappa binary", lambda: bench_kappa_binary(rep, sized(1e7), repeats)),
        ("kappa categorical", lambda: bench_kappa_categorical(rep, sized(1e7), 5, repeats)),
        ("kappa matrix", lambda: bench_kappa_matrix(rep, 50, sized(1e5), repeats, sk_pairs=50)),
        ("kappa CI", lambda: bench_kappa_ci(rep, sized(1e6), 1000, repeats)),
        ("cluster CI", lambda: bench_cluster_ci(rep, sized(1e6), 1586, 1000, repeats)),
        ("crossed CI, LOO scale", lambda: bench_crossed_ci(rep, None, 40, 20, 1000, repeats, 0.050)),
        ("crossed CI", lambda: bench_crossed_ci(rep, sized(1e6), 1586, 3000, 1000, repeats, 0.500)),
        ("weighted sample", lambda: bench_weighted_sample(rep, sized(3e6), sized(1e6), repeats)),
    ]
    for name, run in cases:
        try:
            run()
        except Exception as exc:  # one broken case must not hide the others
            rep.check(f"{name} ran", False, f"{type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - t_start

    print()
    print_table(rep.rows)
    print()
    notes = [r.note for r in rep.rows if r.note]
    if args.quick:
        notes.append("--quick: 1/10 scale; the targets are set for full scale, where fixed overheads matter less")
    notes.append("ratio: ours/base is how many times the baseline's time ours takes; base/ours is ours' speedup")
    return rep.finish(notes=notes, env=env, elapsed=elapsed, json_path=args.json, checks_label="agreement checks", load=False)


if __name__ == "__main__":
    sys.exit(main())
