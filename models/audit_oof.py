"""Out-of-fold selection probabilities for an audit: no firm-year is scored by a model that
saw its own year.

Each labelled year is scored by models trained on other years:
- walk-forward (train on the earlier years) wherever the earlier years hold enough history;
- leave-one-year-out cross-fitting (train on every other labelled year, later ones too) for
  the first years, which have too little or no history. The audit is retrospective and the
  features stay as-of (each row sees only data known before its year), so a model trained
  on later years leaks no future facts about the firm; it only learns the committee's
  pattern from later lists. Those rows are marked `leave_one_year_out`.

Training rows keep every selection and a seeded sample of the non-selected candidates of
each year: selections are a few per mille of candidates, and ranking (what the audit uses)
does not need all the easy negatives. Probabilities are therefore not calibrated to the
real selection rate; `quota_expected` rescales them to each year's number of selections.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.lgbm import TierModel

WALK_FORWARD = "walk_forward"
LEAVE_ONE_YEAR_OUT = "leave_one_year_out"
MIN_HISTORY_YEARS = 2
MIN_HISTORY_SELECTIONS = 30
NEGATIVES_PER_SELECTION = 20
MIN_NEGATIVES_PER_YEAR = 2_000
# At most this many non-selected rows a year: a national list of thousands of selections
# would otherwise keep every candidate, and a fold of eight such years trains its ten
# boosters on over half a million rows. Each row starts from its own year's (sampled)
# selection rate (models.lgbm, year offsets), so the within-year ranking the audit reads is
# unbiased; only the probabilities' scale moves, which quota_expected undoes. The default
# universe (at most 14,600 candidates a year) is never capped.
MAX_NEGATIVES_PER_YEAR = 20_000
# One thread: the audit fits dozens of small models, and LightGBM's thread pool slows down
# badly when the machine's cores are shared.
AUDIT_PARAMS = {"learning_rate": 0.1, "num_threads": 1}
EARLY_STOPPING_ROUNDS = 40


@dataclass(frozen=True)
class AuditFold:
    test_year: int
    scheme: str
    train_years: tuple[int, ...]


def plan_folds(years, labels) -> list[AuditFold]:
    """One fold per labelled year: walk-forward when the earlier years hold at least
    MIN_HISTORY_YEARS labelled years and MIN_HISTORY_SELECTIONS selections, else
    leave-one-year-out."""
    years = np.asarray(years)
    labels = np.asarray(labels, dtype=float)
    labelled = sorted(int(y) for y in np.unique(years[labels == 1]))
    per_year = {y: int(labels[years == y].sum()) for y in labelled}
    folds = []
    for year in labelled:
        earlier = [y for y in labelled if y < year]
        if len(earlier) >= MIN_HISTORY_YEARS and sum(per_year[y] for y in earlier) >= \
                MIN_HISTORY_SELECTIONS:
            folds.append(AuditFold(year, WALK_FORWARD, tuple(earlier)))
        else:
            others = tuple(y for y in labelled if y != year)
            folds.append(AuditFold(year, LEAVE_ONE_YEAR_OUT, others))
    return [f for f in folds if f.train_years]


def training_rows(y: np.ndarray, years: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    """Positions of `mask` rows to train on: all selections, and per year a seeded sample
    of NEGATIVES_PER_SELECTION non-selections per selection (at least
    MIN_NEGATIVES_PER_YEAR, at most MAX_NEGATIVES_PER_YEAR, at most all)."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(y), dtype=bool)
    for year in np.unique(years[mask]):
        in_year = mask & (years == year)
        positives = in_year & (y == 1)
        negatives = np.flatnonzero(in_year & (y != 1))
        n_keep = min(len(negatives), MAX_NEGATIVES_PER_YEAR,
                     max(NEGATIVES_PER_SELECTION * int(positives.sum()), MIN_NEGATIVES_PER_YEAR))
        keep[positives] = True
        keep[rng.choice(negatives, size=n_keep, replace=False)] = True
    return np.flatnonzero(keep)


def fit_selection_model(X: pd.DataFrame, y: np.ndarray, years: np.ndarray, seed: int,
                        params: dict | None = None) -> TierModel:
    model = TierModel(params={**AUDIT_PARAMS, **(params or {})}, seed=seed,
                      early_stopping_rounds=EARLY_STOPPING_ROUNDS)
    return model.fit(X, y, years=years)


@dataclass
class CrossFit:
    """Out-of-fold results over the rows of a stacked panel (positions 0..n-1).

    p_merit, p_full: (n,) probabilities; scheme: (n,) fold scheme ("" for rows of
    unlabelled years); contributions_*: SHAP frames (index = row position) for the rows
    asked for: selected rows, the sample rows and, for merit, the overlooked candidates.
    """

    p_merit: np.ndarray
    p_full: np.ndarray
    scheme: np.ndarray
    folds: list[AuditFold]
    contributions_merit: pd.DataFrame
    contributions_full: pd.DataFrame
    best_iterations: dict[str, list[int]] = field(default_factory=dict)


def cross_fit(X_merit: pd.DataFrame, X_full: pd.DataFrame, y: np.ndarray, years: np.ndarray,
              seed: int = 0, explain_rows: Callable[[np.ndarray, np.ndarray], np.ndarray]
              | None = None, sample: np.ndarray | None = None,
              progress: Callable[[str], None] | None = None, params: dict | None = None,
              merit_drop: np.ndarray | None = None,
              merit_params: dict | None = None) -> CrossFit:
    """Fit a merit and a full model per fold and score the fold's test year.

    explain_rows(test_positions, p_merit_of_those) -> extra positions whose merit SHAP
    values are wanted (e.g. overlooked candidates). sample: (n,) bool, rows whose SHAP
    values are kept for the global plots. merit_drop: (n,) bool, rows the merit model never
    trains on (selections that break a published rule cannot show what merit looks like).
    merit_params: LightGBM parameters of the merit model (default: ``params``).
    """
    y = np.asarray(y, dtype=float)
    years = np.asarray(years)
    n = len(y)
    p_merit, p_full = np.full(n, np.nan), np.full(n, np.nan)
    scheme = np.full(n, "", dtype=object)
    sample = np.zeros(n, dtype=bool) if sample is None else np.asarray(sample, dtype=bool)
    merit_parts, full_parts = [], []
    folds = plan_folds(years, y)
    iterations: dict[str, list[int]] = {"merit": [], "full": []}
    for k, fold in enumerate(folds):
        if progress:
            progress(f"fold {fold.test_year} ({fold.scheme.replace('_', ' ')}, "
                     f"trained on {len(fold.train_years)} year(s))")
        train = training_rows(y, years, np.isin(years, fold.train_years), seed + k)
        test = np.flatnonzero(years == fold.test_year)
        merit_train = train[~merit_drop[train]] if merit_drop is not None else train
        merit = fit_selection_model(X_merit.iloc[merit_train], y[merit_train],
                                    years[merit_train], seed,
                                    params if merit_params is None else merit_params)
        full = fit_selection_model(X_full.iloc[train], y[train], years[train], seed, params)
        iterations["merit"].append(merit.best_iteration_)
        iterations["full"].append(full.best_iteration_)
        p_merit[test] = merit.predict_proba(X_merit.iloc[test])[:, 1]
        p_full[test] = full.predict_proba(X_full.iloc[test])[:, 1]
        scheme[test] = fold.scheme
        selected = test[y[test] == 1]
        extra = explain_rows(test, p_merit[test]) if explain_rows else np.zeros(0, dtype=int)
        wanted_merit = np.unique(np.concatenate([selected, test[sample[test]], extra]))
        wanted_full = np.unique(np.concatenate([selected, test[sample[test]]]))
        merit_parts.append(_contributions(merit, X_merit, wanted_merit))
        full_parts.append(_contributions(full, X_full, wanted_full))
    return CrossFit(p_merit, p_full, scheme, folds, _stack(merit_parts, X_merit),
                    _stack(full_parts, X_full), iterations)


def _contributions(model: TierModel, X: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    frame = model.contributions(X.iloc[positions])
    frame.index = pd.Index(positions, name="row")
    return frame


def _stack(parts: list[pd.DataFrame], X: pd.DataFrame) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=[*X.columns, "bias"], index=pd.Index([], name="row"))
    return pd.concat(parts).sort_index()


def merit_rank(p: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Rank of each row's probability among the rows of its year (1 = highest)."""
    frame = pd.DataFrame({"p": p, "year": years})
    return frame.groupby("year")["p"].rank(ascending=False, method="min").to_numpy()


def quota_expected(p: np.ndarray, years: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Expected selections per row: p rescaled so each year's expectations sum to the
    number of selections that year (what merit alone would have predicted for the list)."""
    frame = pd.DataFrame({"p": p, "year": years, "y": np.asarray(y, dtype=float)})
    totals = frame.groupby("year").agg(p=("p", "sum"), y=("y", "sum"))
    scale = (totals["y"] / totals["p"].where(totals["p"] > 0)).fillna(0.0)
    return p * frame["year"].map(scale).to_numpy()
