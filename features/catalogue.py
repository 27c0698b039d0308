"""Feature registry and the generated feature catalogue (docs/FEATURES.md).

Every feature is one small pure function, named after what it measures, whose parameters
name the inputs it needs (raw columns or other nodes). Builders declare features with
:func:`feature`; intermediate nodes that are not model inputs (row-level masks, parsed
codes) with :func:`node`; raw columns exposed unchanged with :func:`passthrough`. The
registry is the single source of truth for the feature list, the docs and the pipeline's
column order.

Regenerate the docs with ``python -m features.catalogue > docs/FEATURES.md``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class FeatureSpec:
    """One registered feature.

    kind is "float" (float64, NaN = unknown) or "category" (pandas category with a fixed
    category list). inputs are the parameter names of the function (for a passthrough: the
    raw input of the same name).
    """

    name: str
    group: str
    meaning: str
    unit: str
    criterion: str
    kind: str
    function: Callable | None
    inputs: tuple[str, ...] = field(default=())


FEATURES: dict[str, FeatureSpec] = {}
NODES: dict[str, Callable] = {}


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if doc and doc.strip() else ""


def _params(fn: Callable) -> tuple[str, ...]:
    return tuple(inspect.signature(fn).parameters)


def feature(group: str, unit: str, criterion: str = "", kind: str = "float"):
    """Register the decorated function as a feature; its docstring's first line is its meaning."""

    def register(fn: Callable) -> Callable:
        name = fn.__name__
        if name in FEATURES or name in NODES:
            raise ValueError(f"feature {name!r} registered twice")
        FEATURES[name] = FeatureSpec(
            name, group, _first_line(fn.__doc__), unit, criterion, kind, fn, _params(fn)
        )
        return fn

    return register


def node(fn: Callable) -> Callable:
    """Register an intermediate node (computed on demand, not a model input)."""
    if fn.__name__ in FEATURES or fn.__name__ in NODES:
        raise ValueError(f"node {fn.__name__!r} registered twice")
    NODES[fn.__name__] = fn
    return fn


def passthrough(
    name: str, group: str, meaning: str, unit: str, criterion: str = ""
) -> None:
    """Register a raw input (e.g. fiscal year t-1 revenue) exposed unchanged as a feature."""
    if name in FEATURES:
        raise ValueError(f"feature {name!r} registered twice")
    FEATURES[name] = FeatureSpec(name, group, meaning, unit, criterion, "float", None, (name,))


def render_markdown(catalogue: pd.DataFrame, version: str) -> str:
    """Markdown page of the catalogue: one table per group, in registry order."""
    lines = [
        "# Feature catalogue",
        "",
        (f"Generated from `features/catalogue.py` registry (feature pipeline {version}); "
        "do not edit by hand: run `python -m features.catalogue > docs/FEATURES.md`."),
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
        f"{len(catalogue)} features.",
        "",
    ]
    for group, rows in catalogue.groupby("group", sort=False):
        lines += [f"## {group}", "", "| feature | meaning | unit | type | source | criterion |",
                  "|---|---|---|---|---|---|"]
        for r in rows.itertuples(index=False):
            cells = [f"`{r.name}`", r.meaning, r.unit, r.kind, r.source, r.criterion]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def catalogue_markdown() -> str:
    from features.pipeline import FEATURE_PIPELINE_VERSION, feature_catalogue

    return render_markdown(feature_catalogue(), FEATURE_PIPELINE_VERSION)


def write_catalogue(path: str | Path = "docs/FEATURES.md") -> Path:
    """Write the markdown catalogue to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(catalogue_markdown() + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover - exercised by the docs build
    sys.stdout.write(catalogue_markdown() + "\n")
