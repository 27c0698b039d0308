"""`giantwatch check`: every firm against the official criteria, with the gap to each bar.

This is also the rule-only baseline the models must beat. The eligibility, failed criteria
and gaps come from the scoring core's assessment (`models.scoring.assess_frame`), so they
read exactly as the `eligible_*`, `failed_*` and `gaps_*` columns of `giantwatch score`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.atomic import atomic_file, write_csv
from features.rules import in_force_note
from models.scoring import assess_frame


def check_firms(features: pd.DataFrame, rulebooks: dict) -> pd.DataFrame:
    """One row per firm (index of `features`), per tier the columns `giantwatch score`
    writes for its candidates (``rulebook_<tier>``, ``eligible_<tier>`` on the firm's data,
    ``failed_<tier>``, ``gaps_<tier>``: serving.output.assessment_columns), plus the strict
    reading ``eligible_strict_<tier>`` (criteria on data outside the contract unknown),
    ``unknown_<tier>`` (ids undecided in the strict reading) and, where the rulebook has a
    score, ``points_<tier>`` and ``points_max_possible_<tier>``. `rulebooks`: tier ->
    Rulebook."""
    from serving.output import CRITERIA_SEPARATOR, assessment_columns

    columns: dict[str, object] = {}
    for tier, verdict in assess_frame(features, rulebooks).items():
        result = verdict.result
        ids = np.asarray(result.criteria.columns, dtype=object)
        strict = result.criteria.astype(str).to_numpy()
        columns.update(assessment_columns(tier, verdict))
        columns[f"eligible_strict_{tier}"] = result.eligible.astype(str).to_numpy(dtype=object)
        columns[f"unknown_{tier}"] = [CRITERIA_SEPARATOR.join(ids[row == "unknown"])
                                      for row in strict]
        if verdict.rulebook.score is not None:
            columns[f"points_{tier}"] = result.score["score"].to_numpy()
            columns[f"points_max_possible_{tier}"] = result.score["score_max_possible"].to_numpy()
    return pd.DataFrame(columns, index=features.index)


@dataclass
class CheckSummary:
    """What `check_to_file` wrote: counts per tier of the `eligible_<tier>` column."""

    out_file: Path
    year: int
    firms: int
    counts: dict[str, dict[str, int]]
    rulebooks: dict[str, str]
    rejects_file: Path | None
    rejected: int

    def __str__(self) -> str:
        lines = [(f"Checked {self.firms:,} firms with fiscal {self.year - 1} financials: "
                  f"{self.out_file}"),
                 ("Eligibility on the firms' data (column eligible_<tier>, as in "
                  "`giantwatch score`; strict reading in eligible_strict_<tier>):")]
        for tier, counts in self.counts.items():
            lines.append(f"  {tier}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
                         + f"  [{self.rulebooks[tier]}]")
        return "\n".join(lines)


def check_to_file(data_dir, year: int, out_file: Path, rulebook: str | None = None
                  ) -> CheckSummary:
    """Check every firm with financials for `year`-1 against the rulebooks of `rulebook`
    (default: those in force for `year`); writes `out_file` and, if any, the rejects
    (firms founded before `year` without those financials, and the dataset's row-level
    problems) beside it as NAME.rejects.csv."""
    from features.contract import load_dataset, write_rejects
    from features.identity import IDENTITY_COLUMNS, firm_identity
    from features.pipeline import build_features
    from serving.partitions import missing_financials
    from serving.score import rulebooks_for
    from serving.score_file import rejects_path

    year, out_file = int(year), Path(out_file)
    if out_file.suffix not in (".csv", ".parquet"):
        raise ValueError(f"--out must end in .csv or .parquet, got {out_file.name!r}")
    rulebooks = rulebooks_for(rulebook, year)
    dataset = load_dataset(data_dir)
    features = build_features(dataset, year)
    result = check_firms(features, rulebooks).reset_index()
    result.insert(1, "year", year)
    identity = firm_identity(dataset.firms, result["firm_id"])
    for position, column in enumerate(IDENTITY_COLUMNS, start=1):
        result.insert(position, column, identity[column].to_numpy(dtype=object))
    rejects = pd.concat([dataset.rejects,
                         missing_financials(dataset, year, features.index.to_numpy(object))],
                        ignore_index=True)
    write_table(result, out_file)
    rejects_file = write_rejects(rejects, rejects_path(out_file)) if len(rejects) else None
    counts = {tier: result[f"eligible_{tier}"].value_counts().to_dict() for tier in rulebooks}
    return CheckSummary(out_file, year, len(result), counts,
                        {t: in_force_note(rb, year) for t, rb in rulebooks.items()},
                        rejects_file, len(rejects))


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Parquet or CSV by extension, written to a temporary file and renamed: never partial."""
    path = Path(path)
    if path.suffix not in (".parquet", ".csv"):
        raise ValueError(f"output file must end in .parquet or .csv, got {path.name!r}")
    if path.suffix == ".csv":
        return write_csv(frame, path)
    with atomic_file(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path
