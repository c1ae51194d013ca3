"""Reports of stored runs: one self-contained HTML file (inline CSS, plots as
inline SVG drawn with matplotlib), for one run or two runs compared.

``render_report(run, against=None)`` returns the HTML; ``write_report`` writes
it. The plot functions (``persona_exp.report.plots``) are generic and usable on
their own: kappa distributions, kappa and win-rate heatmaps, histograms,
interval plots, the population beside the census.
"""

from persona_exp.report.build import render_report, write_report

__all__ = ["render_report", "write_report"]
