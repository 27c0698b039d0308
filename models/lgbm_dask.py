"""TierModel's boosters fitted on a Dask cluster (`TierModel.fit(..., client=...)`).

lightgbm.dask trains one booster data-parallel: every worker holds a share of the rows,
the workers agree on feature bins and sum their histograms over LightGBM's own network,
and the booster that comes back (``to_local()``) is an ordinary ``lightgbm.Booster`` with
the trees, feature names and pandas categories a local fit has. The served booster and the
calibration's out-of-fold boosters are fitted this way (`dask_booster`), with the round
count, parameters, year offsets (``init_score``) and categorical columns of the local fit.

lightgbm.dask cannot stop early: each worker evaluates only its own share of a validation
set, so the workers would disagree on when to stop. The round count is therefore found as
in a local fit, by probes that early-stop on a whole held-out year, each probe an ordinary
in-process LightGBM fit run as one task on a worker (`probe_curves`; several held-out years
run in parallel on several workers). Only the fixed-round fits are data-parallel.

The data-parallel booster is not bit-identical to the local one (bins are found on the
workers' shares, histograms summed in another order); tests/training/test_dask_fit.py
measures how closely their held-out predictions agree.
"""

from __future__ import annotations

import logging
import re

import lightgbm as lgb
import numpy as np
import pandas as pd

# Parameters the cluster sets for the duration of a fit (lightgbm.dask: network layout,
# one thread per worker core); the returned booster drops them, as a local fit never had them.
NETWORK_PARAMS = ("machines", "local_listen_port", "num_machines", "time_out", "tree_learner",
                  "num_threads")
# The network layout as a local fit's model text records it (LightGBM's defaults): the
# registered model carries no addresses of the cluster that trained it.
LOCAL_LAYOUT = {"tree_learner": "serial", "num_machines": "1", "machines": "",
                "local_listen_port": "12400"}


def lightgbm_logs_to_logging() -> None:
    """LightGBM's messages (its Python side's and, through its callback, the native
    library's) go to the logger "lightgbm" instead of standard output: a data-parallel fit
    announces every network connection at Info level, whatever ``verbose`` says. Run in this
    process and on every worker (where Info is not shown), once per client: by
    training.cluster.dask_client, which makes the clients the fits run on."""
    logger = logging.getLogger("lightgbm")
    if not any(isinstance(f, _ExpectedNotice) for f in logger.filters):
        logger.addFilter(_ExpectedNotice())
    lgb.register_logger(logger)


class _ExpectedNotice(logging.Filter):
    """Drops lightgbm.dask's notice that it sets the thread count per worker itself (the
    estimator's n_jobs and our num_threads): expected, said on every fit."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not re.match(r"Parameter \w+ will be ignored", record.getMessage())


def worker_count(client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def dask_booster(client, params: dict, X: pd.DataFrame, y: np.ndarray,
                 init_score: np.ndarray, rounds: int) -> lgb.Booster:
    """A booster of `rounds` rounds trained data-parallel by lightgbm.dask on the workers of
    `client`: X (n_rows, n_features) frame (pandas categoricals are LightGBM categoricals,
    as locally), y (n_rows,) 0/1, init_score (n_rows,) log-odds offsets (see `_spread` for
    how the rows are shared). Returns an ordinary Booster whose ``params`` are `params`.
    The client's LightGBM messages are routed to logging where it is made
    (training.cluster.dask_client), not here."""
    from lightgbm.dask import DaskLGBMClassifier

    data, label, offset = _spread(client, X, y, init_score)
    cluster_params = {k: v for k, v in params.items() if k not in NETWORK_PARAMS}
    model = DaskLGBMClassifier(client=client, n_estimators=rounds, **cluster_params)
    model.fit(data, label, init_score=offset)
    booster = model.to_local().booster_
    # The trees as an ordinary booster: the same trees, the local fit's parameters.
    text = booster.model_to_string()
    for key, value in LOCAL_LAYOUT.items():
        text = re.sub(rf"^\[{key}: [^\]\n]*\]$", f"[{key}: {value}]", text, count=1,
                      flags=re.MULTILINE)
    local = lgb.Booster(model_str=text)
    local.params = dict(params)
    return local


def _spread(client, X: pd.DataFrame, y, init_score):
    """(data, label, init_score) as Dask collections of one partition per worker, partition
    i placed on the i-th worker (sorted addresses) and holding rows i, i + n, i + 2n, ...:
    every worker takes part in the fit (left to the scheduler, both partitions of a small
    frame may land on one worker), each with a share of every year, so the bins each finds
    on its share are close to those of all rows."""
    import dask.dataframe as dd

    workers = sorted(client.scheduler_info().get("workers", {}))
    n = max(1, min(len(workers), len(X)))
    y = pd.Series(np.asarray(y, dtype=float))
    init_score = pd.Series(np.asarray(init_score, dtype=float))
    X = X.reset_index(drop=True)
    collections = []
    for frame in (X, y, init_score):
        futures = [client.scatter(frame.iloc[i::n], workers=[workers[i]]) for i in range(n)]
        collections.append(dd.from_delayed(futures, meta=frame.iloc[:0], verify_meta=False))
    return collections


def probe_curves(client, probe, X: pd.DataFrame, y: np.ndarray, offset: np.ndarray,
                 splits: list[tuple[np.ndarray, np.ndarray]], **options) -> list[np.ndarray]:
    """[probe(X, y, offset, train, holdout, **options) for each (train, holdout) of splits],
    each call one task on the cluster of `client` (X, y, offset sent once)."""
    shared = client.scatter([X, np.asarray(y), np.asarray(offset)])
    futures = [client.submit(probe, *shared, train, holdout, pure=False, **options)
               for train, holdout in splits]
    return client.gather(futures)
