"""The HTML page of a power study (`persona-exp power --html FILE`): the power
curves with Monte-Carlo error bars, the per-design table and the calibration
of metric-scale effects. It reads the study's JSON-ready result only, so the
report needs nothing from the simulation code."""

from __future__ import annotations

import math
from typing import Any

from persona_exp.report import html, plots

BANNER = "SIMULATED: every figure on this page comes from the offline simulator with planted effects; it says nothing about any real model."


def _axis(result: dict[str, Any]) -> tuple[str, list[float] | None, list[str]]:
    """The x axis: the one grid path that varies (its values), else the designs in order."""
    designs = result["designs"]
    varying = [k for k in (designs[0]["design"] if designs else {}) if len({str(d["design"].get(k)) for d in designs}) > 1]
    labels = [d["label"] for d in designs]
    if len(varying) == 1:
        return varying[0], [float(d["design"][varying[0]]) for d in designs], labels
    return "design", None, labels


def _fmt(v: Any) -> Any:
    return round(v, 3) if isinstance(v, float) and math.isfinite(v) else v


def render(result: dict[str, Any]) -> str:
    """One self-contained HTML page."""
    xlabel, xs, labels = _axis(result)
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for i, d in enumerate(result["designs"]):
        for name, v in d["power"].items():
            curves.setdefault(name, []).append((xs[i] if xs else float(i), v["power"], v["mc_se"]))
    body = html.note(f'<span class="flag">{html.esc(BANNER)}</span>')
    facts = [("spec", result["spec"]), ("experiment", f"{result['experiment']} ({result['kind']})"), ("path", result["method"]),
             ("replicates per design", result["reps"]), ("tests", f"{result['multiplicity']} at {1 - result['level']:g}"),
             ("unplanted attributes' effect", result["default_effect"]),
             ("effects", ", ".join(e["label"] + (f" (simulator {e['sim_size']:.3g})" if e["sim_size"] is not None else "") for e in result["effects"]) or "none"),
             ("recommended", result["recommended"] or f"no design reaches {result['target']:g}")]
    body += html.section("Study", html.kv(facts), anchor="study")
    if curves:
        svg = plots.power_curve(curves, xlabel=xlabel, target=result["target"], xticklabels=None if xs else labels)
        body += html.section("Power curves", html.figure("power", svg, "SIMULATED power per design with 95% Monte-Carlo error bars "
                                                         f"({result['reps']} replicates per design); dashed: the target."), anchor="curves")
    table_rows = []
    for d in result["designs"]:
        row: dict[str, Any] = {"design": d["label"], "calls": d["calls"], "cost_usd": _fmt(d["cost_usd"])}
        for name, v in d["power"].items():
            row[f"power[{name}]"] = _fmt(v["power"])
            row[f"mc_se[{name}]"] = _fmt(v["mc_se"])
            row[f"width[{name}]"] = _fmt(v["mean_width"])
        for label, v in (d.get("metric_values") or {}).items():
            row[f"observed[{label}]"] = _fmt(v["mean"])
            row[f"observed_mc_se[{label}]"] = _fmt(v["mc_se"])
        if d.get("false_positive_rate") is not None:
            row["false_pos_per_test"] = _fmt(d["false_positive_rate"])
            row["false_pos_mc_se"] = _fmt(d["false_positive_rate_se"])
            row["any_false_pos"] = _fmt(d["familywise_false_positive"])
            row["any_false_pos_mc_se"] = _fmt(d["familywise_false_positive_se"])
            if "flagged_rate" in d:  # leave-one-out: flags either way on the unplanted attributes
                row["flagged_per_test"] = _fmt(d["flagged_rate"])
        row["reaches_target"] = d["reaches_target"]
        table_rows.append(row)
    cost = result["designs"][0].get("cost_note") if result["designs"] else ""
    null = ("SIMULATED null arm: false positives are counted on every design's replicates run again (same seeds and judge draws) with "
            "in a world where nothing is planted (every judge's effects, default effect and quality term at 0): the share of its (replicate, metric) tests that survive the correction and the "
            "share of its replicates with at least one.") if result.get("null_arm") else ""
    body += html.section("Designs", html.table(table_rows, caption="SIMULATED power, false positives and interval widths per design")
                         + (html.note(html.esc(null)) if null else "") + (html.note(html.esc(cost)) if cost else ""), anchor="designs")
    for c in result["calibration"]:
        what = c.get("value_is", "kappa gap: its kappa minus the mean of the others'")
        where = (f" ({c['draws']} replicates of a small design per row: "
                 + ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in c["design"].items()) + ")") if c.get("design") else ""
        body += html.section(f"Calibration of {c['attribute']}", html.table([{k: _fmt(v) for k, v in p.items()} for p in c["curve"]],
                             caption=f"SIMULATED: the simulator's effect and the value it gives: {what}{where}")
                             + html.note(html.esc(f"{c['effect']} maps to the simulator effect {c['sim_size']:.3f} (on {c.get('metric', '')}).")),
                             anchor=f"cal-{c['attribute']}")
    body += html.section("Notes", "".join(html.note(html.esc(n)) for n in result["notes"]), anchor="notes")
    return html.page(result["title"], BANNER, body, nav=[("curves", "Power curves"), ("designs", "Designs"), ("notes", "Notes")])
