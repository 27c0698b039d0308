"""Re-review models: which title holders keep their title when its three years end.

A title of a tier comes up for re-review in year *t* when its latest granted / renewed row
is from *t−3* (features.domain.due_for_review); the label is ``renewed`` in *t* (1) against
revoked or left to lapse (0). The panels, the walk-forward evaluation against the rulebook
and the logistic regression, the final fit, the registry (``giantwatch-<tier>-review``)
and the gate are the selection models' (`training.train`); this module holds what differs:
the model's name, when a tier has too few re-reviews to model, and which folds have enough
earlier re-reviews to train on.
"""

from __future__ import annotations

import numpy as np

from training.splits import Fold, walk_forward_folds

REVIEW_SUFFIX = "-review"
# Below these counts a tier's re-reviews are not modelled (the Champions of a 20,000-firm
# universe: about 70 re-reviews, 7 of them not renewed): early stopping and the calibration
# would rest on a handful of failures.
MIN_REVIEWS = 100
MIN_NOT_RENEWED = 20
# A walk-forward fold needs at least this many earlier re-reviews, and this many failures
# among them, to train on: with fewer, early stopping and the calibration have next to
# nothing to learn from (the demo's Little Giant fold of 2024, 79 earlier re-reviews, gave
# a Brier score of 0.36 against the rulebook's 0.14).
MIN_FOLD_REVIEWS = 150
MIN_FOLD_NOT_RENEWED = 20


def review_key(tier: str) -> str:
    """The name of a tier's re-review model among the modelled tiers ("little_giant-review"):
    the key of its results, its metrics' prefix and, as ``giantwatch-<key>``, its registered
    name."""
    return tier + REVIEW_SUFFIX


def too_few_reviews(tier: str, years: list[int], y) -> str | None:
    """Why the re-reviews of ``tier`` (labels ``y`` over the reviewed ``years``) cannot be
    modelled, in words, or None when they can."""
    y = np.asarray(y, dtype=float)
    n, failed = len(y), int((y == 0).sum())
    if n >= MIN_REVIEWS and failed >= MIN_NOT_RENEWED and len(years) >= 2:
        return None
    span = f"{years[0]}-{years[-1]}" if years else "no year"
    return (f"{tier} re-reviews are too few to model: {n:,} with {failed:,} not renewed in "
            f"{span} (a model needs at least {MIN_REVIEWS} with {MIN_NOT_RENEWED} not renewed, "
            "over 2 years or more)")


def review_folds(years: list[int], row_years, y, n_folds: int = 3) -> list[Fold]:
    """The walk-forward folds of the last ``n_folds`` reviewed years whose earlier years
    hold at least MIN_FOLD_REVIEWS re-reviews with MIN_FOLD_NOT_RENEWED failures
    (``row_years``, ``y``: each panel row's year and label)."""
    row_years, y = np.asarray(row_years), np.asarray(y, dtype=float)

    def enough(fold: Fold) -> bool:
        train = np.isin(row_years, fold.train_years)
        return train.sum() >= MIN_FOLD_REVIEWS and (y[train] == 0).sum() >= MIN_FOLD_NOT_RENEWED

    return [fold for fold in walk_forward_folds(years, n_folds=n_folds) if enough(fold)]
