import numpy as np
import pytest

from models.metrics import binary_metrics, expected_calibration_error, precision_at_k
from training.splits import labelled_years, walk_forward_folds


def test_precision_at_k_uses_number_selected():
    y = np.array([1, 0, 1, 0, 0, 0])
    score = np.array([0.9, 0.8, 0.1, 0.3, 0.2, 0.0])
    # k = 2 selected; the top two scores hold one selection.
    assert precision_at_k(y, score) == pytest.approx(0.5)
    assert precision_at_k(y, score, k=1) == pytest.approx(1.0)


def test_ece_is_zero_for_perfect_calibration_and_large_when_off():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, 200_000)
    y = (rng.random(p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.005
    assert expected_calibration_error(y, np.clip(p * 3, 0, 1)) > 0.1


def test_binary_metrics_refuses_single_class():
    with pytest.raises(ValueError, match="both selected and not-selected"):
        binary_metrics(np.zeros(5), np.linspace(0, 1, 5))


def test_walk_forward_folds_are_disjoint_by_year_and_only_look_back():
    folds = walk_forward_folds([2019, 2020, 2021, 2022, 2023, 2024, 2025], n_folds=3)
    assert [f.test_year for f in folds] == [2023, 2024, 2025]
    years = np.repeat(np.arange(2019, 2026), 10)
    for fold in folds:
        assert all(t < fold.test_year for t in fold.train_years)
        train, test = fold.train_mask(years), fold.test_mask(years)
        assert not np.any(train & test)
        assert set(years[test]) == {fold.test_year}


def test_labelled_years_skips_years_without_selections():
    years = np.array([2018, 2018, 2019, 2019, 2020])
    labels = np.array([0, 0, 1, 0, 1])
    assert labelled_years(years, labels) == [2019, 2020]
