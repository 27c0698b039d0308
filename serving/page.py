"""The look shared by giantwatch's HTML pages (the audit report, the firm page): one style
sheet, tables and embedded PNG images, so a page is one self-contained file."""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC",sans-serif;
margin:0 auto;max-width:1180px;padding:1.2em 2em;color:#1d2330;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.1em}h2{border-bottom:2px solid #c8102e;padding-bottom:.2em;
margin-top:2em}h3{margin-top:1.4em}table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #d5d9e0;padding:.25em .55em;text-align:right;vertical-align:top}
th{background:#eef1f5}td.text,th.text{text-align:left}img{max-width:100%;height:auto}
.note{color:#555;font-size:.9em}.card{border:1px solid #d5d9e0;border-radius:6px;
padding:.6em 1em;margin:1em 0;background:#fafbfc}.flags{color:#c8102e;font-weight:600}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.contents{border:1px solid #d5d9e0;border-radius:6px;padding:.4em 1em;display:inline-block}
.contents ul{margin:.3em 0;padding-left:1.2em}
"""


def percent(p: float) -> str:
    """A probability as people read it: "91.4%", or "< 0.1%" rather than a rounded 0."""
    return f"{p:.1%}" if p >= 0.001 else "< 0.1%"


def png_img(fig: plt.Figure, dpi: int = 80) -> str:
    """`fig` as an <img> with the PNG embedded (base64); the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def html_table(frame: pd.DataFrame, text_columns=(), floats: str = "{:.3f}") -> str:
    """`frame` as an HTML table: `text_columns` left-aligned, floats by `floats`, integers
    with thousands separators (years without)."""
    head = "".join(f'<th class="{"text" if c in text_columns else ""}">{html.escape(str(c))}</th>'
                   for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row):
            if isinstance(value, (float, np.floating)):
                text = "" if np.isnan(value) else floats.format(value)
            elif isinstance(value, (int, np.integer)):
                text = str(value) if column == "year" else f"{value:,}"
            else:
                text = str(value)
            cls = ' class="text"' if column in text_columns else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
