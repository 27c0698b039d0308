"""Walk-forward folds by year: train on years before the test year, never a random split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    """Train on `train_years` (all < test_year), test on `test_year`."""

    test_year: int
    train_years: tuple[int, ...]

    def train_mask(self, years: np.ndarray) -> np.ndarray:
        return np.isin(np.asarray(years), self.train_years)

    def test_mask(self, years: np.ndarray) -> np.ndarray:
        return np.asarray(years) == self.test_year


def labelled_years(years: np.ndarray, labels: np.ndarray) -> list[int]:
    """As-of years with at least one selection (the tier's list existed that year)."""
    years = np.asarray(years)
    labels = np.asarray(labels, dtype=float)
    return sorted(int(y) for y in np.unique(years[labels == 1]))


def walk_forward_folds(years: list[int], n_folds: int = 3, min_train_years: int = 1) -> list[Fold]:
    """One fold per each of the last `n_folds` labelled years that has enough earlier years."""
    years = sorted({int(y) for y in years})
    folds = [
        Fold(test_year=y, train_years=tuple(t for t in years if t < y))
        for y in years[-n_folds:]
    ]
    return [f for f in folds if len(f.train_years) >= min_train_years]
