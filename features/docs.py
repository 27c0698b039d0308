"""The generated feature catalogue, docs/FEATURES.md, rendered from the registry.

Regenerate the docs with ``python -m features.docs > docs/FEATURES.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

REGENERATE = "python -m features.docs > docs/FEATURES.md"


def _cell(value) -> str:
    return str(value).replace("|", "\\|")


def render_markdown(catalogue: pd.DataFrame) -> str:
    """Markdown page of the catalogue: one table per group, in registry order.

    The page carries no pipeline version: FEATURE_PIPELINE_VERSION is a hash of the
    sources, and the page would go stale at every edit of them.
    """
    lines = [
        "# Feature catalogue",
        "",
        (f"Generated from the `features/catalogue.py` registry; do not edit by hand: run "
         f"`{REGENERATE}`. The feature pipeline version "
         "(`features.pipeline.FEATURE_PIPELINE_VERSION`) is a hash of the sources that "
         "compute these features."),
        "",
        ("As-of year *t*: every feature uses only data known by the end of *t−1* — financials "
         "of fiscal years *t−1* to *t−4*, patents by their dates up to *t−1*-12-31, "
         "certifications announced in years before *t*. Firm attributes (province, industry "
         "code, ownership, listing) are static in the data contract and taken as given."),
        "",
        ("`float` features are float64 with NaN = unknown (missing is never zero); `category` "
         "features have fixed category lists so train and score frames share codes. "
         "Suffixes: `_prev` = fiscal year *t−2*. Ratios with a zero denominator are NaN."),
        "",
        ("*pillar*: the explanation pillar the feature's SHAP value is summed into "
         "(`models.explain.PILLARS`); *label* / *标签*: the short names shown on plots and "
         "in reasons (`features.labels.feature_label`)."),
        "",
        f"{len(catalogue)} features.",
        "",
    ]
    header = ["feature", "label", "标签", "pillar", "meaning", "unit", "type", "source",
              "criterion"]
    for group, rows in catalogue.groupby("group", sort=False):
        lines += [f"## {group}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        for r in rows.itertuples(index=False):
            cells = [f"`{r.name}`", r.label_en, r.label_zh, r.pillar, r.meaning, r.unit, r.kind,
                     r.source, r.criterion]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def catalogue_markdown() -> str:
    """The markdown of the current registry."""
    from features.labels import feature_catalogue

    return render_markdown(feature_catalogue())


def write_catalogue(path: str | Path = "docs/FEATURES.md") -> Path:
    """Write the markdown catalogue to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(catalogue_markdown() + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover - exercised by the docs build
    sys.stdout.write(catalogue_markdown() + "\n")
