"""Reports opened in a real headless browser (Chromium): no console errors,
nothing fetched, every plot present with drawn content and axis text, and a
screenshot that is not blank. Skipped when no Chromium binary is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from persona_exp import stats
from persona_exp.report import plots
from persona_exp.report.html import figure, page

SINGLE_PLOTS = {"loo-kappa", "loo-kappa-hist", "prompt-topics", "population-census", "population-tvd"}


def assert_not_blank(png: Path, coloured: float = 0.0003) -> None:
    """Not blank: varied, with ink on at least 2% of the page, many colours,
    and at least the share ``coloured`` of saturated (plot-coloured) pixels."""
    from matplotlib.image import imread

    img = imread(png)
    rgb = img[..., :3].astype(float)
    if rgb.max() > 1.0:  # 8-bit data
        rgb = rgb / 255.0
    assert img.shape[0] >= 500 and img.shape[1] >= 500, img.shape
    assert rgb.std() > 0.05, f"screenshot looks uniform (std {rgb.std():.4f})"
    ink = (rgb.min(axis=2) < 0.85).mean()
    assert ink > 0.02, f"only {ink:.2%} of the pixels are not near-white"
    q = (rgb * 255).astype(np.uint32)
    colours = np.unique((q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2])
    assert len(colours) > 50, f"only {len(colours)} distinct colours"
    saturated = ((rgb.max(axis=2) - rgb.min(axis=2)) > 0.3).mean()
    assert saturated > coloured, f"only {saturated:.3%} coloured pixels: the plots did not render"


def assert_clean(loaded) -> None:
    assert loaded.errors == [], loaded.errors
    assert loaded.console == [], loaded.console
    assert loaded.resources == [], f"the page fetched {loaded.resources}"


def assert_drawn(fig: dict, *texts: str) -> None:
    name = fig["plot"]
    assert fig["width"] > 150 and fig["height"] > 100, (name, fig["width"], fig["height"])
    assert fig["bbox"][0] > 100 and fig["bbox"][1] > 50, (name, fig["bbox"])
    assert fig["shapes"] > 10, (name, fig["shapes"])
    joined = "\n".join(fig["texts"])
    for t in texts:
        assert t in joined, f"{name}: {t!r} not among its texts"


def test_single_report_in_browser(reports, browser, tmp_path):
    loaded = browser.load(reports.single)
    assert_clean(loaded)
    figs = {f["plot"]: f for f in loaded.figures}
    assert set(figs) == SINGLE_PLOTS and len(loaded.figures) == len(SINGLE_PLOTS)
    assert_drawn(figs["loo-kappa"], "age", "sex", "religion", "Cohen's kappa", "attribute", "Leave-one-out", "pooled kappa", "one persona")
    assert_drawn(figs["loo-kappa-hist"], "Cohen's kappa", "share of values per bin", "all attributes", "most influential")
    assert_drawn(figs["population-census"], "age (TVD", "sex (TVD", "personas", "census (weighted)", "share", "Population beside the census")
    assert_drawn(figs["population-tvd"], "total variation distance", "Representativeness per attribute", "attribute")
    assert_drawn(figs["prompt-topics"], "Prompt topics", "share of the prompts")
    assert_not_blank(browser.screenshot(reports.single, tmp_path / "single.png"))


def test_diff_report_in_browser(reports, runs, browser, tmp_path):
    loaded = browser.load(reports.diff)
    assert_clean(loaded)
    names = [(f["plot"], f["run"]) for f in loaded.figures]
    assert ("diff-deltas", None) in names
    for plot in ("loo-kappa", "loo-kappa-hist"):  # side by side: once per run
        assert (plot, "a") in names and (plot, "b") in names
    assert sum(1 for n, _ in names if n == "population-census") == 1  # both runs share their population
    figs = {(f["plot"], f["run"]): f for f in loaded.figures}
    assert_drawn(figs[("diff-deltas", None)], "kappa[religion]", "kappa[age]", "delta (B \u2212 A)", "no change")
    for tag in ("a", "b"):
        assert_drawn(figs[("loo-kappa", tag)], "religion", "Cohen's kappa")
    assert runs.a in loaded.title and runs.b in loaded.title
    assert_not_blank(browser.screenshot(reports.diff, tmp_path / "diff.png", size="1280,2600"))


def test_synthetic_heatmaps_in_browser(browser, tmp_path):
    """The generic heatmaps (kappa matrix of the agreement experiment, win rates) render cleanly too."""
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 200)
    labels = np.vstack([np.where(rng.random(200) < q, truth, 1 - truth) for q in (0.95, 0.85, 0.7)])
    names = ["judge_a", "judge_b", "human"]
    players = ["p1", "p2", "p3", "p4"]
    a = rng.choice(players, 300)
    b = np.array([rng.choice([p for p in players if p != x]) for x in a])
    order, rates, counts = plots.win_rate_matrix(a, b, (rng.random(300) < 0.5).astype(float))
    body = figure("kappa-matrix", plots.kappa_heatmap(stats.kappa_matrix(labels, k=2), names), "synthetic kappa matrix")
    body += figure("win-rate", plots.win_rate_heatmap(rates, order, counts), "synthetic win rates")
    path = tmp_path / "synthetic.html"
    path.write_text(page("synthetic", "generic plots", body), encoding="utf-8")
    loaded = browser.load(path)
    assert_clean(loaded)
    figs = {f["plot"]: f for f in loaded.figures}
    assert_drawn(figs["kappa-matrix"], "judge_a", "human", "1.00", "annotator", "Cohen's kappa (1 = perfect, 0 = chance)")
    assert_drawn(figs["win-rate"], "p1", "p4", "n=", "opponent (column)", "contestant (row)", "win rate of the row (ties count half)")
    assert_not_blank(browser.screenshot(path, tmp_path / "synthetic.png", size="900,1400"), coloured=0.05)  # the heatmaps' cells


def test_the_probe_sees_errors(browser, tmp_path):
    """The checks above are not vacuous: a page with a script error, a console
    error and an external image is caught by each of them, and its screenshot is blank."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><title>bad</title></head><body><p>x</p><img src="http://127.0.0.1:9/a.png">'
                   '<script>notDefined();</script><script>console.error("boom")</script></body></html>', encoding="utf-8")
    loaded = browser.load(bad)
    assert any("notDefined" in e for e in loaded.errors) and any("boom" in e for e in loaded.errors)
    assert any("Uncaught" in line for line in loaded.console)
    assert loaded.resources == ["http://127.0.0.1:9/a.png"]
    assert loaded.figures == []
    with pytest.raises(AssertionError):  # and a page with next to nothing on it counts as blank
        assert_not_blank(browser.screenshot(bad, tmp_path / "bad.png", size="800,600"))
