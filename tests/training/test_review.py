"""When re-reviews are modelled, and on which walk-forward folds."""

from __future__ import annotations

import numpy as np

from training.review import (
    MIN_FOLD_REVIEWS,
    MIN_NOT_RENEWED,
    MIN_REVIEWS,
    review_folds,
    review_key,
    too_few_reviews,
)
from training.tracking import registered_name


def test_the_re_review_model_is_named_after_its_tier():
    assert review_key("little_giant") == "little_giant-review"
    assert registered_name(review_key("champion")) == "giantwatch-champion-review"


def test_too_few_re_reviews_are_said_with_their_counts():
    enough = np.r_[np.ones(MIN_REVIEWS), np.zeros(MIN_NOT_RENEWED)]
    assert too_few_reviews("specialized", [2024, 2025], enough) is None
    assert too_few_reviews("specialized", [2025], enough) is not None  # one year only
    why = too_few_reviews("champion", [2019, 2025], np.r_[np.ones(61), np.zeros(7)])
    assert why.startswith("champion re-reviews are too few to model: 68 with 7 not renewed in "
                          "2019-2025")


def test_folds_need_enough_earlier_re_reviews():
    years = [2022, 2023, 2024, 2025]
    counts = {2022: 10, 2023: 69, 2024: 111, 2025: 176}
    row_years = np.concatenate([np.full(n, y) for y, n in counts.items()])
    y = np.tile([1.0, 1.0, 0.0], len(row_years))[:len(row_years)]
    folds = review_folds(years, row_years, y, n_folds=3)
    # 2023 trains on 10 re-reviews and 2024 on 79: too few; 2025 on 190.
    assert 10 + 69 < MIN_FOLD_REVIEWS <= 10 + 69 + 111
    assert [f.test_year for f in folds] == [2025]
    assert folds[0].train_years == (2022, 2023, 2024)
    assert review_folds(years, row_years, np.ones(len(row_years)), n_folds=3) == []
