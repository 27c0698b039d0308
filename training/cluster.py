"""The Dask cluster of `--dask`: one address syntax and one client constructor for training
(lightgbm.dask fits, models.lgbm_dask) and scoring (serving.executors).

    with dask_client("local:2") as client:          # a LocalCluster of 2 single-threaded workers
    with dask_client("tcp://HOST:8786") as client:  # the scheduler already running there
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

log = logging.getLogger(__name__)


class ClusterProblem(ValueError):
    """A `--dask` address that is malformed or cannot be reached."""


def parse_address(spec: str) -> tuple[str, int | str]:
    """"local:N" -> ("local", N); "tcp://host:port" -> ("tcp", the address).
    Raises ClusterProblem for anything else."""
    spec = str(spec).strip()
    if spec.startswith("local:"):
        count = spec.removeprefix("local:")
        if count.isdigit() and int(count) > 0:
            return "local", int(count)
    elif spec.startswith("tcp://") and len(spec) > len("tcp://"):
        return "tcp", spec
    raise ClusterProblem(f"--dask takes local:N (N workers on this machine) or "
                         f"tcp://HOST:PORT (a running scheduler), got {spec!r}")


def _quiet_standard_output() -> None:
    """Points a local worker's standard output at the null device. Our tasks print nothing,
    but LightGBM's native network threads print "[LightGBM] [Info] Listening..." at every
    data-parallel fit whatever its verbosity, into the terminal's table of results (the
    workers share this process's standard output). Their logs go to standard error."""
    import os

    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def _route_lightgbm_logs(client) -> None:
    """LightGBM's messages go to logging in this process and on every worker of `client`,
    those there now and those that join later (models.lgbm_dask.lightgbm_logs_to_logging):
    set up once per client here, not at every fit (each setup is a round trip to every
    worker)."""
    from models.lgbm_dask import lightgbm_logs_to_logging

    lightgbm_logs_to_logging()
    client.register_worker_callbacks(setup=lightgbm_logs_to_logging)


@contextmanager
def dask_client(spec, timeout: str = "20s"):
    """A distributed Client for `spec` ("local:N", "tcp://..." or a Client, left open), its
    workers' LightGBM messages routed to logging. Raises ClusterProblem for a malformed address or a scheduler that does not answer
    within `timeout`."""
    from distributed import Client, LocalCluster

    if isinstance(spec, Client):
        _route_lightgbm_logs(spec)
        yield spec
        return
    kind, value = parse_address(spec)
    if not log.isEnabledFor(logging.DEBUG):
        # distributed logs a cluster's life at Info (workers starting and stopping, a closed
        # connection's traceback at shutdown): shown with --verbose only.
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if kind == "local":
        # One thread per worker process: LightGBM and numpy then never oversubscribe cores.
        with LocalCluster(n_workers=value, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(_quiet_standard_output)
            _route_lightgbm_logs(client)
            yield client
        return
    try:
        client = Client(value, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterProblem(f"cannot reach the Dask scheduler at {value}: {exc}") from None
    with client:
        _route_lightgbm_logs(client)
        yield client
