"""Where chunks are scored: in this process, or on a Dask cluster, behind one interface.

    with executor_for(None) as ex:            # this process
    with executor_for("local:4") as ex:       # a LocalCluster of 4 single-threaded workers
    with executor_for("tcp://HOST:8786") as ex:   # the scheduler already running there
        for result in ex.map_chunks(fn, chunks, *shared, **options): ...

`map_chunks(fn, chunks, *shared)` calls ``fn(part, ..., *shared)`` for every
``(firm_ids, part)`` of ``chunks`` as ``fn(part, year, firm_ids, ...)``'s callers expect
(see serving.score) and yields the results in input order. The scoring function is passed
in, so this module knows nothing of scoring. On Dask each partition holds every row of its
firms (features are per firm), so a worker needs no other data; the shared arguments
(models, rulebooks) are sent to every worker once, and at most a few partitions per worker
are in flight, which bounds the memory of the client and of the cluster. The address syntax
and the client come from training.cluster (training fits LightGBM on the same kind of
cluster); its ClusterProblem reaches scoring's callers as a ScoringProblem.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from models.scoring import no_timer
from serving.registry import ScoringProblem
from training import cluster
from training.cluster import ClusterProblem, dask_client

IN_FLIGHT_PER_WORKER = 2


class LocalExecutor:
    """Chunks scored one after the other in this process; `timer` times the partitioning."""

    def __init__(self, timer=None):
        self.timer = timer

    def map_chunks(self, fn: Callable, chunks: Iterable[tuple[Any, Any]], year, *shared,
                   **options) -> Iterator[Any]:
        chunks = iter(chunks)
        while True:
            with (self.timer or no_timer)("partition"):
                item = next(chunks, None)
            if item is None:
                return
            firm_ids, part = item
            yield fn(part, year, firm_ids, *shared, timer=self.timer, **options)


class DaskExecutor:
    """Chunks scored on the Dask cluster of a connected `distributed.Client`."""

    def __init__(self, client, threads: int = 1):
        self.client, self.threads = client, threads

    def map_chunks(self, fn: Callable, chunks: Iterable[tuple[Any, Any]], year, *shared,
                   **options) -> Iterator[Any]:
        client = self.client
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        shared_futures = client.scatter(list(shared), broadcast=True)
        pending: deque = deque()
        for firm_ids, part in chunks:
            [data] = client.scatter([part])
            pending.append(client.submit(fn, data, year, firm_ids, *shared_futures,
                                         threads=self.threads, pure=False, **options))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@contextmanager
def executor_for(spec, timer=None):
    """LocalExecutor for `spec` None, else a DaskExecutor on the cluster of `spec`
    ("local:N", "tcp://HOST:PORT" or a distributed Client)."""
    if spec is None:
        yield LocalExecutor(timer)
        return
    with _as_scoring_problem(), dask_client(spec) as client:
        yield DaskExecutor(client)


def parse_address(spec: str) -> tuple[str, int | str]:
    """training.cluster.parse_address, a refusal raised as a ScoringProblem."""
    with _as_scoring_problem():
        return cluster.parse_address(spec)


@contextmanager
def _as_scoring_problem():
    try:
        yield
    except ClusterProblem as exc:
        raise ScoringProblem(str(exc)) from None
