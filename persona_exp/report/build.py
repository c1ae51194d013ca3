"""Assembling the report of a stored run (or of two runs, compared).

One run: its manifest summary, the headline table and the experiment's plots,
the population beside the census, and the resolved spec and metrics (folded).
Two runs (``against``): what changed (spec, plan, every metric of both runs
as each reported it with the change and its interval from
:func:`persona_exp.diff.diff_runs`, flipped judgments), then both runs side by side.

Plots per experiment kind (``data-plot`` names):

* loo: ``loo-kappa`` (per-persona kappas per attribute, PERSONA Fig. 5),
  ``loo-kappa-hist``;
* agreement: ``kappa-matrix`` (Fig. 6/8), ``kappa-hist``;
* dpf: ``dpf-verification``; conditioning: ``conditioning-accuracy``;
* wikipersona: ``wikipersona-win-rates`` (win-rate matrix of the prefixes);
* every run: ``population-census`` (Fig. 2) and ``population-tvd``;
* a comparison: ``diff-deltas``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from persona_exp.errors import DataError
from persona_exp.execute.runner import counts_line
from persona_exp.report import plots
from persona_exp.report.html import details, esc, figure, kv, note, page, section, table
from persona_exp.store import RunInfo, load_run

__all__ = ["render_report", "write_report"]



@dataclass
class _Run:
    info: RunInfo
    metrics: dict[str, Any]
    tables: dict[str, pl.DataFrame]
    tag: str | None = None  # "a" / "b" in a comparison
    label: str = ""

    @property
    def manifest(self) -> dict[str, Any]:
        return self.info.manifest

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", ""))

    @property
    def ref(self) -> str:
        return f"{self.info.experiment}/{self.info.run_id}"


def _load(info: RunInfo, tag: str | None = None, label: str = "") -> _Run:
    try:
        metrics, tables = load_run(info)
    except (OSError, ValueError) as exc:
        raise DataError(f"run {info.experiment}/{info.run_id} cannot be read from {info.path} ({exc}); is the run folder complete?") from None
    return _Run(info, metrics, tables, tag, label)


def _design(run: _Run) -> str:
    """What the run's intervals resample and what its marks mean (the lines of
    its headline title after the first); empty for runs stored before."""
    title = run.metrics.get("title")
    return " " + "; ".join(str(title).split("\n")[1:]) + "." if isinstance(title, str) and "\n" in title else ""


def _fmt_level(run: _Run) -> float:
    try:
        return float(run.metrics.get("level", 0.95))
    except (TypeError, ValueError):
        return 0.95


# --------------------------------------------------------------------------- overview


def _overview(run: _Run) -> str:
    m = run.manifest
    c = m.get("counts", {})
    models = ", ".join(f"{role}: {cfg.get('model')}" for role, cfg in m.get("models", {}).items())
    pop = m.get("population", {})
    rep = pop.get("report", {}) if isinstance(pop, dict) else {}
    filters = ", ".join(rep.get("filters", {}).get("applied", []) or []) if isinstance(rep.get("filters"), dict) else ""
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in m.get("timings", {}).items() if isinstance(v, (int, float)))
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())
    sim = any(str(cfg.get("model", "")).startswith("sim/") for cfg in m.get("models", {}).values())
    pairs = [
        ("experiment", f"{m.get('experiment')} ({run.kind})"),
        ("run", run.info.run_id),
        ("created", m.get("created")),
        ("description", m.get("spec", {}).get("description")),
        ("spec file", Path(str(m.get("spec_path", ""))).name if m.get("spec_path") else None),
        ("seed", m.get("seed")),
        ("spec hash / plan hash", f"{str(m.get('spec_hash', ''))[:12]} / {str(m.get('plan_hash', ''))[:12]}"),
        ("models", models),
        ("calls", counts_line(c)),  # the run's summary line, word for word
        ("tokens", f"{int(c.get('prompt_tokens', 0) or 0) + int(c.get('completion_tokens', 0) or 0):,}"),
        ("cost", f"${float(c.get('cost', 0) or 0):.4f}" + (f" (+{c['cost_unknown']} calls of unknown price)" if c.get("cost_unknown") else "")),
        ("population", f"{pop.get('size', '?')} personas from {rep.get('source', 'the configured source')}" + (f"; filters: {filters}" if filters else "")
         + _llm_steps(rep)),
        ("prompts", m.get("prompts", {}).get("count")),
        ("timings", timings),
        ("versions", versions),
    ]
    out = kv(pairs)
    if sim:
        out += note("The models are the offline simulator (<code>sim/...</code>): these numbers test the pipeline and say nothing about any real model.")
    for n in m.get("notes", []) or []:
        out += note(f"note: {esc(n)}")
    steps = c.get("by_step")
    if isinstance(steps, dict) and steps:
        out += table([{"step": s, **v} for s, v in steps.items()], caption="calls per step", name="calls-by-step")
    return out


# --------------------------------------------------------------------------- experiment results


def _loo(run: _Run) -> list[str]:
    t = run.tables
    out: list[str] = []
    head = t.get("loo_attributes")
    personas = t.get("loo_personas")
    if head is None or personas is None:
        return [note("This run has no leave-one-out tables (loo_attributes, loo_personas).")]
    level = _fmt_level(run)
    out.append(table(head, caption="Kappa per attribute, sorted by influence (lower kappa = the attribute changes the judge's choices more)." + _design(run),
                     name="loo_attributes"))
    ranking = run.metrics.get("ranking")
    if isinstance(ranking, dict) and ranking.get("sentence"):
        out.append(note(esc(str(ranking["sentence"]).capitalize()) + "."))
    order = head["attribute"].to_list()
    per = {a: personas.filter(pl.col("attribute") == a)["kappa"].cast(pl.Float64).to_list() for a in order}
    pooled = {r["attribute"]: (_f(r["kappa"]), _f(r["ci_low"]), _f(r["ci_high"])) for r in head.iter_rows(named=True)}
    undefined = sum(1 for v in personas["kappa"].to_list() if v is None or not math.isfinite(v))
    questions = run.manifest.get("spec", {}).get("experiment", {}).get("n_questions")
    caption = (
        "PERSONA Fig. 5 style. One row per attribute a<sub>i</sub>, most influential on top. For each persona, kappa is the agreement "
        f"over the {questions or ''} questions between the judge role-playing the persona with and without a<sub>i</sub>; "
        "the box shows the personas' kappas (quartiles, whiskers to 1.5 IQR), the points are the personas, and the red diamond is the "
        f"pooled kappa with its {level:.0%} bootstrap interval over the attribute's personas x questions."
    )
    if undefined:
        caption += f" {undefined} persona kappas are undefined (the judge picked the same answer for every question in both versions) and are left out; the y labels count them."
    out.append(figure("loo-kappa", plots.kappa_distribution(per, pooled, level=level), caption, run=run.tag))
    series: dict[str, list[float]] = {"all attributes": personas["kappa"].cast(pl.Float64).to_list()}
    if len(order) >= 2:
        series[f"most influential: {order[0]}"] = per[order[0]]
        series[f"least influential: {order[-1]}"] = per[order[-1]]
    out.append(figure("loo-kappa-hist", plots.kappa_histogram(series, title="Per-persona kappa, with vs without the attribute"),
                      "Histogram of the per-persona kappas of every attribute, with the most and least influential attribute outlined; dashed lines are medians.",
                      run=run.tag))
    out.append(note("No attribute x attribute kappa matrix is drawn: in this experiment each attribute is judged on its own sample of personas, "
                    "so two attributes share no judgments to compare."))
    return out


def _agreement(run: _Run) -> list[str]:
    t = run.tables
    out: list[str] = []
    if "agreement_pairs" in t:
        out.append(table(t["agreement_pairs"], caption="Cohen's kappa per pair of annotators." + _design(run), name="agreement_pairs"))
    wide = t.get("kappa_matrix")
    if wide is not None and "annotator" in wide.columns:
        names = wide["annotator"].to_list()
        matrix = wide.select([n for n in names if n in wide.columns]).to_numpy()
        out.append(figure("kappa-matrix", plots.kappa_heatmap(matrix, names, title="Cohen's kappa between annotators"),
                          "PERSONA Fig. 6/8 style: kappa of every pair of annotators over the items both labelled; the diagonal is each annotator with itself.",
                          run=run.tag))
    pk = t.get("persona_kappas")
    if pk is not None and pk.height:
        series = {f"{a} ~ {b}": g["kappa"].cast(pl.Float64).to_list() for (a, b), g in pk.group_by(["a", "b"], maintain_order=True)}
        out.append(figure("kappa-hist", plots.kappa_histogram(series, title="Per-persona kappa between annotators"),
                          "Distribution over personas of the kappa between two annotators (one outline per pair); dashed lines are medians.", run=run.tag))
    return out


def _dpf(run: _Run) -> list[str]:
    t = run.tables
    out: list[str] = []
    s = t.get("dpf_summary")
    if s is None:
        return [note("This run has no dpf_summary table.")]
    out.append(table(s, caption="Preference pairs per split, and how often the role-playing judge prefers the revision." + _design(run), name="dpf_summary"))
    judged = s.filter(pl.col("prefers_revision").is_not_nan()) if s["prefers_revision"].dtype.is_float() else s
    if judged.height:
        level = _fmt_level(run)
        out.append(figure("dpf-verification", plots.interval_plot(
            judged["split"].to_list(), judged["prefers_revision"].to_list(), judged["ci_low"].to_list(), judged["ci_high"].to_list(),
            title="Verification: share of pairs where the persona prefers the revision", xlabel="share preferring the revision (chosen)",
            reference=0.5, reference_label="no preference (0.5)", series_label=f"rate, {level:.0%} CI over personas x prompts", xlim=(0, 1)),
            "Per split, the rate at which the judge role-playing the persona picks the revision over the base answer.", run=run.tag))
    prefs = t.get("preferences")
    if prefs is not None and prefs.height:
        cols = [c for c in ("persona_id", "split", "prompt", "chosen", "rejected", "persona_prefers_chosen") if c in prefs.columns]
        out.append(table(prefs.select(cols), caption=f"First preference pairs (of {prefs.height:,})", limit=5, name="preferences"))
    return out


def _conditioning(run: _Run) -> list[str]:
    t = run.tables
    out: list[str] = []
    c = t.get("conditioning")
    if c is None:
        return [note("This run has no conditioning table.")]
    out.append(table(c, caption="Critic accuracy (share of answers that need no revision) per conditioning mode and critic." + _design(run), name="conditioning"))
    if c.height:
        level = _fmt_level(run)
        labels = [f"{m} / {k}" for m, k in zip(c["mode"], c["critic"])]
        out.append(figure("conditioning-accuracy", plots.interval_plot(
            labels, c["accuracy"].to_list(), c["ci_low"].to_list(), c["ci_high"].to_list(), title="Accuracy per conditioning mode and critic",
            xlabel="accuracy (share of answers the critic accepts)", series_label=f"accuracy, {level:.0%} CI", xlim=(0, 1)),
            "Higher is better; each interval resamples its row's units (the table's column over).", run=run.tag))
    if "conditioning_slices" in t:
        out.append(table(t["conditioning_slices"], caption="Accuracy by attribute-value slice", limit=40, name="conditioning_slices"))
    return out


def _wikipersona(run: _Run) -> list[str]:
    t = run.tables
    c = t.get("wikipersona_conditions")
    if c is None:
        return [note("This run has no wikipersona_conditions table.")]
    out = [table(c, caption="Win rate of each prefix condition against all others, judged by the persona (ties impossible)." + _design(run),
                 name="wikipersona_conditions")]
    m = t.get("wikipersona_matrix")
    if m is not None and m.height:
        names = c["condition"].to_list()
        index = {n: i for i, n in enumerate(names)}
        rates = np.full((len(names), len(names)), np.nan)
        counts = np.zeros((len(names), len(names)), dtype=np.int64)
        for r in m.iter_rows(named=True):
            if r["condition"] in index and r["opponent"] in index:
                rates[index[r["condition"]], index[r["opponent"]]] = r["win_rate"]
                counts[index[r["condition"]], index[r["opponent"]]] = r["games"]
        out.append(figure("wikipersona-win-rates", plots.win_rate_heatmap(rates, names, counts, title="Win rate of the row's prefix over the column's"),
                          "WikiPersonas Fig. 3 style, for prompting: each cell is how often the personal judge preferred the row's answer to the column's "
                          "on the same test question.", run=run.tag))
        out.append(table(m, caption="Pairwise win rates with bootstrap intervals over personas x questions", limit=60, name="wikipersona_matrix"))
    for name, caption in (("wikipersona_candidates", "Candidate filter per train question (sampled, kept, dropped and why)"),
                          ("wikipersona_question_filters", "Prompt filters on the generated question lists")):
        if name in t and t[name].height:
            out.append(table(t[name], caption=caption, limit=12, name=name))
    prefs = t.get("preferences")
    if prefs is not None and prefs.height:
        out.append(table(prefs.select("name", "question_type", "prompt", "chosen", "rejected"), caption=f"First preference pairs (of {prefs.height:,})", limit=5, name="preferences"))
    return out


KIND_SECTIONS: dict[str, Callable[[_Run], list[str]]] = {"loo": _loo, "agreement": _agreement, "dpf": _dpf, "conditioning": _conditioning, "wikipersona": _wikipersona}


def _results(run: _Run) -> str:
    builder = KIND_SECTIONS.get(run.kind)
    if builder is None:
        from persona_exp.experiments import HEADLINES

        name = HEADLINES.get(run.kind)
        parts = [table(run.tables[name], name=name)] if name in run.tables else [note(f"No plots for experiments of kind {esc(run.kind)!s}.")]
    else:
        parts = builder(run)
    return "".join(parts)


def _f(v: Any) -> float:
    try:
        return float("nan") if v is None else float(v)
    except (TypeError, ValueError):
        return float("nan")


# --------------------------------------------------------------------------- population


def _llm_steps(rep: Any) -> str:
    """What the population's language-model steps did, in a few words (population.report.llm)."""
    llm = rep.get("llm") if isinstance(rep, dict) else None
    if not isinstance(llm, dict):
        return ""
    out = []
    check, fields, people = llm.get("check"), llm.get("fields"), llm.get("people")
    try:
        if isinstance(check, dict):
            out.append(f"language-model consistency check by {check['model']}: {check['rejected']} of {check['checked']} rejected, "
                       f"{check['unanswered']} unanswered")
        if isinstance(fields, dict):
            out.append(f"open fields by {fields['model']}: {', '.join(fields['fields'])} ({fields['failed']} failed)")
        if isinstance(people, dict):
            out.append(f"people generated by {people['model']} for {', '.join(people['axes'])}")
    except (KeyError, TypeError):
        return ""
    return "".join(f"; {part}" for part in out)


def _population(run: _Run, *, heading_note: str = "") -> str:
    pop = run.manifest.get("population", {})
    rep = pop.get("report", {}) if isinstance(pop, dict) else {}
    entries = rep.get("representativeness") if isinstance(rep, dict) else None
    entries = [e for e in entries or [] if _entry_ok(e)]
    if not entries:
        return note("This run's manifest holds no representativeness report (population.report.representativeness), so the population cannot be compared with the census.")
    source = rep.get("source", "census")
    out = [heading_note] if heading_note else []
    out.append(note(f"{pop.get('size', '?')} personas drawn from: {esc(source)}. Census shares are weighted by person weight after the filters; "
                    "every persona counts once. Age is grouped into brackets and income into bands."))
    out.append(figure("population-tvd", plots.tvd_bars(entries),
                      "Total variation distance between the personas and the census, per attribute. Attributes with many rare values have a larger TVD at a given sample size.",
                      run=run.tag))
    out.append(figure("population-census", plots.population_vs_census(entries, source_label="census (weighted)"),
                      "PERSONA Fig. 2 style: for each census attribute, the share of personas in each category (blue) beside the census share (grey); "
                      "the largest census categories are shown, the rest pooled as \u201c(other values)\u201d.", run=run.tag))
    rows = [{"attribute": e["attribute"], "tvd": e["tvd"], "values": e["categories"],
             "largest category": e["distribution"][0]["value"] if e["distribution"] else None,
             "personas": e["distribution"][0]["sample"] if e["distribution"] else None,
             "census": e["distribution"][0]["source"] if e["distribution"] else None} for e in entries]
    out.append(table(rows, caption="TVD per attribute and the largest census category (shares)", name="representativeness"))
    return "".join(out)


def _entry_ok(e: Any) -> bool:
    """An attribute of a representativeness report as population.represent writes it."""
    try:
        return (isinstance(e["attribute"], str) and math.isfinite(float(e["tvd"])) and int(e["categories"]) >= 0
                and all(isinstance(r["value"], str) and math.isfinite(float(r["sample"])) and math.isfinite(float(r["source"])) for r in e["distribution"]))
    except (KeyError, TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- pages


def _simulated_banner(runs: list[_Run]) -> str:
    """A banner at the top of the page when any run used the simulator."""
    from persona_exp.store import SIMULATED, is_simulated

    sim = [r for r in runs if is_simulated(r.manifest)]
    if not sim:
        return ""
    which = "" if len(runs) == 1 else " (" + ", ".join(esc(r.ref) for r in sim) + ")"
    return (f'<p class="note" id="simulated-banner" style="border:2px solid var(--bad);padding:8px 12px;font-weight:bold">{esc(SIMULATED)}{which}: '
            "these numbers test the pipeline and say nothing about any real model.</p>")


SAMPLES_PER_STEP = 2  # calls shown per step in the report's "Sample calls" section


def _samples(run: _Run) -> str:
    """A few calls of each step as they were sent and answered (the
    transcripts table), so a reader sees what the judge saw and said; `show
    --calls` prints any of them."""
    import json

    calls, sent = run.tables.get("calls"), run.tables.get("transcripts")
    if calls is None or sent is None:
        return note("This run has no transcripts (it was stored by an older version); rerun it to record what each call was sent.")
    joined = calls.join(sent.select("key", "messages"), on="key", how="left")
    parts = [note(f"The first {SAMPLES_PER_STEP} calls of each step: the messages as sent (slots filled with the answers they read), "
                  f"the answer, how it was read. <code>persona-exp show {esc(run.info.run_id)} --calls --step STEP --persona ID</code> prints any call.")]
    for step in joined["step"].unique(maintain_order=True).to_list():
        for r in joined.filter(pl.col("step") == step).head(SAMPLES_PER_STEP).iter_rows(named=True):
            messages = json.loads(r["messages"]) if r["messages"] else []
            state = r["status"] + (f" ({r['reason']})" if r.get("reason") and r["status"] != "ok" else "")
            body = "".join(f"<p class=\"note\">{esc(m['role'])}</p><pre class=\"call\">{esc(m['content'])}</pre>" for m in messages)
            body += f"<p class=\"note\">answer</p><pre class=\"call\">{esc(r['text'] if r['text'] is not None else '(none)')}</pre>"
            if r["value"] is not None and r["value"] != r["text"]:
                body += f"<p class=\"note\">read as</p><pre class=\"call\">{esc(r['value'])}</pre>"
            if r["error"]:
                body += f"<p class=\"note warn\">{esc(r['error'])}</p>"
            parts.append(f'<details data-call="{esc(r["key"])}"><summary>{esc(step)} ({esc(r["role"])}, {esc(r["model"] or "-")}): {esc(state)}</summary>{body}</details>')
    return "".join(parts)


def _single(run: _Run) -> str:
    body = [
        _simulated_banner([run]),
        section("Overview", _overview(run), anchor="overview"),
        section("Results", _results(run), anchor="results"),
        section("Sample calls", _samples(run), anchor="samples"),
        section("Population beside the census", _population(run), anchor="population"),
        section("Details", details("resolved spec", run.manifest.get("spec", {})) + details("metrics.json", run.metrics)
                + table([{"table": k, "rows": v.height, "columns": v.width} for k, v in run.tables.items()], caption="stored tables", name="tables"),
                anchor="details"),
    ]
    m = run.manifest
    title = f"persona-exp report: {m.get('experiment')} / {run.info.run_id}"
    subtitle = str(m.get("spec", {}).get("description") or f"{run.kind} experiment")
    nav = [("overview", "Overview"), ("results", "Results"), ("samples", "Sample calls"), ("population", "Population"), ("details", "Details")]
    return page(title, subtitle, "".join(body), nav=nav, footer=_footer([run]))


def _diff_section(d: dict[str, Any]) -> str:
    from persona_exp.diff import legend, metric_cells

    out = [kv([("A (against)", d["a"]), ("B (this run)", d["b"]), ("values", "each run's own headline value and interval, as it reported them"),
               ("changes", legend(d))])]
    out += [note(f"<strong>Warning:</strong> {esc(w)}") for w in d.get("warnings", [])]
    out.append("<h3>Spec</h3>")
    out.append(table(d["spec"], caption="resolved spec fields that changed", name="diff-spec") if d["spec"] else note("No spec field changed."))
    p = d["plan"]
    out.append("<h3>Plan</h3>")
    out.append(note(f"{p['added']:,} calls added, {p['removed']:,} removed, {p['reused']:,} reused; {p['served_from_cache_in_b']:,} served from the cache in B."))
    if p.get("by_step"):
        out.append(table(p["by_step"], caption="calls per step", name="diff-plan"))
    out.append("<h3>Metrics</h3>")
    metrics = d.get("metrics") or []
    if metrics:
        rows = [{"metric": m["metric"], **dict(zip(("A", "B", "change (B \u2212 A)", "how"), metric_cells(m))), "adjusted p": m.get("p_adjusted"),
                 "flagged": bool(m["flagged"])} for m in metrics]
        out.append(table(rows, caption="every metric of both runs", name="diff-metrics", limit=200))
        drawn = [m for m in metrics if m["status"] == "compared" and m["low"] is not None and _f(m["low"]) == _f(m["low"])]
        if drawn:
            out.append(figure("diff-deltas", plots.interval_plot(
                [m["metric"] for m in drawn], [m["delta"] for m in drawn], [m["low"] for m in drawn], [m["high"] for m in drawn],
                title="Change per metric (B \u2212 A)", xlabel="delta (B \u2212 A)", reference=0.0, reference_label="no change",
                flagged=[bool(m["flagged"]) for m in drawn], series_label="delta with its interval"),
                "Red: the change survives the multiplicity correction. Each row's interval is paired or unpaired as the table's column how says; "
                "metrics without a usable interval are left out."))
    else:
        out.append(note("Neither run reported a headline metric."))
    f = d.get("flips", {})
    if f:
        out.append("<h3>Flipped judgments</h3>")
        out.append(note(f"{f.get('total', 0):,} of {f.get('shared', 0):,} shared judgments flipped."))
        if f.get("by_group"):
            out.append(table(f["by_group"], caption="flips per group", name="diff-flips", limit=30))
        if f.get("examples"):
            out.append("<ul>" + "".join(f"<li>{esc(e)}</li>" for e in f["examples"]) + "</ul>")
    return "".join(out)


def _column(run: _Run) -> str:
    return f"<div><h3>{esc(run.label)}: {esc(run.ref)}</h3>{_overview(run)}{_results(run)}</div>"


def _compare(a: _Run, b: _Run, d: dict[str, Any]) -> str:
    body = [
        _simulated_banner([a, b]),
        section("What changed", _diff_section(d), anchor="changes"),
        section("Side by side", f'<div class="columns">{_column(a)}{_column(b)}</div>', anchor="side-by-side"),
    ]
    key_a = a.manifest.get("population", {}).get("key")
    key_b = b.manifest.get("population", {}).get("key")
    if key_a and key_a == key_b:
        b_pop = _Run(b.info, b.metrics, b.tables, None, b.label)
        body.append(section("Population beside the census", _population(b_pop, heading_note=note("Both runs use the same population.")), anchor="population"))
    else:
        body.append(section("Population beside the census", f"<h3>{esc(a.label)}</h3>{_population(a)}<h3>{esc(b.label)}</h3>{_population(b)}", anchor="population"))
    body.append(section("Details", details(f"resolved spec of A ({a.ref})", a.manifest.get("spec", {})) + details(f"resolved spec of B ({b.ref})", b.manifest.get("spec", {})),
                        anchor="details"))
    title = f"persona-exp report: {b.ref} against {a.info.run_id}"
    nav = [("changes", "What changed"), ("side-by-side", "Side by side"), ("population", "Population"), ("details", "Details")]
    return page(title, f"{b.kind} experiment, two runs compared", "".join(body), nav=nav, footer=_footer([a, b]))


def _footer(runs: list[_Run]) -> str:
    from persona_exp import __version__

    return esc(f"persona-exp {__version__}; runs: " + ", ".join(r.ref for r in runs) + ". Self-contained file: no scripts, no external resources.")


def render_report(run: RunInfo, against: RunInfo | None = None, *, n_resamples: int = 1000, seed: int = 0) -> str:
    """The HTML of the report of ``run``; with ``against``, of ``run`` compared
    with ``against`` (deltas are run minus against)."""
    if against is None:
        return _single(_load(run))
    from persona_exp.diff import diff_runs

    d = diff_runs(against, run, n_resamples=n_resamples, seed=seed)
    a = _load(against, "a", "A (against)")
    b = _load(run, "b", "B (this run)")
    return _compare(a, b, d)


def write_report(path: str | Path, html: str) -> Path:
    """Writes the report atomically (temporary file, then rename)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise DataError(f"cannot write the report to {path}: folder {path.parent} does not exist.")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write the report to {path} ({exc.strerror or exc}).") from None
    return path
