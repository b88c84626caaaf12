"""What every report shares: Markdown and HTML tables, the self-contained HTML page, cells, plots.

The evaluation report (:mod:`rewardlab.evaluation.report`), the diagnostics report
(:mod:`rewardlab.diagnostics.report`) and the rlcheck report are built from these pieces: a cell
is formatted with :func:`fmt`, a table is :func:`md_table` or :func:`html_table`, a page is
:func:`html_page` (inline style and script: it opens offline) with figures embedded by
:func:`html_figure`; plots are drawn on :func:`pyplot` (Agg backend) and written with
:func:`save_figure`.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path
from typing import Any

#: The colours of the series (models, arms) in every plot, in order.
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (PNG files, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG (folders made, layout tightened) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot().close(fig)
    return path


def fmt(value: Any, spec: str = "{:.3f}") -> str:
    """One table cell; ``n/a`` for a missing value (``None`` or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if spec == "ci":
        return f"[{value[0]:.3f}, {value[1]:.3f}]"
    return spec.format(value)


def slug(name: str) -> str:
    """A file-name-safe form of a dataset name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown lines of a table."""
    return [_md_row(header), "|" + "---|" * len(header), *(_md_row(r) for r in rows), ""]


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto;max-width:100%}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}"
    "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}"
    "table.sortable th{cursor:pointer}table.sortable th:after{content:' \\2195';color:#999}"
    ".examples td{text-align:left;max-width:26em;overflow-wrap:anywhere}"
    ".full{white-space:pre-wrap;max-height:24em;overflow:auto}input.filter{width:20em;padding:4px}"
    "nav#toc{background:#f7f7f7;padding:0.5em 1em;border:1px solid #ddd}.missing{color:#a40}"
    "img{max-width:100%;display:block;margin:0.5em 0 1.5em}figcaption{color:#555}"
)
#: The report's only script, inline (the file opens offline): search boxes filter the rows of their
#: table; a click on a header of a sortable table sorts by that column (numbers as numbers).
SCRIPT = """
document.querySelectorAll('input.filter').forEach(function (box) {
  box.addEventListener('input', function () {
    var q = box.value.toLowerCase();
    document.getElementById(box.dataset.table).querySelectorAll('tbody tr').forEach(function (tr) {
      tr.style.display = tr.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
    });
  });
});
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.title = 'Click to sort';
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0], col = th.cellIndex, asc = th.dataset.dir !== 'asc';
    th.dataset.dir = asc ? 'asc' : 'desc';
    var key = function (tr) {
      var t = tr.cells[col] ? tr.cells[col].textContent.trim() : '', n = parseFloat(t.replace(/^\\[/, ''));
      return isNaN(n) ? t.toLowerCase() : n;
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    }).forEach(function (tr) { body.appendChild(tr); });
  });
});
"""


def html_table(header: list[str], rows: list[list[str]], sortable: bool = True) -> str:
    """An HTML table (cells escaped); sortable by a click on a header unless told otherwise."""
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    cls = " class='sortable'" if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_figure(caption: str, path: str, out: Path) -> str:
    """A figure whose PNG (``out / path``) is embedded as a base64 data URI."""
    data = base64.b64encode((out / path).read_bytes()).decode("ascii")
    return (
        f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def html_page(title: str, parts: list[str]) -> str:
    """A self-contained HTML document (inline style and script, no external resources).

    Every ``<h2>`` gets an id and an entry in the table of contents at the top.
    """
    heads: list[tuple[str, str]] = []

    def anchor(m: re.Match[str]) -> str:
        heads.append((f"s{len(heads) + 1}", m.group(1)))
        return f"<h2 id='{heads[-1][0]}'>{m.group(1)}</h2>"

    body = [re.sub(r"<h2>(.*?)</h2>", anchor, p) for p in parts]
    toc = "".join(f"<li><a href='#{i}'>{t}</a></li>" for i, t in heads)
    return "\n".join(
        [
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
            f"<nav id='toc'><strong>Contents</strong><ol>{toc}</ol></nav>" if heads else "",
            *body,
            f"<script>{SCRIPT}</script></body></html>",
        ]
    )
