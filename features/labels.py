"""What each feature is called and read from: the catalogue of every feature (base and
rule features) with its pillar, English and Chinese labels, meaning, unit and the raw
columns it is computed from, and the labels the explanations, reports and API show.

Read from the feature registry (features.catalogue) and the pipeline's graph of nodes
(features.pipeline): no feature value is decided here.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import pandas as pd

from features.catalogue import FEATURES
from features.pipeline import FIRM_INPUTS, FUNCTIONS, PARAMS, PATENT_INPUTS, split_lag
from features.rule_features import rule_feature_catalogue


def _input_source(name: str) -> str | None:
    if name in FIRM_INPUTS:
        return f"firms.{FIRM_INPUTS[name]}"
    if name == "firm_known":
        return "firms.firm_id"
    if name in PATENT_INPUTS:
        return f"patents.{PATENT_INPUTS[name]}"
    if name == "certifications_known":
        return "certifications.tier/year/event"
    if name in ("year", "cutoff", "firm_index"):
        return None
    column, lag = split_lag(name)
    return f"financials.{column}[t-{lag}]"


def source_columns(name: str) -> list[str]:
    """Raw table columns a feature is computed from (transitively), sorted."""
    found: set[str] = set()

    def walk(node: str) -> None:
        fn = FUNCTIONS.get(node)
        if fn is None:
            src = _input_source(node)
            if src:
                found.add(src)
            return
        for param in PARAMS[node]:
            walk(param)

    walk(name)
    return sorted(found)


CATALOGUE_COLUMNS = ["name", "group", "pillar", "label_en", "label_zh", "meaning", "unit",
                     "kind", "source", "criterion"]


def feature_catalogue() -> pd.DataFrame:
    """One row per feature, in :func:`feature_names` order: name, group, pillar (a key of
    models.explain.PILLARS), label_en, label_zh, meaning, unit, kind, source, criterion."""
    return _catalogue().copy()


@cache
def _catalogue() -> pd.DataFrame:
    rows = [
        {"name": s.name, "group": s.group, "pillar": s.pillar, "label_en": s.label_en,
         "label_zh": s.label_zh, "meaning": s.meaning, "unit": s.unit, "kind": s.kind,
         "source": ", ".join(source_columns(s.name)), "criterion": s.criterion}
        for s in FEATURES.values()
    ]
    return pd.concat([pd.DataFrame(rows, columns=CATALOGUE_COLUMNS),
                      rule_feature_catalogue()[CATALOGUE_COLUMNS]], ignore_index=True)


@cache
def _label_maps() -> dict[str, dict[str, str]]:
    table = _catalogue()
    return {lang: dict(zip(table["name"], table[f"label_{lang}"])) for lang in ("en", "zh")}


def feature_label(name: str, lang: str = "en") -> str:
    """Short human label of feature ``name`` in ``lang`` ("en" or "zh"), e.g. rd_intensity ->
    "R&D intensity" / "研发费用占营业收入比重"; a name outside the catalogue is returned as is."""
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh', not {lang!r}")
    return _label_maps()[lang].get(name, name)


def feature_labels(names: Iterable[str], lang: str = "en") -> list[str]:
    """:func:`feature_label` of each of ``names``."""
    return [feature_label(n, lang) for n in names]
