"""How many boosting rounds a TierModel trains: early stopping on held-out years.

    rounds, held = round_count(X, y, offset, years, params=..., num_boost_round=4000,
                               patience=200, min_selections=30, seed=0)

A probe booster, trained on every year but the newest, early-stops on the newest year (with
a single year, on a seeded fifth of its rows). When the newest year holds fewer than
``min_selections`` selections (a dozen Single Champions), older years are held out too, each
by a probe trained on the years before it, and the round count is read from their pooled
curve, smoothed over SMOOTHING_ROUNDS rounds. With a Dask client the probes run as tasks on
its workers (models.lgbm_dask.probe_curves: lightgbm.dask itself cannot stop early).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.lgbm_dask import probe_curves

SMOOTHING_ROUNDS = 25
MIN_ROUNDS = 20
# The round count is found on held-out years holding at least this many selections (or
# on MAX_HOLDOUT_YEARS years): see _holdouts.
MIN_HOLDOUT_SELECTIONS = 30
MAX_HOLDOUT_YEARS = 4


def round_count(X: pd.DataFrame, y: np.ndarray, offset: np.ndarray, years: np.ndarray, *,
                params: dict, num_boost_round: int, patience: int, min_selections: float,
                seed: int, client=None) -> tuple[int, np.ndarray]:
    """(rounds, held): the round count at the best smoothed metric of the probes' pooled
    held-out curve (each held-out year weighted by its selections), and the (n_rows,) mask
    of the rows held out (the years that chose it). X (n_rows, n_features), y 0/1, offset
    the rows' init_score, years their as-of years; params the boosters' LightGBM
    parameters, num_boost_round the probes' cap, patience their early-stopping rounds;
    client: a distributed Client whose workers run the probes (None: this process)."""
    splits = _holdouts(years, y, min_selections, seed)
    probe = {"params": params, "num_boost_round": num_boost_round, "patience": patience}
    curves = ([probe_curve(X, y, offset, t, h, **probe) for t, h in splits] if client is None
              else probe_curves(client, probe_curve, X, y, offset, splits, **probe))
    weights = [max(y[holdout].sum(), 1.0) for _, holdout in splits]
    held = np.logical_or.reduce([holdout for _, holdout in splits])
    return _smoothed_best(_pooled_curve(curves, weights)), held


def probe_curve(X: pd.DataFrame, y: np.ndarray, offset: np.ndarray, train: np.ndarray,
                holdout: np.ndarray, *, params: dict, num_boost_round: int,
                patience: int) -> np.ndarray:
    """(n_rounds,) the holdout rows' metric after each round of a probe booster trained on
    the train rows (masks of X's rows), stopped `patience` rounds after its best round."""
    train_set = lgb.Dataset(X[train], y[train], init_score=offset[train], free_raw_data=True)
    valid_set = lgb.Dataset(X[holdout], y[holdout], init_score=offset[holdout],
                            reference=train_set)
    history: dict = {}
    lgb.train(params, train_set, num_boost_round=num_boost_round, valid_sets=[valid_set],
              valid_names=["holdout"],
              callbacks=[lgb.early_stopping(patience, verbose=False),
                         lgb.record_evaluation(history)])
    return np.asarray(history["holdout"][params["metric"]], dtype=float)


def _smoothed_best(curve: list[float]) -> int:
    """Round count at the best moving average of the held-out metric.

    A held-out year may hold only a dozen selections; its raw curve then peaks by chance
    after a few rounds. Averaging over SMOOTHING_ROUNDS rounds picks a stable plateau.
    """
    values = pd.Series(curve, dtype=float)
    smoothed = values.rolling(SMOOTHING_ROUNDS, min_periods=1, center=True).mean()
    return max(int(smoothed.to_numpy().argmax()) + 1, min(MIN_ROUNDS, len(values)))


def _pooled_curve(curves: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Weighted mean of the probes' metric curves, each held at its last value after its
    probe stopped (it stopped because the metric no longer improved)."""
    length = max(len(c) for c in curves)
    padded = np.stack([np.pad(c, (0, length - len(c)), mode="edge") for c in curves])
    return np.average(padded, axis=0, weights=np.asarray(weights, dtype=float))


def _holdouts(years: np.ndarray, y: np.ndarray, min_selections: float,
              seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, holdout) row masks of the probes that find the round count.

    The newest year is held out, the probe trained on the years before it. When it holds
    fewer than ``min_selections`` selections (a dozen Single Champions), its metric curve
    peaks by chance after a few rounds; the next older years are held out too, each by its
    own probe trained on the years before it (rolling origin, at most MAX_HOLDOUT_YEARS),
    until their selections reach ``min_selections``. With a single year, a seeded fifth of
    its rows is held out.

    (Holding out only half of the newest year, so the probe also sees that year's quota,
    was tried: it ranked worse on the walk-forward folds and calibrated no better.)
    """
    distinct = np.unique(years)
    if len(distinct) == 1:
        holdout = np.random.default_rng(seed).random(len(years)) < 0.2
        return [(~holdout, holdout)]
    out, selections = [], 0.0
    for year in distinct[::-1][:min(MAX_HOLDOUT_YEARS, len(distinct) - 1)]:
        holdout = years == year
        out.append((years < year, holdout))
        selections += y[holdout].sum()
        if selections >= min_selections:
            break
    return out
