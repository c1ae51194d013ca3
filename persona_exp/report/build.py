"""Assembling the report of a stored run (or of two runs, compared).

One run: its manifest summary, the headline table and the experiment's plots,
examples (each row of the result tables links to an item of the design with
its values, shown as a reader audits it: persona, question, the answers
compared, the verdict), a few sample items of every step, the population
beside the census, and the resolved spec and metrics (folded).
Two runs (``against``): what changed (spec, plan, every metric of both runs
as each reported it with the change and its interval from
:func:`persona_exp.diff.diff_runs`, flipped judgments), then both runs side by side.

Plots per experiment kind (``data-plot`` names):

* loo: ``loo-kappa`` (per-persona kappas per attribute, PERSONA Fig. 5),
  ``loo-kappa-hist``;
* agreement: ``kappa-matrix`` (Fig. 6/8), ``kappa-hist``;
* dpf: ``dpf-verification``; conditioning: ``conditioning-accuracy``;
* wikipersona: ``wikipersona-win-rates`` (win-rate matrix of the prefixes);
* every run: ``population-census`` (Fig. 2) and ``population-tvd``; with
  topics on its prompts, ``prompt-topics`` (Fig. 3);
* a comparison: ``diff-deltas``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import polars as pl

from persona_exp.errors import DataError
from persona_exp.execute.runner import counts_line
from persona_exp.report import plots
from persona_exp.report.html import details, esc, figure, kv, note, page, section, table, text_block
from persona_exp.steps.templates import fill, template_fields
from persona_exp.store import RunInfo, load_run

__all__ = ["render_report", "write_report"]



@dataclass
class _Run:
    info: RunInfo
    metrics: dict[str, Any]
    tables: dict[str, pl.DataFrame]
    tag: str | None = None  # "a" / "b" in a comparison
    label: str = ""
    audit: _Audit | None = None  # a single run's report: its tables link to the items of its design

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


def _table(run: _Run, frame: pl.DataFrame, *, caption: str | None = None, limit: int = 60, name: str | None = None, link: bool = True) -> str:
    """A table of the run; in a single run's report, each row links to an
    item of the design with its values (shown in the Examples section)."""
    links = run.audit.links(frame, limit) if link and run.audit is not None else None
    return table(frame, caption=caption, limit=limit, name=name, links=links)


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
    out.append(_table(run, head, caption="Kappa per attribute, sorted by influence (lower kappa = the attribute changes the judge's choices more)." + _design(run),
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
        out.append(_table(run, t["agreement_pairs"], caption="Cohen's kappa per pair of annotators." + _design(run), name="agreement_pairs"))
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
    out.append(_table(run, s, caption="Preference pairs per split, and how often the role-playing judge prefers the revision." + _design(run), name="dpf_summary"))
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
        out.append(_table(run, prefs.select(cols), caption=f"First preference pairs (of {prefs.height:,})", limit=5, name="preferences"))
    return out


def _conditioning(run: _Run) -> list[str]:
    t = run.tables
    out: list[str] = []
    c = t.get("conditioning")
    if c is None:
        return [note("This run has no conditioning table.")]
    out.append(_table(run, c, caption="Critic accuracy (share of answers that need no revision) per conditioning mode and critic." + _design(run), name="conditioning"))
    if c.height:
        level = _fmt_level(run)
        labels = [f"{m} / {k}" for m, k in zip(c["mode"], c["critic"])]
        out.append(figure("conditioning-accuracy", plots.interval_plot(
            labels, c["accuracy"].to_list(), c["ci_low"].to_list(), c["ci_high"].to_list(), title="Accuracy per conditioning mode and critic",
            xlabel="accuracy (share of answers the critic accepts)", series_label=f"accuracy, {level:.0%} CI", xlim=(0, 1)),
            "Higher is better; each interval resamples its row's units (the table's column over).", run=run.tag))
    if "conditioning_slices" in t:
        out.append(_table(run, t["conditioning_slices"], caption="Accuracy by attribute-value slice", limit=40, name="conditioning_slices"))
    return out + _conditioning_comparison(run)


def _conditioning_comparison(run: _Run) -> list[str]:
    """persona-bench's comparison evaluation: each mode's answer against the
    baseline mode's in the critic's pairwise judgments (win rate, tested
    against 0.5), overall and per intersectional slice."""
    t, out = run.tables, []
    c = t.get("conditioning_comparison")
    if c is None or not c.height:
        return out
    against = c["against"][0] if "against" in c.columns else "the baseline mode"
    out.append(_table(run, c, caption=f"Comparison: share of pairwise judgments (the critic role-playing the persona) preferring each mode's answer "
                      f"to mode {against}'s; p_adjusted and survives: the test against 0.5 after the run's multiplicity correction; chose_a: share "
                      "of judgments for position A (a position-bias check)", name="conditioning_comparison", link=False))
    level = _fmt_level(run)
    out.append(figure("conditioning-comparison", plots.interval_plot(
        c["mode"].to_list(), c["win_rate"].to_list(), c["ci_low"].to_list(), c["ci_high"].to_list(), title=f"Win rate against mode {against}",
        xlabel=f"share of judgments preferring the mode's answer to mode {against}'s", reference=0.5, reference_label="no preference (0.5)",
        flagged=[bool(s) for s in c["survives"].to_list()] if "survives" in c.columns else None, series_label=f"win rate, {level:.0%} CI", xlim=(0, 1)),
        "Red: the win rate differs from 0.5 after the multiplicity correction; each interval resamples its row's units (the table's column over).",
        run=run.tag))
    s = t.get("conditioning_comparison_slices")
    if s is not None and s.height:
        out.append(_table(run, s, caption="Comparison win rates by intersectional slice, each with its interval and test (slices are their own family)",
                          limit=40, name="conditioning_comparison_slices", link=False))
    return out


def _wikipersona(run: _Run) -> list[str]:
    t = run.tables
    c = t.get("wikipersona_conditions")
    if c is None:
        return [note("This run has no wikipersona_conditions table.")]
    out = [_table(run, c, caption="Win rate of each prefix condition against all others, judged by the persona (ties impossible)." + _design(run),
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
        out.append(_table(run, m, caption="Pairwise win rates with bootstrap intervals over personas x questions", limit=60, name="wikipersona_matrix"))
    for name, caption in (("wikipersona_candidates", "Candidate filter per train question (sampled, kept, dropped and why)"),
                          ("wikipersona_question_filters", "Prompt filters on the generated question lists")):
        if name in t and t[name].height:
            out.append(_table(run, t[name], caption=caption, limit=12, name=name))
    out.extend(_wikipersona_paper_tables(run))
    prefs = t.get("preferences")
    if prefs is not None and prefs.height:
        # Preference pairs come from the train questions; the design's items are test comparisons, so no row names one.
        out.append(_table(run, prefs.select("name", "question_type", "prompt", "chosen", "rejected"), caption=f"First preference pairs (of {prefs.height:,})",
                          limit=5, name="preferences", link=False))
    return out


def _wikipersona_paper_tables(run: _Run) -> list[str]:
    """The paper's results in its form: Table 2 (each prefix's ROUGE-1 against
    the gold persona, against a random person's, and its length), Table 3 (the
    pairwise win rates in percent, row over column, with the row's average),
    preference accuracy on held-out pairs (Figure 3's measure; random guess
    0.5) and ROUGE of the answers against the held-out chosen answer."""
    t, out = run.tables, []
    pre = t.get("wikipersona_prefixes")
    if pre is not None and pre.height:
        def pm(m: str, sd: str, digits: int) -> pl.Expr:
            return pl.format("{} ± {}", pl.col(m).round(digits), pl.col(sd).round(digits))
        table2 = pre.select("condition", pm("rouge1", "rouge1_sd", 2).alias("R1"), pm("rouge1_random", "rouge1_random_sd", 2).alias("R1 (random)"),
                            pm("words", "words_sd", 0).alias("# words"), "personas")
        out.append(_table(run, table2, caption="Paper Table 2: ROUGE-1 of each prefix against the person's gold persona, against a random other "
                          "person's gold persona, and its length in words (mean ± sd over personas)", name="wikipersona_prefixes", link=False))
    m, c = t.get("wikipersona_matrix"), t.get("wikipersona_conditions")
    if m is not None and m.height and c is not None:
        names = [n for n in c["condition"].to_list()]
        pct = {(r["condition"], r["opponent"]): r["win_rate"] for r in m.iter_rows(named=True)}
        rows = []
        for a in names:
            row: dict[str, Any] = {"condition": a}
            for b in names:
                v = pct.get((a, b))
                row[b] = "-" if a == b else ("" if v is None or not math.isfinite(v) else f"{100 * v:.0f}")
            w = c.filter(pl.col("condition") == a)["win_rate"]
            row["Avg."] = f"{100 * w[0]:.0f}" if w.len() and w[0] is not None and math.isfinite(w[0]) else ""
            rows.append(row)
        out.append(_table(run, pl.DataFrame(rows), caption="Paper Table 3 form: pairwise win rate (%) of the row's prefix over the column's; "
                          "Avg. is the row's win rate against all others (intervals in the matrix table above)", name="wikipersona_table3", link=False))
    acc = t.get("wikipersona_accuracy")
    if acc is not None and acc.height:
        out.append(_table(run, acc, caption="Preference accuracy on held-out pairs: how often the judge, told only the prefix, picks the answer "
                          "the person chose (random guess: 0.5; p_value against 0.5, p_adjusted and survives after the run's multiplicity correction over the conditions)", name="wikipersona_accuracy", link=False))
    rg = t.get("wikipersona_rouge")
    if rg is not None and rg.height:
        out.append(_table(run, rg, caption="ROUGE-1 and ROUGE-L (F) of each condition's answers against the held-out chosen answer, with "
                          "intervals over personas x questions; rouge1_rejected: against the rejected answer", name="wikipersona_rouge", link=False))
    return out


KIND_SECTIONS: dict[str, Callable[[_Run], list[str]]] = {"loo": _loo, "agreement": _agreement, "dpf": _dpf, "conditioning": _conditioning, "wikipersona": _wikipersona}


def _results(run: _Run) -> str:
    builder = KIND_SECTIONS.get(run.kind)
    if builder is None:
        from persona_exp.experiments import HEADLINES

        name = HEADLINES.get(run.kind)
        parts = [_table(run, run.tables[name], name=name)] if name in run.tables else [note(f"No plots for experiments of kind {esc(run.kind)!s}.")]
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
    missing = [e for e in entries or [] if isinstance(e, dict) and e.get("tvd") is None and e.get("missing")]
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
    if missing:  # no data is not a match: named, with why
        out.append(note("Not compared, no data in the source: " + "; ".join(f"{esc(e['attribute'])} ({esc(e['missing'])})" for e in missing) + "."))
    return "".join(out)


def _prompt_topics(run: _Run) -> str:
    """PERSONA Fig. 3: how the run's prompts spread over topics (prompt sets
    with a topic column: PRISM's clusters, the embedded questions' themes)."""
    prompts = run.tables.get("prompts")
    if prompts is None or "topic" not in prompts.columns or prompts.height == 0:
        return note("The run's prompts carry no topic, so there is no topic distribution.")
    counts = prompts.select(pl.col("topic").fill_null("(no topic)")).group_by("topic").len().sort(["len", "topic"], descending=[True, False])
    rows = [(str(t), int(n)) for t, n in counts.iter_rows()]
    fig = figure("prompt-topics", plots.topic_bars(rows),
                 f"PERSONA Fig. 3 style: the {prompts.height} prompts of this run by topic (count and share).", run=run.tag)
    return fig + table([{"topic": t, "prompts": n, "share": round(n / prompts.height, 4)} for t, n in rows], caption="prompts per topic", name="prompt-topics")


def _entry_ok(e: Any) -> bool:
    """An attribute of a representativeness report as population.represent writes it."""
    try:
        return (isinstance(e["attribute"], str) and math.isfinite(float(e["tvd"])) and int(e["categories"]) >= 0
                and all(isinstance(r["value"], str) and math.isfinite(float(r["sample"])) and math.isfinite(float(r["source"])) for r in e["distribution"]))
    except (KeyError, TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- items a reader audits


SAMPLES_PER_STEP = 3  # calls shown per step in "Sample items per step"
EXAMPLES_MAX = 100  # design items the tables may link to: a large run's report stays small
# A table column that is not in the design but names the value of one of these design columns
# (wikipersona: a condition is the first or the second answer of a comparison).
ALIASES: dict[str, tuple[str, ...]] = {"condition": ("first", "second"), "opponent": ("first", "second")}
FIELD_LABELS = {"response_a": "answer A", "response_b": "answer B"}


@dataclass(frozen=True)
class _Field:
    """One filled field of a call's prompt; ``source`` is the step whose answer filled it."""

    name: str
    text: str
    source: str | None = None

    @property
    def label(self) -> str:
        label = FIELD_LABELS.get(self.name, self.name.replace("_", " "))
        return f"{label} (from {self.source})" if self.source else label


def _template_reader(template: str) -> tuple[list[str], re.Pattern[str], int]:
    """The fields of a template, a regex reading them back from a message the
    template rendered (a field used twice holds the same text both times), and
    the length of its fixed text (the most specific template is tried first)."""
    names = template_fields(template)
    marked = fill(template, {n: f"\x00{n}\x00" for n in names})
    parts: list[str] = []
    seen: set[str] = set()
    for i, piece in enumerate(marked.split("\x00")):
        if i % 2 == 0:
            parts.append(re.escape(piece))
        elif piece in seen:
            parts.append(f"(?P={piece})")
        else:
            seen.add(piece)
            parts.append(f"(?P<{piece}>.*?)")
    return names, re.compile("".join(parts), re.S), len(fill(template, {n: "" for n in names}))


def _messages(raw: Any) -> list[dict[str, Any]]:
    try:
        messages = json.loads(raw) if raw else []
    except (TypeError, ValueError):
        return []
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


class _Audit:
    """A run's calls, transcripts and design, read for what a reader audits: a
    few calls of each step, and the design items its tables link to. A call's
    prompt is split back into the fields its template filled (persona,
    question, answers A and B...), and an answer that filled a field is named
    by the step that wrote it (the transcripts' inputs)."""

    def __init__(self, run: _Run):
        t = run.tables
        self.run = run
        # Rows are read on demand by key: a large run holds 10^5 calls and their prompts.
        self._calls = t.get("calls")
        self._sent = t.get("transcripts")
        self.stored = self._sent is not None
        self._call_rows = {k: i for i, k in enumerate(self._calls["key"].to_list())} if self._calls is not None else {}
        self._sent_rows = {k: i for i, k in enumerate(self._sent["key"].to_list())} if self._sent is not None else {}
        design = t.get("design")
        self.design = design.with_row_index("_item") if design is not None and design.height else None
        spec = run.manifest.get("spec", {}).get("experiment", {})
        templates = [v for k, v in spec.items() if k.endswith("_template") and isinstance(v, str)] if isinstance(spec, dict) else []
        self.readers = sorted((_template_reader(v) for v in templates), key=lambda r: -r[2])
        self.items: dict[int, None] = {}  # design rows linked from the tables, in order of first link

    # ------------------------------------------------------------------ one call

    def call(self, key: Any) -> dict[str, Any] | None:
        """The calls-table row of a call (answer, parsed value, status...)."""
        i = self._call_rows.get(key) if isinstance(key, str) else None
        return None if i is None or self._calls is None else self._calls.row(i, named=True)

    def sent(self, key: str) -> dict[str, Any]:
        """The transcripts row of a call (messages as sent, inputs, re-asks); empty if not stored."""
        i = self._sent_rows.get(key)
        return {} if i is None or self._sent is None else self._sent.row(i, named=True)

    def fields(self, key: str) -> list[_Field]:
        """The fields of the call's prompt as its template filled them; empty
        when no template of the spec reads its message (or nothing was stored)."""
        sent = self.sent(key)
        inputs = list(sent.get("inputs") or [])
        for m in reversed(_messages(sent.get("messages"))):
            content = str(m.get("content", ""))
            for names, pattern, _ in self.readers:
                hit = pattern.fullmatch(content)
                if hit:
                    return [_Field(n, hit.group(n), self._source(hit.group(n), inputs)) for n in names]
        return []

    def _source(self, text: str, inputs: list[str]) -> str | None:
        for k in inputs:
            c = self.call(k)
            if c is not None and text in (c["value"], c["text"]):
                return str(c["step"])
        return None

    def card(self, key: str, title: str = "", *, shown: list[_Field] | None = None, sent: bool = False) -> str:
        """A call as a researcher reads it: its prompt's fields, then the
        verdict (a judgment: parsed value and raw answer) or the answer; with
        ``sent``, also the messages exactly as sent (collapsed)."""
        r = self.call(key)
        if r is None:
            return note(f"Call {esc(key)} is not in the run's calls table.")
        fields = self.fields(key)
        shown = fields if shown is None else shown
        state = str(r["status"]) + (f" ({r['reason']})" if r.get("reason") and r["status"] != "ok" else "") + (", lenient" if r.get("lenient") else "")
        facts = ["cached" if r.get("cached") else "sent"]
        reasks = self.sent(key).get("reasks")
        if reasks:
            facts.append(f"{reasks} re-asks")
        if isinstance(r.get("attempts"), int) and r["attempts"] > 1:
            facts.append(f"{r['attempts']} attempts")
        if isinstance(r.get("latency_ms"), (int, float)) and r["latency_ms"] == r["latency_ms"]:
            facts.append(f"{r['latency_ms']:,.0f} ms")
        head = (f"{esc(title)}: " if title else "") + f"{esc(r['step'])} ({esc(r['role'])}, {esc(r.get('model') or '-')}): {esc(state)}; {esc(', '.join(facts))}"
        rows = "".join(f"<dt>{esc(f.label)}</dt><dd>{text_block(f.text)}</dd>" for f in shown)
        if {"response_a", "response_b"} <= {f.name for f in fields}:
            rows += f'<dt>verdict</dt><dd class="verdict">{esc(_verdict(r["value"], fields))}</dd><dt>raw answer</dt><dd>{text_block(r["text"])}</dd>'
        else:
            rows += f"<dt>answer</dt><dd>{text_block(r['text'])}</dd>"
            if r["value"] is not None and r["value"] != r["text"]:
                rows += f"<dt>read as</dt><dd>{text_block(r['value'])}</dd>"
        if r.get("error"):
            rows += f'<dt>error</dt><dd class="warn">{esc(r["error"])}</dd>'
        extra = ""
        if sent:
            messages = _messages(self.sent(key).get("messages"))
            extra = ("<details><summary>the messages as sent</summary>"
                     + "".join(f'<p class="note">{esc(m.get("role"))}</p><pre class="call">{esc(m.get("content"))}</pre>' for m in messages)
                     + "</details>") if messages else ""
        return f'<div class="call-card" data-call="{esc(key)}"><p class="call-head">{head}</p><dl class="fields">{rows}</dl>{extra}</div>'

    # ------------------------------------------------------------------ sample items per step

    def samples(self) -> str:
        if self._calls is None:
            return note("This run has no calls table.")
        if not self.stored:
            return note("This run has no transcripts (it was stored by an older version), so what each call was sent is unknown; "
                        "rerun it to record them. Its answers are in the calls table.")
        by_step: dict[str, list[str]] = {}
        for k, step in zip(self._calls["key"].to_list(), self._calls["step"].to_list()):
            by_step.setdefault(str(step), []).append(k)
        parts = [note(f"Up to {SAMPLES_PER_STEP} calls of each step, evenly spaced in the run's order: the fields of the prompt (persona, question, "
                      "the answers it compares, named by the step that wrote them), the verdict or answer, and the messages exactly as sent. "
                      f"<code>persona-exp show {esc(self.run.info.run_id)} --calls --step STEP --persona ID</code> prints any call.")]
        for step, keys in by_step.items():
            n = min(SAMPLES_PER_STEP, len(keys))
            parts.append(f"<h3>{esc(step)}</h3>" + note(f"{n} of {len(keys):,} calls"))
            parts += [self.card(keys[i * len(keys) // n], sent=True) for i in range(n)]
        return "".join(parts)

    # ------------------------------------------------------------------ links from tables to design items

    def links(self, frame: pl.DataFrame, limit: int) -> list[str | None] | None:
        """Per shown row of a table, the anchor of the first design item with
        the row's identifying values (columns the design has too, ALIASES;
        with columns a and b naming two judges, an item where they disagree if
        any); None when no row names an item."""
        d = self.design
        if d is None:
            return None
        shared = [c for c in frame.columns if c in d.columns and not c.endswith("_key") and frame[c].dtype == d[c].dtype
                  and (frame[c].dtype.is_integer() or frame[c].dtype in (pl.String, pl.Categorical, pl.Boolean))]
        aliased = [c for c in frame.columns if c not in d.columns and c in ALIASES and all(a in d.columns for a in ALIASES[c])]
        pair = "a" in frame.columns and "b" in frame.columns
        if not (shared or aliased or pair):
            return None
        out = [self._link(row, shared, aliased, pair) for row in frame.head(limit).iter_rows(named=True)]
        return out if any(out) else None

    def _link(self, row: dict[str, Any], shared: list[str], aliased: list[str], pair: bool) -> str | None:
        d = self.design
        assert d is not None
        conds = [pl.col(c) == row[c] for c in shared if row[c] is not None]
        conds += [pl.any_horizontal([pl.col(a) == str(row[c]) for a in ALIASES[c]]) for c in aliased if row[c] is not None]
        judges = [f"{row['a']}_key", f"{row['b']}_key"] if pair else []
        judged = len(judges) == 2 and all(k in d.columns for k in judges)
        if not conds and not judged:
            return None
        matched = d.filter(*conds) if conds else d
        if matched.height == 0:
            return None
        index = int(matched["_item"][0])
        if judged:
            index = next((int(i) for i, ka, kb in zip(matched["_item"], matched[judges[0]], matched[judges[1]]) if self._differ(ka, kb)), index)
        if index in self.items:
            return f"item-{index}"
        if len(self.items) >= EXAMPLES_MAX:
            return None
        self.items[index] = None
        return f"item-{index}"

    def _differ(self, a: Any, b: Any) -> bool:
        va, vb = ((self.call(k) or {}).get("value") for k in (a, b))
        return va is not None and vb is not None and va != vb

    def examples(self) -> str:
        if self.design is None:
            return note("This run has no design table, so its tables link to no items.")
        if not self.items:
            return note("No row of the tables above names an item of this run's design.")
        parts = [note(f"The items the tables above link to ({len(self.items)}, at most {EXAMPLES_MAX}): for each row, the first item of the design "
                      "with the row's values (a pair of judges: the first item where they disagree). Fields the item's calls share are shown once.")]
        if not self.stored:
            parts.append(note("This run has no transcripts (it was stored by an older version): the items show the answers, not what each call was sent."))
        return "".join(parts) + "".join(self.item(i) for i in self.items)

    def item(self, index: int) -> str:
        """A design item: its identifying values, then the calls that read the
        others (a judgment shows the answers it read), with the fields they
        share shown once (LOO: the persona differs, the answers do not)."""
        assert self.design is not None
        row = self.design.row(index, named=True)
        ident = " \u00b7 ".join(f"{c} {v}" for c, v in row.items() if c != "_item" and not c.endswith("_key") and v is not None
                 and not isinstance(v, float) and len(str(v)) <= 80)
        keys: dict[str, str] = {}
        for c, v in row.items():
            if c.endswith("_key") and isinstance(v, str) and v in self._call_rows and v not in keys:
                keys[v] = c.removesuffix("_key")
        read = self._reads(keys)
        top = [(label, k) for k, label in keys.items() if k not in read]
        fields = {k: self.fields(k) for _, k in top}
        shared = [f for f in fields[top[0][1]] if all(f in fields[k] for _, k in top[1:])] if len(top) > 1 else []
        body = ('<dl class="fields">' + "".join(f"<dt>{esc(f.label)}</dt><dd>{text_block(f.text)}</dd>" for f in shared) + "</dl>") if shared else ""
        body += "".join(self.card(k, label, shown=[f for f in fields[k] if f not in shared]) for label, k in top)
        if not top:
            body = note("None of this item's calls is in the run's calls table.")
        return f'<div class="item" id="item-{index}"><h4>item {index}: {esc(ident)}</h4>{body}</div>'

    def _reads(self, keys: Iterable[str]) -> set[str]:
        """Every call the given calls read, directly or through others."""
        seen: set[str] = set()
        todo = list(keys)
        while todo:
            for k in self.sent(todo.pop()).get("inputs") or []:
                if k not in seen:
                    seen.add(k)
                    todo.append(k)
        return seen


def _verdict(value: Any, fields: list[_Field]) -> str:
    """The parsed verdict, and whose answer it prefers when the prompt says so."""
    if value is None:
        return "(none: the answer was not read as a verdict)"
    by_name = {f.name: f for f in fields}
    chosen = by_name.get(f"response_{str(value).lower()}")
    return f"{value}: the answer from {chosen.source}" if chosen is not None and chosen.source else str(value)


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


def _single(run: _Run) -> str:
    run.audit = _Audit(run)
    body = [
        _simulated_banner([run]),
        section("Overview", _overview(run), anchor="overview"),
        section("Results", _results(run), anchor="results"),  # registers the items its tables link to
        section("Examples", run.audit.examples(), anchor="examples"),
        section("Sample items per step", run.audit.samples(), anchor="samples"),
        section("Prompts", _prompt_topics(run), anchor="prompts"),
        section("Population beside the census", _population(run), anchor="population"),
        section("Details", details("resolved spec", run.manifest.get("spec", {})) + details("metrics.json", run.metrics)
                + table([{"table": k, "rows": v.height, "columns": v.width} for k, v in run.tables.items()], caption="stored tables", name="tables"),
                anchor="details"),
    ]
    m = run.manifest
    title = f"persona-exp report: {m.get('experiment')} / {run.info.run_id}"
    subtitle = str(m.get("spec", {}).get("description") or f"{run.kind} experiment")
    nav = [("overview", "Overview"), ("results", "Results"), ("examples", "Examples"), ("samples", "Sample items"), ("prompts", "Prompts"), ("population", "Population"),
           ("details", "Details")]
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
