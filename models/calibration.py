"""Year offsets and calibration: the log-odds a TierModel's margin is relative to, and the
Platt line that turns a margin into a probability at the newest year's selection rate.

Selection works like a quota and the quotas move, so each training row starts from its own
year's selection rate (`year_offsets`); a case-control sample (training.sampling) moves a
year's log-odds by the log of its kept rates' ratio (`sampling_offset`); the calibration is fitted on
out-of-fold margins (`calibration_folds`) with `platt`. The logistic baseline shares the
sampling correction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

# A year without selections (or all selected) still gets a finite offset.
OFFSET_RATE_FLOOR = 1e-5
# Platt scaling's inverse L2 penalty on the slope: practically unpenalised.
PLATT_C = 1e4


def sampling_offset(kept_rate, y, years) -> float:
    """log f - log s of the newest year, where f and s are the fractions of its non-selected
    rows and of its selections that a case-control sample kept (0.0 when kept_rate is None):
    the sample's odds of selection are the population's x s/f, so its log-odds plus this are
    the population's. kept_rate: (n_rows,) each row's kept fraction of its year and class
    (training.sampling.CaseControl.kept_rate), constant within a year and class (ValueError
    otherwise); y: (n_rows,) 0/1 labels; years: (n_rows,) years. A class absent from the
    newest year counts as unsampled."""
    if kept_rate is None:
        return 0.0
    kept_rate = np.asarray(kept_rate, dtype=float)
    y = np.asarray(y, dtype=float)
    newest = np.asarray(years) == np.max(years)
    logs = []
    for label in (0.0, 1.0):
        rates = kept_rate[newest & (y == label)]
        if len(rates) and (np.ptp(rates) > 0 or not 0.0 < rates[0] <= 1.0):
            raise ValueError("kept_rate must be in (0, 1] and constant within a year and class")
        logs.append(float(np.log(rates[0])) if len(rates) else 0.0)
    return logs[0] - logs[1]


def year_offsets(y: np.ndarray, years: np.ndarray) -> dict[int, float]:
    """Log-odds of each year's selection rate among the given rows (clipped away from 0/1,
    so a year without selections still has a finite offset)."""
    rates = pd.Series(y, dtype=float).groupby(np.asarray(years)).mean()
    rates = rates.clip(OFFSET_RATE_FLOOR, 1 - OFFSET_RATE_FLOOR)
    return {int(t): float(np.log(r / (1 - r))) for t, r in rates.items()}


def calibration_folds(y: np.ndarray, years: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(n_rows,) fold number 0..k-1 of each row: seeded, stratified by (year, label) so each
    fold holds its share of every year's few selections."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    strata = pd.Series(np.arange(len(y))).groupby([np.asarray(years), np.asarray(y)]).indices
    for key in sorted(strata):
        rows = rng.permutation(strata[key])
        fold[rows] = (np.arange(len(rows)) + rng.integers(k)) % k
    return fold


def platt(margin: np.ndarray, y: np.ndarray, shift: np.ndarray | None = None
           ) -> LogisticRegression:
    """Platt scaling on the raw margin: two parameters, stable with few selected firms
    (isotonic regression overfits when a year holds only dozens of selections).

    shift: (n_rows,) log-odds of each row's year rate minus the newest year's (0 for rows
    of the newest year): a fixed offset in the fit, so rows of several years calibrate to
    the newest year's rate. Without shifts, scikit-learn's fit itself.
    """
    calibrator = LogisticRegression(C=PLATT_C, max_iter=1000)
    if y.min() == y.max():  # no selections (or all selected): keep the margin as is
        return fixed_calibrator(calibrator, 1.0, 0.0)
    if shift is None or not np.any(shift):
        return calibrator.fit(margin.reshape(-1, 1), y.astype(int))
    # Written out because scikit-learn's LogisticRegression takes no per-row offset: the
    # same penalised log loss, minimised by scipy, then set into a LogisticRegression so
    # predict_proba and pickles stay what they were.

    def loss(theta):
        z = theta[0] * margin + theta[1] + shift
        p = expit(z)
        # Log loss with the same L2 penalty on the slope as scikit-learn's C.
        value = np.sum(np.logaddexp(0, z) - y * z) + theta[0] ** 2 / (2 * PLATT_C)
        residual = p - y
        return value, np.array([residual @ margin + theta[0] / PLATT_C, residual.sum()])

    slope, intercept = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B").x
    return fixed_calibrator(calibrator, slope, intercept)


def platt_probability(calibrator: LogisticRegression, margin: np.ndarray) -> np.ndarray:
    """(n,) `calibrator.predict_proba(margin.reshape(-1, 1))[:, 1]`, bit for bit: the
    logistic of the Platt line, slope * margin + intercept. Written out because
    scikit-learn's input checks cost a tenth of a millisecond per call, several times what
    a one-firm answer's whole arithmetic costs (tests/models/test_lgbm.py holds it
    to predict_proba)."""
    line = np.asarray(margin, dtype=np.float64).reshape(-1) * calibrator.coef_[0, 0]
    return expit(line + calibrator.intercept_[0])


def fixed_calibrator(calibrator: LogisticRegression, slope: float,
                      intercept: float) -> LogisticRegression:
    """calibrator fitted (so scikit-learn treats it as such) and set to the given line."""
    calibrator.fit(np.array([[-50.0], [50.0]]), np.array([0, 1]))
    calibrator.coef_[:] = slope
    calibrator.intercept_[:] = intercept
    return calibrator
