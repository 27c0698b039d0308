"""`giantwatch check`: every firm against the official criteria, with the gap to each bar.

This is also the rule-only baseline the models must beat.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.atomic import atomic_file
from features.rules import available_rulebooks, evaluate, explain_failures, load_rulebook

TIERS = ("specialized", "little_giant", "champion")


def rulebooks_for(year: str | int) -> dict[str, str]:
    """Per tier, the id of the newest rulebook of `year` or earlier (tiers without one are left out)."""
    table = available_rulebooks()
    table = table[table["year"].astype(int) <= int(year)]
    chosen = {}
    for tier in TIERS:
        rows = table[table["tier"] == tier].sort_values("year")
        if len(rows):
            chosen[tier] = rows["id"].iloc[-1]
    return chosen


def check_firms(features: pd.DataFrame, rulebook_year: str | int = "2022") -> pd.DataFrame:
    """One row per firm (index of `features`): per tier the strict and on-data eligibility
    (pass/fail/unknown), failed and unknown criterion ids, and the gap texts; plus the
    Specialized SME score where the rulebook has one."""
    columns: dict[str, pd.Series] = {}
    for tier, rulebook_id in rulebooks_for(rulebook_year).items():
        rulebook = load_rulebook(rulebook_id)
        result = evaluate(features, rulebook)
        failures = explain_failures(features, rulebook, result)
        columns[f"{tier}_rulebook"] = pd.Series(rulebook_id, index=features.index)
        columns[f"{tier}_eligible"] = result.eligible.astype(str)
        columns[f"{tier}_eligible_on_data"] = result.eligible_on_data.astype(str)
        columns[f"{tier}_failed"] = failures["failed"].map(_join)
        columns[f"{tier}_failed_on_data"] = failures["failed_on_data"].map(_join)
        columns[f"{tier}_unknown"] = failures["unknown"].map(_join)
        columns[f"{tier}_gaps"] = failures["gaps"].map(lambda gaps: "; ".join(gaps.values()))
        if rulebook.score is not None:
            columns[f"{tier}_score"] = result.score["score"]
            columns[f"{tier}_score_max_possible"] = result.score["score_max_possible"]
    return pd.DataFrame(columns, index=features.index)


def _join(ids) -> str:
    return ";".join(ids) if isinstance(ids, (list, tuple)) else ("" if ids is None else str(ids))


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Parquet or CSV by extension, written to a temporary file and renamed: never partial."""
    path = Path(path)
    if path.suffix not in (".parquet", ".csv"):
        raise ValueError(f"output file must end in .parquet or .csv, got {path.name!r}")
    with atomic_file(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return path
