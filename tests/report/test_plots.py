"""The plot functions on synthetic data: SVG structure, labels, values, and
the win-rate matrix arithmetic."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pytest

from persona_exp import stats
from persona_exp.report import plots

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def text_positions(svg: str) -> dict[str, float]:
    root = ET.fromstring(svg)
    return {"".join(t.itertext()): float(t.get("y")) for t in root.iter(f"{SVG}text")}


def test_kappa_heatmap_of_a_synthetic_kappa_matrix():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 120)
    labels = np.vstack([np.where(rng.random(120) < q, truth, 1 - truth) for q in (0.95, 0.8, 0.6, 0.9)])
    labels[2, 60:] = -1
    labels[3, :60] = -1  # annotators 2 and 3 share no item: their kappa is NaN
    m = stats.kappa_matrix(labels, k=2)
    assert math.isnan(m[2, 3])
    names = ["judge_a", "judge_b", "judge_c", "human"]
    svg = plots.kappa_heatmap(m, names, title="Synthetic agreement")
    t = texts(svg)
    assert "Synthetic agreement" in t and "annotator" in t and "Cohen's kappa (1 = perfect, 0 = chance)" in t
    assert all(t.count(n) >= 2 for n in names)  # row and column labels
    for i in range(4):
        for j in range(4):
            assert ("n/a" if math.isnan(m[i, j]) else f"{m[i, j]:.2f}") in t


def test_win_rate_matrix_arithmetic():
    a = ["A", "A", "B", "A", "C"]
    b = ["B", "B", "A", "C", "B"]
    o = [1, 0.5, 1, 1, 0]
    names, rates, counts = plots.win_rate_matrix(a, b, o)
    assert names == ["A", "B", "C"]  # A and B tie at 2.5 of 4, then by name
    nan = float("nan")
    np.testing.assert_allclose(rates, [[nan, 0.5, 1.0], [0.5, nan, 1.0], [0.0, 0.0, nan]])
    np.testing.assert_array_equal(counts, [[0, 3, 1], [3, 0, 1], [1, 1, 0]])


def test_win_rate_matrix_is_complementary_on_random_games():
    rng = np.random.default_rng(5)
    players = list("ABCDE")
    a = rng.choice(players, 400)
    b = np.array([rng.choice([p for p in players if p != x]) for x in a])
    o = rng.choice([0.0, 0.5, 1.0], 400)
    names, rates, counts = plots.win_rate_matrix(a, b, o)
    met = counts > 0
    np.testing.assert_allclose((rates + rates.T)[met], 1.0)
    assert np.isnan(np.diag(rates)).all() and counts.sum() == 2 * 400
    svg = plots.win_rate_heatmap(rates, names, counts)
    t = texts(svg)
    assert "opponent (column)" in t and "contestant (row)" in t and "win rate of the row (ties count half)" in t
    assert any(s.startswith(f"{rates[0, 1]:.2f}") for s in t)


def test_win_rate_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="length"):
        plots.win_rate_matrix(["A"], ["B", "C"], [1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plots.win_rate_matrix(["A"], ["B"], [2])


def test_kappa_distribution_orders_rows_and_counts_undefined():
    per = {"religion": [0.1, 0.2, float("nan")], "sex": [0.5, 0.6, 0.7], "age": [0.9, 1.0, 0.8]}
    pooled = {"religion": (0.15, 0.0, 0.3), "sex": (0.6, 0.5, 0.7), "age": (0.9, 0.8, 1.0)}
    svg = plots.kappa_distribution(per, pooled)
    pos = text_positions(svg)
    assert pos["religion (1 n/a)"] < pos["sex"] < pos["age"]  # first (most influential) on top
    t = texts(svg)
    assert any(s.startswith("Cohen's kappa") for s in t) and "attribute" in t
    assert any("pooled kappa, 95% cluster-bootstrap CI" in s for s in t)


def test_histogram_interval_and_population_plots_are_labelled():
    t = texts(plots.kappa_histogram({"all": [0.1, 0.4, 0.5, float("nan")], "one": [0.2]}, title="H"))
    assert "H" in t and "Cohen's kappa" in t and "share of values per bin" in t
    assert any(s.startswith("all (n=3") for s in t)
    t = texts(plots.interval_plot(["x", "y"], [0.1, -0.2], [-0.1, -0.3], [0.3, -0.1], title="I", xlabel="delta",
                                  reference=0.0, reference_label="no change", flagged=[False, True]))
    assert {"I", "delta", "no change", "interval excludes the reference"} <= set(t)
    entries = [{"attribute": "income", "tvd": 0.05, "categories": 2,
                "distribution": [{"value": "$25,000 to $49,999", "sample": 0.6, "source": 0.5}, {"value": "No income", "sample": 0.4, "source": 0.5}]}]
    t = texts(plots.population_vs_census(entries))
    assert "$25,000 to $49,999" in t  # data, not TeX
    assert "income (TVD 0.050, 2 values)" in t and "personas" in t and "census" in t
    t = texts(plots.tvd_bars(entries))
    assert "total variation distance (0 = identical, 1 = disjoint)" in t


def test_svg_ids_are_unique_per_plot_and_references_resolve():
    svgs = [plots.kappa_histogram({"x": [0.1, 0.5]}), plots.kappa_histogram({"x": [0.1, 0.5]})]
    id_sets = []
    for svg in svgs:
        assert not svg.startswith("<?xml") and "<metadata" not in svg
        ids = set(re.findall(r'\bid="([^"]+)"', svg))
        for ref in re.findall(r'(?:href="#|url\(#)([^")]+)', svg):
            assert ref in ids
        id_sets.append(ids)
    assert not (id_sets[0] & id_sets[1])


def test_plotting_leaves_global_matplotlib_state_alone():
    before = dict(matplotlib.rcParams)
    plots.kappa_histogram({"x": [0.1, 0.5]})
    assert dict(matplotlib.rcParams) == before
