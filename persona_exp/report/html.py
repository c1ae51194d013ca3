"""HTML building blocks for the self-contained report: escaping, tables,
plot figures, key-value lists and the page with its inline style sheet.

Nothing here loads anything from elsewhere: no scripts, no fonts, no images
by URL. Plots are inline SVG inside ``<figure class="plot" data-plot=NAME>``.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any, Iterable, Mapping, Sequence

import polars as pl

__all__ = ["details", "esc", "figure", "kv", "note", "page", "section", "table", "text_block"]


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def _cell(v: Any) -> str:
    if v is None:
        return '<span class="na">-</span>'
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return '<span class="na">n/a</span>'
        return f"{v:,.3f}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    text = str(v)
    if len(text) > 160:
        return f'<span title="{esc(text)}">{esc(text[:157])}\u2026</span>'
    return esc(text)


def table(frame: pl.DataFrame | Sequence[Mapping[str, Any]], *, caption: str | None = None, limit: int = 60, name: str | None = None,
          links: Sequence[str | None] | None = None) -> str:
    """An HTML table of a frame (or a list of row dicts); numbers right-aligned,
    floats to 3 decimals, at most ``limit`` rows with a note on the rest.
    ``links`` (one in-page anchor or None per shown row) adds an "example"
    column linking each row to an item of the page."""
    if not isinstance(frame, pl.DataFrame):
        frame = pl.DataFrame(list(frame)) if frame else pl.DataFrame()
    attrs = f' data-table="{esc(name)}"' if name else ""
    if frame.width == 0:
        return f'<p class="empty"{attrs}>(empty table)</p>'
    numeric = [frame[c].dtype.is_numeric() for c in frame.columns]
    head = "".join(f'<th class="{"num" if n else ""}">{esc(c)}</th>' for c, n in zip(frame.columns, numeric))
    if links is not None:  # first: a wide table scrolls, and the link stays in view
        head = "<th>example</th>" + head
    body = []
    for i, row in enumerate(frame.head(limit).iter_rows()):
        cells = "".join(f'<td class="{"num" if n else ""}">{_cell(v)}</td>' for v, n in zip(row, numeric))
        if links is not None:
            anchor = links[i] if i < len(links) else None
            cells = (f'<td><a href="#{esc(anchor)}">{esc(anchor.replace("-", " "))}</a></td>' if anchor else '<td class="na">-</td>') + cells
        body.append(f"<tr>{cells}</tr>")
    more = f'<p class="more">\u2026 {frame.height - limit:,} more rows not shown</p>' if frame.height > limit else ""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<div class="table-wrap"><table{attrs}>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{more}'


def figure(name: str, svg: str, caption: str, *, run: str | None = None) -> str:
    """A plot: ``<figure class="plot" data-plot=NAME [data-run=RUN]>`` with the SVG and a caption."""
    run_attr = f' data-run="{esc(run)}"' if run else ""
    return f'<figure class="plot" data-plot="{esc(name)}"{run_attr}>{svg}<figcaption>{caption}</figcaption></figure>'


def kv(pairs: Iterable[tuple[str, Any]]) -> str:
    """A definition list of label / value (values are escaped)."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs if v is not None and v != "")
    return f'<dl class="kv">{items}</dl>'


def details(summary: str, obj: Any) -> str:
    """A collapsed block with an object as pretty JSON."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    return f"<details><summary>{esc(summary)}</summary><pre>{esc(text)}</pre></details>"


LONG_TEXT = 700  # characters; a longer text (a persona, an answer) is shown collapsed, its start as the summary


def text_block(text: Any, *, limit: int = LONG_TEXT) -> str:
    """A text as written (escaped, whitespace kept); a long one collapsed in
    <details> so that a page of many items stays readable."""
    text = "(none)" if text is None else str(text)
    pre = f'<pre class="call">{esc(text)}</pre>'
    if len(text) <= limit and text.count("\n") < 12:
        return pre
    start = " ".join(text[:120].split())
    return f'<details class="long"><summary>{esc(start)}\u2026 ({len(text):,} characters)</summary>{pre}</details>'


def note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def section(title: str, body: str, *, anchor: str | None = None, level: int = 2) -> str:
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section{ident}><h{level}>{esc(title)}</h{level}>{body}</section>"


_CSS = """
:root { --fg: #1b1f24; --muted: #5a6470; --line: #d8dee4; --bg: #ffffff; --panel: #f6f8fa; --accent: #1f5fa8; --bad: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 64px; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif;
       color: var(--fg); background: var(--bg); }
header { border-bottom: 2px solid var(--line); margin-bottom: 16px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 8px; }
.subtitle { color: var(--muted); margin: 0 0 12px; }
nav { margin: 8px 0 12px; } nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
.note { color: var(--muted); font-size: 13px; max-width: 70em; }
.warn { color: var(--bad); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 12px; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: 8px 0; }
table { border-collapse: collapse; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: left; vertical-align: top; }
th { background: var(--panel); position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.na { color: var(--muted); }
.more { color: var(--muted); font-size: 12px; margin: 0 0 8px; }
/* A plot keeps its natural size (never upscaled), shrinks to fit, and its caption wraps to the plot's width. */
figure.plot { display: table; margin: 14px 0 22px; }
figure.plot svg { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
figure.plot svg * { stroke-linejoin: round; stroke-linecap: butt; }
figcaption { display: table-caption; caption-side: bottom; color: var(--muted); font-size: 13px; padding: 6px 2px 0; }
details { margin: 8px 0; } summary { cursor: pointer; color: var(--accent); }
pre { background: var(--panel); padding: 10px; overflow-x: auto; font-size: 12px; max-height: 480px; }
pre.call { white-space: pre-wrap; overflow-wrap: anywhere; max-width: 90em; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 28px; align-items: start; }
.columns > div { min-width: 0; }
.flag { color: var(--bad); font-weight: 600; }
.item { border-left: 3px solid var(--line); padding: 2px 0 2px 14px; margin: 14px 0 22px; }
.item:target { border-left-color: var(--accent); }
.item h4 { margin: 4px 0 6px; font-size: 14px; }
.call-card { margin: 8px 0 14px; }
.call-head { font-weight: 600; margin: 6px 0 2px; }
dl.fields { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 14px; margin: 4px 0; }
dl.fields dt { color: var(--muted); padding-top: 10px; } dl.fields dd { margin: 0; min-width: 0; }
dl.fields pre { margin: 4px 0; }
dl.fields dd.verdict { font-weight: 600; padding-top: 10px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print { body { padding: 0; } figure.plot { break-inside: avoid; } }
"""


def page(title: str, subtitle: str, body: str, *, nav: Sequence[tuple[str, str]] = (), footer: str = "") -> str:
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><p class="subtitle">{esc(subtitle)}</p>'
        + (f"<nav>{links}</nav>" if links else "")
        + f"</header><main>{body}</main>"
        + (f"<footer>{footer}</footer>" if footer else "")
        + "</body></html>\n"
    )
