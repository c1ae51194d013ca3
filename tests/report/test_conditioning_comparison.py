"""The report shows persona-bench's comparison evaluation: the win-rate table
against the baseline mode, its forest plot, and the intersectional slices,
each row as the run stored it."""

from __future__ import annotations

import html
import re
from pathlib import Path

import polars as pl

from persona_exp.cli import main as cli
from persona_exp.report import render_report
from persona_exp.store import resolve_run

ROOT = Path(__file__).resolve().parents[2]


def _rows(text: str, name: str) -> list[list[str]]:
    part = text[text.index(f'<table data-table="{name}">'):]
    body = part[part.index("<tbody>"): part.index("</tbody>")]
    return [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_the_report_shows_the_comparison_and_its_slices(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = ["population.size=40", "experiment.n_personas=4", "experiment.n_questions=3", "experiment.comparison=true",
            "experiment.n_resamples=100", "experiment.slice_by=[[sex]]"]
    assert cli(["run", str(ROOT / "experiments" / "conditioning.yaml"), *[x for s in sets for x in ("--set", s)], "--no-progress"]) == 0
    info = resolve_run(tmp_path / ".persona-exp", "latest")
    table = pl.read_parquet(info.path / "conditioning_comparison.parquet")
    slices = pl.read_parquet(info.path / "conditioning_comparison_slices.parquet")
    assert table.height and slices.height
    text = render_report(info)
    rows = _rows(text, "conditioning_comparison")
    assert [r[table.columns.index("mode")] for r in rows] == table["mode"].to_list()
    assert [float(r[table.columns.index("win_rate")]) for r in rows] == [round(x, 3) for x in table["win_rate"].to_list()]
    assert 'data-plot="conditioning-comparison"' in text
    assert len(_rows(text, "conditioning_comparison_slices")) == min(slices.height, 40)
