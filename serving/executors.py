"""Scoring on a Dask cluster: the firm partitions of `serving.score` scored by workers.

    --dask local:4           start a LocalCluster of 4 single-threaded worker processes
    --dask tcp://HOST:8786   join the scheduler already running there

Each partition holds every row of its firms (features are per firm), so a worker needs no
other data; the models and rulebooks are sent to every worker once. Chunks come back in
submission order, and each is scored by the same function as in a single process, so the
output is the same rows in the same order with the same values. At most a few partitions
per worker are in flight, which bounds the memory of the client and of the cluster.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from serving.score import ScoringProblem, score_chunk

IN_FLIGHT_PER_WORKER = 2


def parse_address(spec: str) -> tuple[str, int | str]:
    """"local:N" -> ("local", N); "tcp://host:port" -> ("tcp", the address)."""
    spec = str(spec).strip()
    if spec.startswith("local:"):
        count = spec.removeprefix("local:")
        if count.isdigit() and int(count) > 0:
            return "local", int(count)
    elif spec.startswith("tcp://") and len(spec) > len("tcp://"):
        return "tcp", spec
    raise ScoringProblem(f"--dask takes local:N (N workers on this machine) or "
                         f"tcp://HOST:PORT (a running scheduler), got {spec!r}")


@contextmanager
def dask_client(spec):
    """A distributed Client for `spec` ("local:N", "tcp://..." or a Client, left open)."""
    from distributed import Client, LocalCluster

    if isinstance(spec, Client):
        yield spec
        return
    kind, value = parse_address(spec)
    if kind == "local":
        # One thread per worker process: LightGBM and numpy then never oversubscribe cores.
        with LocalCluster(n_workers=value, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(value, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise ScoringProblem(f"cannot reach the Dask scheduler at {value}: {exc}") from None
    with client:
        yield client


def score_partitions(chunks: Iterable[tuple[np.ndarray, object]], year: int, models: dict,
                     rulebooks: dict, reasons: int, spec, structured: bool = False,
                     threads: int = 1) -> Iterator[pd.DataFrame]:
    """Score `(firm_ids, partition)` pairs on the cluster of `spec`; yields the scored
    chunks in input order (see `serving.score.score_chunk`)."""
    with dask_client(spec) as client:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        shared = client.scatter([models, rulebooks], broadcast=True)
        pending: deque = deque()
        for firm_ids, part in chunks:
            [data] = client.scatter([part])
            pending.append(client.submit(score_chunk, data, year, firm_ids, shared[0], shared[1],
                                         reasons, threads, structured=structured, pure=False))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
