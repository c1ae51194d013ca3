"""`persona-exp report`: one self-contained HTML file per run or per comparison
(checked here without a browser; see test_browser.py for the rendering)."""

from __future__ import annotations

import json
import re

import polars as pl

from persona_exp.report import render_report
from persona_exp.store import resolve_run


def _plots(text: str) -> list[tuple[str, str | None, str]]:
    """(data-plot, data-run, inner html) of every plot figure."""
    out = []
    for m in re.finditer(r'<figure class="plot" data-plot="([^"]+)"(?: data-run="([^"]+)")?>(.*?)</figure>', text, re.S):
        out.append((m.group(1), m.group(2), m.group(3)))
    return out


def assert_self_contained(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>")
    lowered = text.lower()
    for needle in ("<script", "<link", "<iframe", "<img", " src=", "@import", "url(http", "url(//"):
        assert needle not in lowered, f"{needle!r} in the report"
    # Every reference inside the SVGs points into the document itself.
    for ref in re.findall(r'(?:href|xlink:href)="([^"]*)"', text):
        assert ref.startswith("#"), ref
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "duplicate element ids across the inlined plots"
    for ref in re.findall(r'(?:href="#|url\(#)([^")]+)', text):
        assert ref in ids, f"dangling reference #{ref}"


def test_single_report_is_self_contained_with_plots_and_tables(reports, runs):
    text = reports.single.read_text(encoding="utf-8")
    assert_self_contained(text)
    plots = _plots(text)
    assert sorted(p for p, _, _ in plots) == ["loo-kappa", "loo-kappa-hist", "population-census", "population-tvd", "prompt-topics"]
    for name, _, inner in plots:
        assert "<svg" in inner and "<text" in inner and "<figcaption>" in inner, name
    # The manifest summary and the headline table, in the order of influence.
    assert runs.b in text and "sim/judge" in text and "offline simulator" in text
    head = pl.read_parquet(runs.folder(runs.b) / "loo_attributes.parquet")
    table = text[text.index('data-table="loo_attributes"'):]
    positions = [table.index(f'">{a}</td>') for a in head["attribute"]]
    assert positions == sorted(positions)


def test_diff_report_shows_both_runs_and_the_deltas(reports, runs):
    text = reports.diff.read_text(encoding="utf-8")
    assert_self_contained(text)
    plots = _plots(text)
    assert ("diff-deltas", None) in [(p, r) for p, r, _ in plots]
    assert {r for p, r, _ in plots if p == "loo-kappa"} == {"a", "b"}
    assert runs.a in text and runs.b in text
    assert "models.judge.sim.effects.religion" in text  # the one spec change
    for attr in ("age", "sex", "religion"):
        assert f"kappa[{attr}]" in text


def test_agreement_report_has_the_kappa_matrix(runs):
    info = resolve_run(runs.store, runs.agreement)
    text = render_report(info)
    plots = {p: inner for p, _, inner in _plots(text)}
    assert {"kappa-matrix", "kappa-hist", "population-census", "population-tvd"} <= set(plots)
    wide = pl.read_parquet(runs.folder(runs.agreement) / "kappa_matrix.parquet")
    for name in wide["annotator"]:
        assert f">{name}</text>" in plots["kappa-matrix"]
    assert "Cohen&#x27;s kappa" in plots["kappa-matrix"] or "Cohen's kappa" in plots["kappa-matrix"]


def test_report_cli_errors_and_default_name(runs, cli):
    r = cli(runs.root, "report", "no-such-run")
    assert r.returncode == 2 and "no stored run matches" in r.stderr and "Traceback" not in r.stderr
    r = cli(runs.root, "report", runs.a, "--against", runs.agreement)
    assert r.returncode == 2 and "different experiments" in r.stderr and "Traceback" not in r.stderr
    r = cli(runs.root, "report", runs.a, "-o", runs.root / "missing-folder" / "r.html")
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert not list(runs.root.glob("report-*.html"))


def test_metrics_in_the_report_match_the_run(reports, runs):
    text = reports.single.read_text(encoding="utf-8")
    metrics = json.loads((runs.folder(runs.b) / "metrics.json").read_text())
    for attr, m in metrics["kappa"].items():
        assert f"{m['estimate']:.3f}" in text, attr


def test_single_report_shows_sample_calls_as_sent_and_answered(reports, runs):
    import html as html_lib

    text = reports.single.read_text(encoding="utf-8")
    section = text[text.index('<section id="samples">'):]
    section = section[: section.index("</section>")]
    calls = pl.read_parquet(runs.folder(runs.b) / "calls.parquet")
    sent = pl.read_parquet(runs.folder(runs.b) / "transcripts.parquet")
    shown = re.findall(r'<div class="call-card" data-call="([0-9a-f]+)"', section)
    judge = next(k for k in shown if k in set(calls.filter(pl.col("step") == "judge")["key"]))
    row = calls.filter(pl.col("key") == judge).row(0, named=True)
    messages = json.loads(sent.filter(pl.col("key") == judge)["messages"][0])
    block = section[section.index(f'data-call="{judge}"'):]
    block = html_lib.unescape(block[: block.index('<div class="call-card"', 1) if '<div class="call-card"' in block[1:] else len(block)])
    # The judge's prompt exactly as sent (collapsed), and its raw answer.
    assert "the messages as sent" in block and messages[-1]["content"] in block and f"<pre class=\"call\">{row['text']}</pre>" in block
    # Up to three calls of every step, all different.
    per_step = calls.group_by("step").len()
    assert len(shown) == len(set(shown)) == sum(min(3, n) for n in per_step["len"])
