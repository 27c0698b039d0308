"""Case-control sampling of training rows: a seeded fraction of each class, per year.

Selections are rare (about 1% of a tier's candidates), so at national scale most training
rows are firms that were not selected and add little to the ranking. `CaseControl` keeps,
in a year with more than ``max_others`` non-selected candidates (or at a fixed ``rate``),
each of them with probability ``rate``; and in a year with more than ``max_selected``
selections (the automatic rule only: Specialized at 1,000,000 firms, 42,000-54,000 a year)
each selection with probability ``max_selected`` / selections. Below both caps every row is
kept. The draw is a hash of (firm_id, year, seed), so a run repeats and a firm-year's fate
does not depend on which other rows are in the panel. Sampling happens on the candidate
keys, before any feature is built (`features.pipeline.stack_panels`'s ``keep``), so features
of unsampled rows are never computed.

Keeping a year's selections at rate s and its other rows at rate f multiplies its odds of
selection by s/f; `models.lgbm.TierModel` and the baselines take each row's rate
(``kept_rate``, `CaseControl.kept_rate`) and put their probabilities back on the population
scale (log-odds + log f - log s: `models.calibration.sampling_offset`). Walk-forward test
years are scored on every candidate: `training.train` builds each whole when its fold is
scored (`WholeYears`, which shares a year's feature rows between the tiers that test it;
``full_years`` instead builds chosen years whole inside the stacked panel).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# A year with more non-selected candidates than this is sampled down to about this many
# (the default universe of 20,000 firms has at most 16,205 candidates a year: unsampled).
MAX_OTHERS_PER_YEAR = 20_000
# A year with more selections than this keeps about this many (automatic rule only). The
# default universe's largest year holds 1,080 Specialized selections: never capped.
MAX_SELECTED_PER_YEAR = 10_000


def firm_year_uniform(firm_ids, years, seed: int) -> np.ndarray:
    """(n_rows,) numbers in [0, 1), one per (firm_id, year), fixed by the ids, years and seed
    (pandas' stable row hash of the pair, keyed by the seed)."""
    pairs = pd.DataFrame({"firm_id": np.asarray(firm_ids, dtype=object),
                          "year": np.asarray(years, dtype=np.int64)})
    h = pd.util.hash_pandas_object(pairs, index=False, hash_key=f"{seed:016d}"[-16:])
    return (h.to_numpy(dtype=np.uint64) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


@dataclass
class CaseControl:
    """The sampling rule of a training run, and the rates it chose per year.

    rate: fixed fraction of non-selected rows kept in every year, every selection kept
        (None: automatic, a year with more than ``max_others`` non-selected rows is sampled
        down to ``max_others`` of them, one with more than ``max_selected`` selections down
        to ``max_selected`` of those).
    max_others, max_selected: the automatic rule's caps per year (expected counts).
    seed: the draw's seed. full_years: years whose rows are all built (the walk-forward test
        years); their sampled subset still trains later folds and the final model.
    rates_: year -> fraction of non-selected rows kept (1.0 = unsampled), set as years pass.
    selected_rates_: year -> fraction of selections kept (1.0 = every one).
    """

    rate: float | None = None
    max_others: int = MAX_OTHERS_PER_YEAR
    max_selected: int = MAX_SELECTED_PER_YEAR
    seed: int = 0
    full_years: frozenset[int] = frozenset()
    rates_: dict[int, float] = field(default_factory=dict)
    selected_rates_: dict[int, float] = field(default_factory=dict)

    def __post_init__(self):
        if self.rate is not None and not 0.0 < self.rate <= 1.0:
            raise ValueError(f"sample rate must be in (0, 1], got {self.rate}")

    def year_rate(self, n_others: int) -> float:
        """Fraction of a year's ``n_others`` non-selected rows to keep."""
        if self.rate is not None:
            return float(self.rate)
        return 1.0 if n_others <= self.max_others else self.max_others / n_others

    def selected_year_rate(self, n_selected: int) -> float:
        """Fraction of a year's ``n_selected`` selections to keep (all under a fixed rate)."""
        if self.rate is not None or n_selected <= self.max_selected:
            return 1.0
        return self.max_selected / n_selected

    def __call__(self, keys: pd.DataFrame) -> np.ndarray:
        """(n_rows,) rows of one year's candidate keys (firm_id, year, label) to build:
        records the year's rate; every row for a full year or an unlabelled one."""
        label = keys["label"].to_numpy(dtype=float)
        if len(keys) == 0 or np.isnan(label).all():
            return np.ones(len(keys), bool)
        year = int(keys["year"].iloc[0])
        self.rates_[year] = self.year_rate(int((label == 0).sum()))
        self.selected_rates_[year] = self.selected_year_rate(int((label == 1).sum()))
        if year in self.full_years:
            return np.ones(len(keys), bool)
        return self.kept(keys, label)

    def kept(self, keys: pd.DataFrame, y) -> np.ndarray:
        """(n_rows,) True for the sampled rows of stacked keys (firm_id, year) with labels y:
        the rows the hash keeps at their year's rate for their class (`kept_rate`)."""
        rate = self.kept_rate(keys["year"], y)
        keep = np.ones(len(rate), bool)
        sampled = rate < 1.0
        if sampled.any():
            u = firm_year_uniform(keys["firm_id"].to_numpy()[sampled],
                                  keys["year"].to_numpy()[sampled], self.seed)
            keep[sampled] = u < rate[sampled]
        return keep

    def kept_rate(self, years, y) -> np.ndarray:
        """(n_rows,) the fraction of its year's rows of its class (y: 1 selected, 0 not)
        that the sample keeps, for each row: what the models' ``kept_rate`` takes."""
        years = pd.Series(np.asarray(years))
        others = years.map(self.rates_).fillna(1.0).to_numpy(dtype=float)
        selected = years.map(self.selected_rates_).fillna(1.0).to_numpy(dtype=float)
        return np.where(np.asarray(y, dtype=float) == 1, selected, others)

    @property
    def sampled(self) -> bool:
        return any(r < 1.0 for r in [*self.rates_.values(), *self.selected_rates_.values()])

    def describe(self) -> str:
        """One line for MLflow and the model card."""
        rule = (f"fixed rate {self.rate:g}" if self.rate is not None
                else f"automatic above {self.max_others:,} non-selected rows or "
                     f"{self.max_selected:,} selections a year")
        if not self.sampled:
            return f"no sampling ({rule}: every year under it)"

        def listed(rates):
            return ", ".join(f"{y}: {r:.3g}" for y, r in sorted(rates.items()) if r < 1.0)

        selected = listed(self.selected_rates_)
        selected = f"selections kept at {selected}" if selected else "every selection kept"
        return (f"case-control sampling ({rule}, seed {self.seed}): {selected}, "
                f"non-selected rows kept at {listed(self.rates_) or '1 (all)'}; probabilities "
                f"corrected to the population scale (log-odds + log of the kept rate of "
                f"non-selected rows - log of the selections'); walk-forward test years "
                f"unsampled")


class WholeYears:
    """(X, y, keys) of every candidate of a tier in one labelled year: the walk-forward test
    years of a sampled panel (training.evaluate.walk_forward's ``test_year``), built whole.

    A firm-year's as-of features do not depend on the tier, nor on which other firms are
    built with it (features.pipeline.build_features), and Specialized and Little Giant test
    the same years (Champion one of them), so a year's feature rows are kept for the later
    tiers that test it and only their missing firms are built. ``pending``: year -> number
    of tiers, in training order, still to test it; `done` after each tier drops the years
    no later tier tests, so at most the shared years are held (about 1 GB each at
    1,000,000 firms).
    """

    def __init__(self, dataset, pending: Counter):
        self.dataset = dataset
        self.pending = Counter(pending)
        self.frames: dict[int, pd.DataFrame] = {}

    def __call__(self, tier: str, year: int) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
        from features.panel import candidate_panel
        from features.pipeline import build_features

        keys, _ = candidate_panel(self.dataset, year, tier)
        ids = keys["firm_id"]
        held = self.frames.pop(year, None)
        if held is None:
            X = build_features(self.dataset, year, firm_ids=ids)
        else:
            missing = ids[~ids.isin(held.index)]
            if len(missing):
                held = pd.concat([held, build_features(self.dataset, year, firm_ids=missing)])
            X = held.loc[ids.to_numpy()]
        if self.pending[year] > 1:  # a later tier tests this year too
            self.frames[year] = X if held is None else held
        X = X.set_axis(keys.index)
        return X, keys["label"].to_numpy(dtype=float), keys[["firm_id", "year"]].copy()

    def done(self, years) -> None:
        """A tier has tested ``years`` (or skipped them): drop those no later tier tests."""
        for year in years:
            self.pending[year] -= 1
            if self.pending[year] <= 0:
                self.frames.pop(year, None)
