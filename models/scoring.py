"""The scoring core: a feature frame, models and rulebooks in; one typed result out.

    scored = score_frame(X, 2026, models, rulebooks, reasons=3)
    scored.tiers["little_giant"].probability      # (n,) NaN where not a candidate
    scored.tiers["little_giant"].assessment       # eligibility, failed criteria, gaps
    scored.tiers["little_giant"].reasons          # reasons_for / reasons_against
    scored.reviews["little_giant"].probability    # renewal, NaN where no title is up for review

Batch files, Dask partitions, the HTTP API and `giantwatch check` all call this module, so
a probability, its contributions, the eligibility verdict, the gaps and the reasons of one
row always come from one rulebook (the one passed in, named in the result) and one
evaluation of it. Probabilities come from the contributions (they sum to the margin), so a
firm costs one SHAP pass per tier and no separate predict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.domain import TIER_ORDER, candidate_mask, due_for_review
from features.rules import Assessment, Rulebook, assess
from models.cohort import Cohort, numeric_values
from models.reason_text import ranks_measure
from models.reasons import reason_codes

Timer = Callable[[str], object]  # stage name -> context manager (serving.score.StageTimer)


def no_timer(stage: str):
    """A timer that times nothing (the default of every scoring function)."""
    return nullcontext()


def candidates(X: pd.DataFrame, year: int, tier: str) -> np.ndarray:
    """Candidates of ``tier`` among the rows of a feature frame of as-of ``year``
    (features.domain.candidate_mask on the frame's firm_age and holds_<tier> columns)."""
    founded = int(year) - X["firm_age"].to_numpy(dtype=np.float64, na_value=np.nan)
    holds = {t: X[f"holds_{t}"].to_numpy(dtype=np.float64, na_value=np.nan)
             if f"holds_{t}" in X.columns else np.zeros(len(X)) for t in TIER_ORDER}
    return candidate_mask(founded, holds, year, tier)


def candidate_values(X: pd.DataFrame, year: int, tiers) -> dict[str, dict[str, np.ndarray]]:
    """tier -> measure -> float64 values (NaN unknown) of the measures reasons place
    (reason_text.ranks_measure), over the `candidates` of the tier among the rows of X: what
    a `Cohort` of the tier is built from (`Cohort.from_values`, chunks' values concatenated)."""
    columns = [c for c in X.columns if ranks_measure(c)]
    return {tier: numeric_values(X.loc[candidates(X, year, tier), columns], columns)
            for tier in tiers}


@dataclass
class TierScore:
    """One tier's answer for the rows of a feature frame.

    candidates: bool (n,); probability: float (n,), calibrated, NaN for non-candidates;
    rows, contributions, assessment and reasons cover the candidate rows only (in frame
    order): contributions are SHAP values on the margin (log-odds), features + ``bias``.
    """

    tier: str
    rulebook: Rulebook
    candidates: np.ndarray
    probability: np.ndarray
    contributions: pd.DataFrame | None = None
    assessment: Assessment | None = None
    reasons: pd.DataFrame | None = None

    @property
    def rows(self) -> np.ndarray:
        return np.flatnonzero(self.candidates)


@dataclass
class ScoredFrame:
    """The scoring core's result: per tier a TierScore over the rows of ``index``."""

    year: int
    index: pd.Index
    tiers: dict[str, TierScore] = field(default_factory=dict)
    # Per tier with a re-review model: the renewal of the titles up for re-review.
    reviews: dict[str, TierScore] = field(default_factory=dict)

    @property
    def rulebooks(self) -> dict[str, str]:
        """tier -> id of the rulebook behind the tier's eligibility, gaps and reasons."""
        return {t: s.rulebook.id for t, s in self.tiers.items()}


def score_tier(X: pd.DataFrame, year: int, tier: str, model, rulebook: Rulebook, *,
               reasons: int = 3, threads: int | None = None, timer: Timer = no_timer,
               ranks: bool = True, population: pd.DataFrame | Cohort | None = None,
               subset: np.ndarray | None = None,
               matrices: dict | None = None) -> TierScore:
    """Score the candidates of ``tier`` among the rows of ``X`` (see module docstring).

    model: a fitted models.lgbm.TierModel; rulebook: the rulebook the user is shown;
    ranks: place each measure a reason quotes among the year's candidates of the tier, those
    of ``population`` (the feature frame of every firm of the year, or the tier's candidates
    already summarised as a models.cohort.Cohort; None: the candidates among the rows of X);
    subset: bool (n,), the rows to score instead of the candidates (re-reviews; ranks are
    then among those rows of X);
    matrices: the model matrices of all of X already made, by `TierModel.input_key` (this
    tier's is added if missing): the tiers of one feature pipeline read one matrix, made
    once per frame instead of once per tier.
    """
    mask = candidates(X, year, tier) if subset is None else np.asarray(subset, dtype=bool)
    probability = np.full(len(X), np.nan)
    result = TierScore(tier, rulebook, mask, probability)
    rows = np.flatnonzero(mask)
    if not len(rows):
        return result
    Xt = X if len(rows) == len(X) else X.iloc[rows]  # a one-firm request: no copy
    with timer("shap"):
        matrix = None
        if matrices is not None and model.shap_tables() is not None:
            key = model.input_key()
            if key not in matrices:
                matrices[key] = model.model_matrix(X)
            matrix = matrices[key] if len(rows) == len(X) else matrices[key][rows]
        contributions = model.contributions(Xt, num_threads=threads, matrix=matrix)
    with timer("predict"):
        probability[rows] = model.probability_from_margin(contributions.sum(axis=1).to_numpy())
    with timer("rules"):
        result.assessment = assess(Xt, rulebook)
    if reasons > 0:
        with timer("reasons"):
            cohort = None
            if ranks:
                if population is None or subset is not None:
                    cohort = Xt
                elif isinstance(population, Cohort):
                    cohort = population
                else:
                    cohort = population[candidates(population, year, tier)]
            result.reasons = reason_codes(Xt, contributions, n=reasons,
                                          assessment=result.assessment, cohort=cohort)
    result.contributions = contributions
    return result


def score_frame(X: pd.DataFrame, year: int, models: Mapping, rulebooks: Mapping[str, Rulebook],
                *, reasons: int = 3, threads: int | None = None,
                timer: Timer | None = None, ranks: bool = True,
                population: pd.DataFrame | Mapping[str, Cohort] | None = None,
                review_models: Mapping | None = None,
                certifications: pd.DataFrame | None = None) -> ScoredFrame:
    """Every tier of ``models`` (tier -> TierModel) on the feature frame ``X`` of as-of
    ``year``, each with ``rulebooks[tier]`` (ranks, population: see `score_tier`; a
    mapping gives each tier its own Cohort).

    review_models (tier -> the tier's re-review TierModel) score the renewal of the rows
    whose title of the tier is up for re-review in ``year``, read from ``certifications``
    (the certifications table of the rows' firms; `review_rows`), with the same rulebook.
    """
    scored = ScoredFrame(int(year), X.index)
    matrices: dict = {}  # one model matrix of X per model input layout, for all the tiers
    for tier, model in models.items():
        scored.tiers[tier] = score_tier(X, year, tier, model, rulebooks[tier], reasons=reasons,
                                        threads=threads, timer=timer or no_timer, ranks=ranks,
                                        population=(population.get(tier)
                                                    if isinstance(population, Mapping)
                                                    else population), matrices=matrices)
    for tier, model in (review_models or {}).items():
        scored.reviews[tier] = score_tier(
            X, year, tier, model, rulebooks[tier], reasons=reasons, threads=threads,
            timer=timer or no_timer, ranks=False,
            subset=review_rows(certifications, year, tier, X.index), matrices=matrices)
    return scored


def review_rows(certifications: pd.DataFrame, year: int, tier: str,
                index: pd.Index) -> np.ndarray:
    """bool (len(index),): which firms of ``index`` (firm ids) have a ``tier`` title up for
    re-review in ``year`` (features.domain.due_for_review on ``certifications``)."""
    due = due_for_review(certifications, year, tier)
    return due.reindex(index, fill_value=False).to_numpy(dtype=bool)


def assess_frame(X: pd.DataFrame, rulebooks: Mapping[str, Rulebook]) -> dict[str, Assessment]:
    """Eligibility alone (no model): per tier the assessment of every row of ``X``."""
    return {tier: assess(X, rulebook) for tier, rulebook in rulebooks.items()}
