"""One-firm `POST /score` latency on a warm local server, and a burst of concurrent requests.

    .venv/bin/python bench/bench_api.py --data data/demo --year 2026 --requests 200 --burst 200

Starts `giantwatch serve` (the registry's production models, MLFLOW_TRACKING_URI as the
CLI reads it) on 127.0.0.1 at a free port, waits for /health, sends one warm-up request,
then `--requests` one-firm requests one after the other (each a different firm of the
dataset, with its financials, patents and certifications) and reports the median and 99th
percentile; then `--burst` requests at once from as many threads, and counts the answers
(every request must get a 200). Targets: p50 <= 50 ms, p99 <= 200 ms, the burst all answered.
`--serve-first N` has the server answer N one-firm requests of other firms before the
timed ones: a server that has been serving a while, whose per-process memos (each distinct
value's parse and check verdict, the label nodes of a few firms) hold what requests bring
back (years, provinces, dates, industries); 0 (the default) times a server just started.
Prints a table and, as the last line, one JSON object. `--baseline DIR` instead serves this
code and the source tree DIR side by side and sends each request to both (alternating
which goes first): on a shared machine only such paired figures compare.

`--in-process N` instead calls the /score endpoint function of an app built in this
process N times (pydantic parsing, the endpoint, FastAPI's JSON encoding; no HTTP) and
reports the CPU seconds per request (median); `--profile` adds a cProfile of those
requests: the costliest functions and how many calls reach pandas from outside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

TABLES = ("firms", "financials", "patents", "certifications")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jsonable(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def one_firm_bodies(data: Path, year: int, n: int, seed: int = 0) -> list[dict]:
    """`n` request bodies, each one firm with financials for year-1 and all its rows."""
    tables = {t: pd.read_parquet(data / f"{t}.parquet") if (data / f"{t}.parquet").is_file()
              else pd.read_csv(data / f"{t}.csv", dtype=str, keep_default_na=False)
              for t in TABLES}
    fin = tables["financials"]
    with_financials = fin.loc[pd.to_numeric(fin["year"]) == year - 1, "firm_id"].unique()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(with_financials, size=min(n, len(with_financials)), replace=False)
    grouped = {t: dict(tuple(tables[t].groupby("firm_id"))) for t in TABLES}
    bodies = []
    for firm in chosen:
        body = {"year": year, "reasons": 3}
        for t in TABLES:
            rows = grouped[t].get(firm)
            body[t] = [] if rows is None else _jsonable(rows)
        bodies.append(body)
    return bodies


def _post(client, url: str, body: dict) -> tuple[int, float]:
    start = time.perf_counter()
    response = client.post(url, json=body, timeout=120)
    return response.status_code, time.perf_counter() - start


def _start_server(source: Path | None = None, tracking_uri: str | None = None
                  ) -> tuple[subprocess.Popen, str]:
    """`giantwatch serve` on a free port, from this code or from the source tree `source`
    (put first on PYTHONPATH), with the registry `tracking_uri` (default: the environment's
    MLFLOW_TRACKING_URI); returns once /health answers."""
    import httpx

    port = _free_port()
    env = {**os.environ}
    if source is not None:
        env["PYTHONPATH"] = str(source.resolve())
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    server = subprocess.Popen([sys.executable, "-m", "serving.cli", "serve", "--host",
                               "127.0.0.1", "--port", str(port)], env=env,
                              cwd=None if source is None else "/",
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client() as client:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"server stopped:\n{server.stderr.read().decode()[-3000:]}")
            try:
                if client.get(f"{base}/health", timeout=2).status_code == 200:
                    return server, base
            except httpx.HTTPError:
                time.sleep(0.2)


def _split(bodies: list[dict], serve_first: int) -> tuple[list[dict], list[dict]]:
    """(the requests served before timing: the first of `bodies` and `serve_first` more,
    the rest); each body is another firm."""
    return bodies[:serve_first + 1], bodies[serve_first + 1:]


def paired(data: Path, year: int, requests: int, baseline: Path,
           baseline_tracking_uri: str | None = None, serve_first: int = 0) -> dict:
    """This code's server and one from the source tree `baseline` (its models from
    `baseline_tracking_uri` if given: models are tied to their feature-pipeline version),
    up at the same time; each one-firm request goes to both, in alternating order, so that
    a shared machine's load falls on both alike. Returns both medians / p99s and their
    ratio."""
    import httpx

    servers = [_start_server(), _start_server(baseline, baseline_tracking_uri)]
    try:
        first, bodies = _split(one_firm_bodies(data, year, requests + 1 + serve_first),
                               serve_first)
        timings: list[list[float]] = [[], []]
        with httpx.Client() as client:
            for _, base in servers:
                for body in first:
                    _post(client, f"{base}/score", body)
            for i, body in enumerate(bodies):
                for k in (0, 1) if i % 2 == 0 else (1, 0):
                    status, seconds = _post(client, f"{servers[k][1]}/score", body)
                    if status != 200:
                        raise SystemExit(f"status {status} from {servers[k][1]}")
                    timings[k].append(1000 * seconds)
    finally:
        for server, _ in servers:
            server.terminate()
            server.wait(timeout=30)
    this, other = (sorted(t) for t in timings)
    p99 = int(0.99 * (len(this) - 1))
    return {"requests": len(this), "p50_ms": statistics.median(this), "p99_ms": this[p99],
            "baseline_p50_ms": statistics.median(other), "baseline_p99_ms": other[p99],
            "p50_ratio": statistics.median(this) / statistics.median(other)}


def run(data: Path, year: int, requests: int, burst: int, serve_first: int = 0) -> dict:
    import httpx

    started = time.perf_counter()
    server, base = _start_server()
    try:
        with httpx.Client() as client:
            start_s = time.perf_counter() - started
            first, rest = _split(one_firm_bodies(data, year, max(requests, burst) + 1
                                                 + serve_first), serve_first)
            first_status, first_s = _post(client, f"{base}/score", first[0])
            for body in first[1:]:
                _post(client, f"{base}/score", body)
            timings, statuses = [], []
            for body in rest[:requests]:
                status, seconds = _post(client, f"{base}/score", body)
                statuses.append(status)
                timings.append(seconds)
        limits = httpx.Limits(max_connections=burst)
        with httpx.Client(limits=limits) as client, ThreadPoolExecutor(burst) as pool:
            burst_start = time.perf_counter()
            answers = list(pool.map(lambda b: _post(client, f"{base}/score", b),
                                    (rest[i % len(rest)] for i in range(burst))))
            burst_s = time.perf_counter() - burst_start
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = sorted(1000 * t for t in timings)
    return {
        "requests": len(timings),
        "served_first": serve_first,
        "server_start_s": start_s,
        "first_request_ms": 1000 * first_s,
        "first_status": first_status,
        "ok": sum(s == 200 for s in statuses),
        "p50_ms": statistics.median(ms),
        "p90_ms": ms[int(0.90 * (len(ms) - 1))],
        "p99_ms": ms[int(0.99 * (len(ms) - 1))],
        "burst": burst,
        "burst_ok": sum(s == 200 for s, _ in answers),
        "burst_wall_s": burst_s,
        "burst_p50_ms": statistics.median(1000 * t for _, t in answers),
        "burst_max_ms": max(1000 * t for _, t in answers),
    }


def _endpoint_call(app, path: str = "/score"):
    """f(body dict) -> JSON bytes: what the server does for one request, minus HTTP."""
    import types
    import typing

    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    route = next(r for r in app.routes if getattr(r, "path", None) == path)
    request_type = typing.get_type_hints(route.endpoint)["body"]
    request = types.SimpleNamespace(app=app)

    def call(body: dict) -> bytes:
        answer = route.endpoint(body=request_type.model_validate(body), request=request)
        if isinstance(answer, JSONResponse):
            return answer.body
        return JSONResponse(jsonable_encoder(answer)).body

    return call


def pandas_calls(stats) -> int:
    """Calls from the project's own code into pandas (a pstats.Stats' raw table): the
    fixed per-call costs a one-firm request pays."""
    def in_pandas(where: tuple) -> bool:
        return "/pandas/" in where[0]

    def ours(where: tuple) -> bool:
        return where[0].endswith(".py") and "site-packages" not in where[0] \
            and "/lib/python" not in where[0]

    return sum(caller[0] for fn, (*_, callers) in stats.stats.items() if in_pandas(fn)
               for where, caller in callers.items() if ours(where))


# The stages of a one-firm request, as (module, function) wrapped with a CPU clock:
# validation, features, scoring (SHAP, rules, reasons) and output; the rest is the total
# less these (pydantic, rejects, the answer's JSON).
STAGES = {"validation": ("serving.api", "_dataset"),
          "features": ("features.pipeline", "build_features"),
          "scoring": ("serving.score", "score_frame"),
          "output": ("serving.score", "output_columns_of")}


def _stage_clocks() -> dict[str, list[float]]:
    """Wrap each function of STAGES to add its CPU seconds per call to a list (by stage)."""
    import functools
    import importlib

    spent: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for stage, (module_name, name) in STAGES.items():
        module = importlib.import_module(module_name)
        original = getattr(module, name)

        @functools.wraps(original)
        def timed(*args, _original=original, _stage=stage, **kwargs):
            start = time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_stage].append(time.process_time() - start)

        setattr(module, name, timed)
    return spent


def in_process(data: Path, year: int, requests: int, profile: bool = False,
               serve_first: int = 0) -> dict:
    """CPU seconds per one-firm request through the endpoint function (see the docstring),
    in total and per stage (STAGES; medians over the requests)."""
    import cProfile
    import pstats

    from serving.api import create_app
    from serving.score import load_models

    spent = _stage_clocks()

    async def start(app):  # the server's start-up: models loaded and prepared
        async with app.router.lifespan_context(app):
            pass

    app = create_app(models=load_models())
    asyncio.run(start(app))
    call = _endpoint_call(app)
    first, bodies = _split(one_firm_bodies(data, year, requests + 1 + serve_first),
                           serve_first)
    for body in first:
        call(body)
    cpu, wall = [], []
    for times in spent.values():
        times.clear()
    profiler = cProfile.Profile() if profile else None
    for body in bodies:
        c0, w0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        call(body)
        if profiler:
            profiler.disable()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    result = {"requests": len(cpu), "served_first": serve_first, "cpu_p50_ms": 1000 * statistics.median(cpu),
              "wall_p50_ms": 1000 * statistics.median(wall),
              "wall_p99_ms": 1000 * sorted(wall)[int(0.99 * (len(wall) - 1))]}
    if all(len(times) == len(cpu) for times in spent.values()):
        per_request = {stage: np.asarray(times) for stage, times in spent.items()}
        rest = np.asarray(cpu) - sum(per_request.values())
        for stage, times in {**per_request, "rest": rest}.items():
            result[f"{stage}_cpu_p50_ms"] = 1000 * float(np.median(times))
    if profiler:
        stats = pstats.Stats(profiler)
        result["pandas_calls_per_request"] = pandas_calls(stats) / len(cpu)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(30)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/demo"))
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--in-process", type=int, default=0, metavar="N",
                        help="time N requests through the endpoint function, no server")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process run")
    parser.add_argument("--serve-first", type=int, default=0, metavar="N",
                        help="answer N requests of other firms before the timed ones")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also serve the source tree DIR (e.g. `git worktree add` of "
                             "main) and send every request to both, alternating")
    parser.add_argument("--baseline-tracking-uri", metavar="URI",
                        help="the baseline server's MLFLOW_TRACKING_URI (default: the same "
                             "as this one's), for a baseline of another pipeline version")
    args = parser.parse_args()
    if args.baseline:
        r = paired(args.data, args.year, args.requests, args.baseline,
                   args.baseline_tracking_uri, args.serve_first)
        print(f"{r['requests']} one-firm requests to each server, alternating: this code "
              f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms; {args.baseline}: p50 "
              f"{r['baseline_p50_ms']:.0f} ms, p99 {r['baseline_p99_ms']:.0f} ms; "
              f"ratio of medians {r['p50_ratio']:.2f}")
        print(json.dumps({"bench": "api_paired", "year": args.year, **r}))
        return
    if args.in_process:
        r = in_process(args.data, args.year, args.in_process, args.profile, args.serve_first)
        print(f"{r['requests']} one-firm requests in process: CPU per request p50 "
              f"{r['cpu_p50_ms']:.1f} ms, wall p50 {r['wall_p50_ms']:.1f} ms, p99 "
              f"{r['wall_p99_ms']:.1f} ms")
        stages = [s for s in (*STAGES, "rest") if f"{s}_cpu_p50_ms" in r]
        if stages:
            print("CPU per stage (medians): " + ", ".join(
                f"{s} {r[f'{s}_cpu_p50_ms']:.1f} ms" for s in stages))
        print(json.dumps({"bench": "api_in_process", "year": args.year, **r}))
        return
    r = run(args.data, args.year, args.requests, args.burst, args.serve_first)
    print(f"server up in {r['server_start_s']:.1f} s; first request {r['first_request_ms']:.0f} ms")
    print(f"{r['requests']} one-firm requests one after the other: p50 {r['p50_ms']:.0f} ms, "
          f"p90 {r['p90_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms ({r['ok']} answered 200)")
    print(f"{r['burst']} at once: {r['burst_ok']} answered 200 in {r['burst_wall_s']:.1f} s "
          f"(median {r['burst_p50_ms']:.0f} ms, slowest {r['burst_max_ms']:.0f} ms)")
    print(json.dumps({"bench": "api", "year": args.year, **r}))


if __name__ == "__main__":
    main()
