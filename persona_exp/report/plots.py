"""Plots for reports, each returned as an SVG string ready to inline in HTML.

Every function draws on its own ``matplotlib.figure.Figure`` (no pyplot, no
global backend or rc state is touched) and renders it with the SVG backend.
Text stays text (``svg.fonttype = "none"``), so plots are small, searchable and
scale without blur. Element ids inside each SVG get a per-plot prefix, because
several SVGs inlined in one HTML page share one id namespace.

The figures follow the PERSONA paper: per-attribute distributions of the
leave-one-out kappas (Fig. 5), kappa matrices as annotated heatmaps (Fig. 6/8),
kappa histograms (Fig. 7), the population beside the census (Fig. 2), plus
win-rate matrices, interval ("forest") plots and TVD bars.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "heatmap",
    "interval_plot",
    "kappa_distribution",
    "kappa_heatmap",
    "kappa_histogram",
    "population_vs_census",
    "power_curve",
    "tvd_bars",
    "win_rate_heatmap",
    "win_rate_matrix",
]

_RC = {
    "svg.fonttype": "none",
    "text.parse_math": False,  # labels are data ("$25,000 to $49,999"), never TeX
    "svg.hashsalt": "persona-exp",  # marker and clip ids depend on the drawing only, not on a random salt
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 9,
    "legend.frameon": False,
}
_COUNTER = itertools.count(1)
_REF_RE = re.compile(r'(\bid="|href="#|url\(#)')
SAMPLE_COLOR = "#1f77b4"
CENSUS_COLOR = "#bdbdbd"
POOLED_COLOR = "#d62728"


def _styled(func):
    """Runs a plotting function under the report style (rc settings are read
    while artists are created, so the whole body runs inside the context)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(_RC):
            return func(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def to_svg(fig: Any, prefix: str | None = None) -> str:
    """The figure as an ``<svg>`` element (no XML prolog), ids prefixed so that
    several plots can live in one page."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'<style type="text/css">[^<]*</style>\s*', "", text)
    prefix = prefix or f"plot{next(_COUNTER)}"
    # Every id and every reference to one (all internal) gets the prefix; text
    # content is escaped by matplotlib, so it cannot contain these patterns.
    return _REF_RE.sub(lambda m: f"{m.group(1)}{prefix}-", text).strip()


def _short(label: Any, width: int = 34) -> str:
    s = " ".join(str(label).split())
    return s if len(s) <= width else s[: width - 1] + "\u2026"


# --------------------------------------------------------------------------- kappa plots


@_styled
def kappa_distribution(
    per_persona: Mapping[str, Sequence[float]],
    pooled: Mapping[str, tuple[float, float, float]] | None = None,
    *,
    title: str = "Leave-one-out: per-persona kappa by attribute (most influential on top)",
    level: float = 0.95,
    prefix: str | None = None,
) -> str:
    """PERSONA Fig. 5: one row per attribute (in the given order, most
    influential first), a box of the per-persona kappas with the personas as
    points, and the pooled kappa with its interval (``pooled[attr] = (estimate,
    low, high)``). NaN kappas are left out and counted in the y labels."""
    names = list(per_persona)
    fig = _figure(8.0, 1.6 + 0.32 * max(len(names), 1))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    data, dropped = [], []
    for name in names:
        v = np.asarray(per_persona[name], dtype=float)
        dropped.append(int((~np.isfinite(v)).sum()))
        data.append(v[np.isfinite(v)])
    positions = np.arange(len(names))[::-1]  # first attribute on top
    nonempty = [i for i, d in enumerate(data) if d.size]
    if nonempty:
        ax.boxplot(
            [data[i] for i in nonempty], positions=positions[nonempty], orientation="horizontal", widths=0.6,
            showfliers=False, patch_artist=True, medianprops={"color": "#08306b", "linewidth": 1.5},
            boxprops={"facecolor": "#c6dbef", "edgecolor": "#4a6fa5"}, whiskerprops={"color": "#4a6fa5"}, capprops={"color": "#4a6fa5"},
        )
    for i, d in enumerate(data):
        if d.size:
            ax.scatter(d, positions[i] + rng.uniform(-0.18, 0.18, d.size), s=9, color="#252525", alpha=0.45, linewidths=0, zorder=3)
    if pooled:
        ys = [positions[i] for i, n in enumerate(names) if n in pooled and math.isfinite(pooled[n][0])]
        est = [pooled[n][0] for n in names if n in pooled and math.isfinite(pooled[n][0])]
        lo = [pooled[n][1] for n in names if n in pooled and math.isfinite(pooled[n][0])]
        hi = [pooled[n][2] for n in names if n in pooled and math.isfinite(pooled[n][0])]
        if ys:
            err = np.array([np.subtract(est, lo), np.subtract(hi, est)])
            ax.errorbar(est, ys, xerr=np.nan_to_num(np.clip(err, 0, None)), fmt="D", color=POOLED_COLOR, markersize=5, capsize=3,
                        linewidth=1.3, zorder=4)
    ax.set_yticks(positions)
    ax.set_yticklabels([_short(n) + (f" ({d} n/a)" if d else "") for n, d in zip(names, dropped)])
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.axvline(0, color="#969696", linewidth=0.8, linestyle=":")
    ax.set_xlabel("Cohen's kappa, with vs without the attribute (lower = more influence)")
    ax.set_ylabel("attribute")
    fig.suptitle(title, fontweight="bold", fontsize=11)  # centred on the figure: long y labels push the axes right
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="#c6dbef", edgecolor="#4a6fa5", label="per-persona kappas (box: quartiles, whiskers: 1.5 IQR)"),
               Line2D([], [], marker="o", linestyle="", color="#252525", alpha=0.6, markersize=4, label="one persona")]
    if pooled:
        handles.append(Line2D([], [], marker="D", color=POOLED_COLOR, markersize=5, label=f"pooled kappa, {level:.0%} cluster-bootstrap CI"))
    fig.legend(handles=handles, loc="outside lower center", ncol=2)
    return to_svg(fig, prefix)


@_styled
def kappa_histogram(
    series: Mapping[str, Sequence[float]],
    *,
    title: str = "Distribution of kappa",
    xlabel: str = "Cohen's kappa",
    bins: int | Sequence[float] | None = None,
    prefix: str | None = None,
) -> str:
    """Histograms of kappa values, one step outline per series (PERSONA Fig. 7
    style), each normalised to shares so series of different sizes compare;
    each series' median is marked. NaNs are left out."""
    from matplotlib.ticker import PercentFormatter

    fig = _figure(6.5, 3.6 + 0.22 * len(series))
    ax = fig.add_subplot()
    clean = {name: np.asarray(v, dtype=float)[np.isfinite(np.asarray(v, dtype=float))] for name, v in series.items()}
    allv = np.concatenate([v for v in clean.values()] or [np.zeros(0)])
    if bins is None:
        lo = min(-0.2, float(allv.min())) if allv.size else -1.0
        bins = np.linspace(math.floor(lo * 10) / 10, 1.0, int(round((1.0 - math.floor(lo * 10) / 10) / 0.05)) + 1)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for (name, v), color in zip(clean.items(), itertools.cycle(colors)):
        if not v.size:
            continue
        filled = len(clean) == 1
        ax.hist(v, bins=bins, weights=np.full(v.size, 1.0 / v.size), histtype="stepfilled" if filled else "step", color=color,
                alpha=0.55 if filled else 1.0, linewidth=1.6, label=f"{_short(name, 40)} (n={v.size}, median {np.median(v):.2f})")
        ax.axvline(float(np.median(v)), color=color, linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of values per bin")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_title(title)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)
    if allv.size:
        fig.legend(loc="outside lower center", ncol=1)
    else:
        ax.text(0.5, 0.5, "no finite kappa values", transform=ax.transAxes, ha="center", va="center")
    return to_svg(fig, prefix)


@_styled
def heatmap(
    matrix: Any,
    row_labels: Sequence[str],
    col_labels: Sequence[str] | None = None,
    *,
    title: str,
    colorbar_label: str,
    vmin: float,
    vmax: float,
    cmap: str = "RdBu",
    fmt: str = "{:.2f}",
    xlabel: str = "",
    ylabel: str = "",
    counts: Any = None,
    prefix: str | None = None,
) -> str:
    """An annotated heatmap of a rows x columns matrix; NaN cells are grey and
    marked "n/a". ``counts`` (same shape) adds "n=..." under each value."""
    import matplotlib

    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"heatmap needs a 2-d matrix, got shape {m.shape}")
    col_labels = list(row_labels if col_labels is None else col_labels)
    rows, cols = m.shape
    if len(row_labels) != rows or len(col_labels) != cols:
        raise ValueError(f"labels ({len(row_labels)} x {len(col_labels)}) do not match the matrix {rows} x {cols}")
    side = max(rows, cols)
    cell = 0.75 if side <= 8 else max(0.3, 6.0 / side)
    fig = _figure(2.6 + cell * cols + 1.2, 1.8 + cell * rows)
    ax = fig.add_subplot()
    colormap = matplotlib.colormaps[cmap].with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(m), cmap=colormap, vmin=vmin, vmax=vmax, aspect="equal")
    ax.set_xticks(range(cols))
    ax.set_xticklabels([_short(c, 24) for c in col_labels], rotation=40 if cols > 3 else 0, ha="right" if cols > 3 else "center")
    ax.set_yticks(range(rows))
    ax.set_yticklabels([_short(r, 24) for r in row_labels])
    ax.spines[:].set_visible(False)
    if side <= 16:
        fs = 9 if side <= 8 else 7
        for i in range(rows):
            for j in range(cols):
                v = m[i, j]
                if math.isfinite(v):
                    r, g, b, _ = colormap((v - vmin) / (vmax - vmin) if vmax > vmin else 0.5)
                    color = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
                    label = fmt.format(v) + (f"\nn={int(np.asarray(counts)[i, j])}" if counts is not None else "")
                else:
                    color, label = "#525252", "n/a"
                ax.text(j, i, label, ha="center", va="center", color=color, fontsize=fs)
    bar = fig.colorbar(im, ax=ax, shrink=0.85)
    bar.set_label(colorbar_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return to_svg(fig, prefix)


@_styled
def kappa_heatmap(matrix: Any, labels: Sequence[str], *, title: str = "Cohen's kappa between annotators", prefix: str | None = None) -> str:
    """A kappa matrix (e.g. from ``stats.kappa_matrix``) as PERSONA Fig. 6/8:
    diverging colours around 0 on the full kappa scale [-1, 1]."""
    return heatmap(matrix, labels, labels, title=title, colorbar_label="Cohen's kappa (1 = perfect, 0 = chance)", vmin=-1.0, vmax=1.0,
                   cmap="RdBu", xlabel="annotator", ylabel="annotator", prefix=prefix)


def win_rate_matrix(a: Sequence[str], b: Sequence[str], outcomes: Sequence[float], names: Sequence[str] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Pairwise win rates from a list of games: ``a[i]`` met ``b[i]`` with
    outcome 1 (a won), 0 (b won) or 0.5 (tie). Returns ``(names, rates, counts)``
    where ``rates[r, c]`` is the share of the games between r and c that r won
    (ties count half), NaN when they never met, and the diagonal is NaN. Names
    are ordered by overall win rate, best first, unless given."""
    a, b = [str(x) for x in a], [str(x) for x in b]
    o = np.asarray(outcomes, dtype=float)
    if not (len(a) == len(b) == o.size):
        raise ValueError(f"a, b and outcomes differ in length ({len(a)}, {len(b)}, {o.size})")
    if o.size and (np.isnan(o).any() or (o < 0).any() or (o > 1).any()):
        raise ValueError("outcomes must lie in [0, 1] (1 = a wins, 0 = b wins, 0.5 = tie)")
    if names is None:
        players = sorted(set(a) | set(b))
        wins = {p: 0.0 for p in players}
        games = {p: 0 for p in players}
        for x, y, v in zip(a, b, o):
            wins[x] += v
            wins[y] += 1 - v
            games[x] += 1
            games[y] += 1
        names = sorted(players, key=lambda p: (-wins[p] / max(games[p], 1), p))
    names = list(names)
    index = {n: i for i, n in enumerate(names)}
    won = np.zeros((len(names), len(names)))
    met = np.zeros((len(names), len(names)), dtype=np.int64)
    for x, y, v in zip(a, b, o):
        if x == y or x not in index or y not in index:
            continue
        i, j = index[x], index[y]
        won[i, j] += v
        won[j, i] += 1 - v
        met[i, j] += 1
        met[j, i] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(met > 0, won / np.maximum(met, 1), np.nan)
    np.fill_diagonal(rates, np.nan)
    return names, rates, met


@_styled
def win_rate_heatmap(rates: Any, names: Sequence[str], counts: Any = None, *, title: str = "Win rate of row over column",
                     prefix: str | None = None) -> str:
    """A win-rate matrix (see :func:`win_rate_matrix`): colours centred on 0.5."""
    return heatmap(rates, names, names, title=title, colorbar_label="win rate of the row (ties count half)", vmin=0.0, vmax=1.0,
                   cmap="RdBu", xlabel="opponent (column)", ylabel="contestant (row)", counts=counts, prefix=prefix)


# --------------------------------------------------------------------------- intervals


@_styled
def interval_plot(
    labels: Sequence[str],
    estimates: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    title: str,
    xlabel: str,
    reference: float | None = None,
    reference_label: str | None = None,
    flagged: Sequence[bool] | None = None,
    series_label: str = "estimate with confidence interval",
    xlim: tuple[float, float] | None = None,
    prefix: str | None = None,
) -> str:
    """A forest plot: one row per label, a point and its interval; ``flagged``
    rows (e.g. intervals that exclude the reference) are drawn in red."""
    n = len(labels)
    fig = _figure(7.0, 1.6 + 0.3 * max(n, 2))
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    est, lo, hi = (np.asarray(v, dtype=float) for v in (estimates, lows, highs))
    flags = np.asarray(flagged if flagged is not None else [False] * n, dtype=bool)
    from matplotlib.lines import Line2D

    for sel, color in ((~flags, SAMPLE_COLOR), (flags, POOLED_COLOR)):
        if sel.any():
            err = np.nan_to_num(np.clip(np.array([est[sel] - lo[sel], hi[sel] - est[sel]]), 0, None))
            ax.errorbar(est[sel], y[sel], xerr=err, fmt="o", color=color, capsize=3, markersize=5)
    handles = [Line2D([], [], marker="o", color=SAMPLE_COLOR, label=series_label)]
    if flags.any():
        handles.append(Line2D([], [], marker="o", color=POOLED_COLOR, label="interval excludes the reference"))
    if reference is not None:
        ax.axvline(reference, color="#636363", linestyle="--", linewidth=1)
        handles.append(Line2D([], [], color="#636363", linestyle="--", label=reference_label or f"reference {reference:g}"))
    ax.set_yticks(y)
    ax.set_yticklabels([_short(s, 40) for s in labels])
    ax.set_ylim(-0.7, n - 0.3)
    if xlim:
        ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    fig.suptitle(title, fontweight="bold", fontsize=11)
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 2))
    return to_svg(fig, prefix)


# --------------------------------------------------------------------------- population


@_styled
def population_vs_census(entries: Sequence[Mapping[str, Any]], *, source_label: str = "census", columns: int = 2,
                         prefix: str | None = None) -> str:
    """PERSONA Fig. 2: for each attribute of a representativeness report
    (``population.represent.representativeness``), the share of personas per
    category beside the weighted census share, with the TVD in the title."""
    from matplotlib.figure import Figure

    n = len(entries)
    columns = max(1, min(columns, n))
    nrows = max(1, math.ceil(n / columns))
    # Fixed margins in inches instead of constrained layout: with dozens of
    # panels the layout solver costs seconds and the label widths are bounded.
    label_w, panel_w, gap_w = 2.0, 3.0, 0.25
    head_h, title_h, axis_h, bar_h = 0.9, 0.35, 0.45, 0.2
    heights = [max(max(len(e["distribution"]) for e in entries[r * columns:(r + 1) * columns]), 1) * bar_h + 0.2 if n else 1.0 for r in range(nrows)]
    width = columns * (label_w + panel_w) + gap_w
    height = head_h + sum(h + title_h + axis_h for h in heights)
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    fig = Figure(figsize=(width, height))
    grid = fig.add_gridspec(nrows, columns, height_ratios=heights, left=label_w / width, right=1 - gap_w / width,
                            top=1 - (head_h + title_h) / height, bottom=axis_h / height,
                            wspace=label_w / panel_w, hspace=(title_h + axis_h) / (sum(heights) / nrows))
    for idx, entry in enumerate(entries):
        ax = fig.add_subplot(grid[idx // columns, idx % columns])
        rows = entry["distribution"]
        y = np.arange(len(rows))[::-1]
        sample = [r["sample"] for r in rows]
        source = [r["source"] for r in rows]
        ax.barh(y + 0.2, source, height=0.4, color=CENSUS_COLOR, label=source_label)
        ax.barh(y - 0.2, sample, height=0.4, color=SAMPLE_COLOR, label="personas")
        ax.set_yticks(y)
        ax.set_yticklabels([_short(r["value"], 30) for r in rows], fontsize=8)
        ax.set_title(f"{entry['attribute']} (TVD {entry['tvd']:.3f}, {entry['categories']} values)", fontsize=9.5)
        ax.set_xlabel("share", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 5, 10]))
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    if entries:
        handles, labels = fig.axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.45 / height), ncol=2, fontsize=10)
    fig.suptitle("Population beside the census: share per category (TVD: 0 = identical, 1 = disjoint)", fontweight="bold", y=1 - 0.12 / height)
    return to_svg(fig, prefix)


@_styled
def tvd_bars(entries: Sequence[Mapping[str, Any]], *, prefix: str | None = None) -> str:
    """Total variation distance per attribute, sorted, largest on top."""
    items = sorted(entries, key=lambda e: e["tvd"], reverse=True)
    fig = _figure(7.5, 1.2 + 0.26 * max(len(items), 2))
    ax = fig.add_subplot()
    y = np.arange(len(items))[::-1]
    ax.barh(y, [e["tvd"] for e in items], color=SAMPLE_COLOR, label="TVD, personas vs census")
    for yy, e in zip(y, items):
        ax.text(e["tvd"], yy, f" {e['tvd']:.3f}", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{e['attribute']} ({e['categories']})" for e in items])
    ax.set_xlabel("total variation distance (0 = identical, 1 = disjoint)")
    ax.set_ylabel("attribute (number of values)")
    ax.set_title("Representativeness per attribute")
    ax.set_xlim(0, max([0.05] + [e["tvd"] * 1.25 for e in items]))
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    ax.legend(loc="lower right")
    return to_svg(fig, prefix)


@_styled
def topic_bars(counts: Sequence[tuple[str, int]], *, prefix: str | None = None) -> str:
    """PERSONA Fig. 3: the share of the prompts in each topic, largest on top."""
    from matplotlib.ticker import PercentFormatter

    items = sorted(counts, key=lambda c: (-c[1], c[0]))
    total = sum(n for _, n in items) or 1
    fig = _figure(7.5, 1.2 + 0.26 * max(len(items), 2))
    ax = fig.add_subplot()
    y = np.arange(len(items))[::-1]
    shares = [n / total for _, n in items]
    ax.barh(y, shares, color=SAMPLE_COLOR)
    for yy, (_, n), share in zip(y, items, shares):
        ax.text(share, yy, f" {n} ({100 * share:.1f}%)", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([_short(t, 40) for t, _ in items])
    ax.set_xlabel("share of the prompts")
    ax.set_title(f"Prompt topics ({total} prompts)")
    ax.set_xlim(0, max(shares, default=0.05) * 1.3)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    return to_svg(fig, prefix)



@_styled
def power_curve(curves: Mapping[str, Sequence[tuple[float, float, float]]], *, xlabel: str, target: float | None = None,
                xticklabels: Sequence[str] | None = None, title: str = "SIMULATED power by design size", prefix: str | None = None) -> str:
    """Power against design size, one line per effect, with Monte-Carlo error
    bars (+-1.96 standard errors, clipped to [0, 1]); ``curves`` maps an effect's
    label to (size, power, standard error) points, and ``target`` draws the
    power aimed at."""
    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot()
    for i, (label, points) in enumerate(curves.items()):
        pts = sorted(points)
        x = np.array([p[0] for p in pts], dtype=float)
        y = np.array([p[1] for p in pts], dtype=float)
        se = np.array([p[2] for p in pts], dtype=float)
        lo, hi = np.clip(y - 1.96 * se, 0, 1), np.clip(y + 1.96 * se, 0, 1)
        ax.errorbar(x, y, yerr=[y - lo, hi - y], marker="o", capsize=3, label=_short(label, 40), color=f"C{i}")
    if target is not None:
        ax.axhline(target, color="#7f7f7f", linestyle="--", linewidth=1, label=f"target {target:g}")
    if xticklabels is not None:
        ax.set_xticks(np.arange(len(xticklabels)))
        ax.set_xticklabels([_short(t, 24) for t in xticklabels], rotation=20 if len(xticklabels) > 3 else 0, ha="right" if len(xticklabels) > 3 else "center")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("power (share of replicates detecting the effect)")
    ax.set_title(title)
    ax.grid(color="#e0e0e0", linewidth=0.6)
    ax.legend(loc="lower right")
    return to_svg(fig, prefix)
