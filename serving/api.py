"""HTTP API: score firms sent as data-contract records, with reasons and rule eligibility.

    uvicorn --factory serving.api:create_app      or      python -m serving.api --port 8000

Endpoints: POST /score, POST /explain, GET /model, GET /health, and the OpenAPI docs at
/docs. Nothing a client posts is kept: POST /explain scores the posted data again. The production models are loaded once, when the server starts.

Authentication: if the environment variable GIANTWATCH_API_KEY is set when the app is
created, every endpoint except GET /health and the docs (/docs, /openapi.json) needs the
header ``X-API-Key: <key>`` and answers 401 without it. /health stays open so that load
balancers and orchestrators can probe the server without the key.

Limits: a request body over `max_body_bytes` (default 10 MiB) is answered 413, whether it
declares its Content-Length or streams chunks; a malformed request and data that breaks the
data contract are answered 422 in one documented shape (`Problems`): sentences in `detail`,
and in `errors` the table, column, record (0-based) and rule of each failing cell. Record
values are JSON scalars; ids are strings; `rulebook` names only shipped rulebooks (by id,
code or year), never a file on the server.

The docs (/docs, /redoc) load Swagger UI and ReDoc from the app itself (the fastapi-offline
package's assets): they work with no network and behind any firewall.
"""

from __future__ import annotations

import functools
import math
import os
import secrets
import threading
from contextlib import asynccontextmanager

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi_offline import FastAPIOffline

from features.contract import TABLES
from features.identity import IDENTITY_COLUMNS
from serving.api_schema import (
    ANSWERS,
    ExplainRequest,
    Message,
    Problems,
    ScoreRequest,
    WhatIfRequest,
    request_problems,
    shipped_rulebook_names,
)
from serving.score import ScoringProblem
from training.settings import DEFAULT_MAX_BODY, get_settings

__all__ = ["Problems", "ScoreRequest", "create_app", "serve", "shipped_rulebook_names"]

API_KEY_ENV = "GIANTWATCH_API_KEY"
# A body over the limit is still read (and dropped) up to this many bytes, so that the
# client gets the 413 instead of a reset connection in the middle of its upload.
DRAIN_FACTOR = 8
# Scoring is CPU-bound on LightGBM's threads: more concurrent scorings than cores only
# thrash; the rest of the requests wait their turn in the thread pool.
CONCURRENT_SCORINGS = 2
class BodyLimit:
    """ASGI middleware answering 413 to bodies over `max_bytes` (declared or streamed);
    an accepted body is buffered (at most `max_bytes`) and replayed to the app."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._too_large(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return await self._too_large(scope, receive, send, more=message.get("more_body"))
            chunks.append(body)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send, more: bool = True):
        drained = 0
        while more and drained <= DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        response = JSONResponse({"detail": f"request body is larger than the limit of "
                                           f"{self.max_bytes:,} bytes"}, status_code=413)
        await response(scope, receive, send)


def _clean(value):
    """JSON-safe scalar: NaN/NA -> None, numpy scalars -> Python."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _contract_errors(exc) -> list[dict]:
    """The failing cells as records; a cross-column rule ("a <= b") is reported on `a` only
    (pandera lists every column of the failing row)."""
    cases = exc.failure_cases
    if cases is None or not len(cases):
        return []
    subject = cases["check"].astype(str).str.extract(r"^(\w+) (?:<=|>=) \w+$")[0]
    cases = cases[subject.isna().to_numpy() | (subject == cases["column"]).to_numpy()]
    return [{"table": c.table, "column": _clean(c.column), "record": _clean(c.row),
             "rule": c.check, "value": None if _clean(c.failure_case) is None
             else str(c.failure_case)}
            for c in cases.head(100).itertuples(index=False)]


def _results(columns: dict, tiers) -> list[dict]:
    """One answer per firm from the output columns (`serving.output.output_columns_of`)."""
    results = []
    for i in range(len(columns["firm_id"])):
        def cell(name: str, i=i):
            return _clean(columns[name][i])

        item = {"firm_id": cell("firm_id"), **{c: cell(c) for c in IDENTITY_COLUMNS},
                **{f"p_{t}": cell(f"p_{t}") for t in tiers},
                **{f"rank_{t}": cell(f"rank_{t}") for t in tiers}}
        assessed = {t: cell(f"eligible_{t}") is not None for t in tiers}
        item["reasons"] = {t: {"for": cell(f"reasons_{t}_for"),
                               "against": cell(f"reasons_{t}_against")}
                           if assessed[t] else None for t in tiers}
        item["eligibility"] = {t: {"rulebook": cell(f"rulebook_{t}"),
                                   "status": cell(f"eligible_{t}"),
                                   "failed": cell(f"failed_{t}"), "gaps": cell(f"gaps_{t}")}
                               if assessed[t] else None for t in tiers}
        results.append(item)
    return results


def create_app(model_alias: str = "production", max_body_bytes: int = DEFAULT_MAX_BODY,
               models: dict | None = None, prepare: bool = True) -> FastAPI:
    """The FastAPI app. `models` (from `serving.score.load_models`) skips the registry;
    `prepare=False` skips scoring the documented example at start (see `_prepare`)."""
    secret = get_settings().api_key
    api_key = (secret.get_secret_value() or None) if secret is not None else None
    scoring = threading.BoundedSemaphore(CONCURRENT_SCORINGS)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from serving.score import load_models

        app.state.models = models or load_models(model_alias)
        if prepare:
            _prepare(app.state.models)
        yield

    app = FastAPIOffline(title="giantwatch", version="0.1.0", lifespan=lifespan, description=(
        "Scores Chinese SMEs for the Specialized SME, Little Giant and Manufacturing Single "
        "Champion lists with the registered production models. "
        + ("Send the API key in the X-API-Key header (not needed for /health)."
           if api_key else "")))
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(request_problems(exc).model_dump(), status_code=422)

    key_header = APIKeyHeader(name="X-API-Key", auto_error=False)

    # A coroutine: a plain function would cost every request a trip to the thread pool.
    async def authorised(key: str | None = Depends(key_header)) -> None:
        if api_key and not (key and secrets.compare_digest(key.encode(), api_key.encode())):
            raise HTTPException(401, "missing or wrong X-API-Key header",
                                headers={"WWW-Authenticate": "APIKey"})

    @app.get("/health", summary="Liveness and loaded model versions (no key needed)")
    def health(request: Request) -> dict:
        loaded = request.app.state.models
        return {"status": "ok", "alias": model_alias,
                "models": {t: m.version for t, m in loaded.items()}}

    @app.get("/model", dependencies=[Depends(authorised)], responses={401: ANSWERS[401]},
             summary="Registry facts of the models in use, per tier")
    def model_info(request: Request) -> dict:
        return {"alias": model_alias,
                "tiers": {t: m.info() for t, m in request.app.state.models.items()}}

    @app.post("/score", dependencies=[Depends(authorised)], responses=ANSWERS,
              summary="Probabilities, reasons and rule eligibility per firm and tier")
    def score(body: ScoreRequest, request: Request):
        dataset = _dataset(body)
        if isinstance(dataset, JSONResponse):
            return dataset
        try:
            with scoring:
                columns, rejects, _ = _score(dataset, body, request.app.state.models)
        except ScoringProblem as exc:
            return JSONResponse({"detail": [str(exc)], "errors": []}, status_code=422)
        loaded = request.app.state.models
        return {"year": body.year, "models": {t: m.version for t, m in loaded.items()},
                "results": _results(columns, tuple(loaded)),
                "rejects": [{k: _clean(v) for k, v in r.items()}
                            for r in rejects.to_dict(orient="records")] if len(rejects) else []}

    @app.post("/explain", dependencies=[Depends(authorised)],
              responses={200: {"content": {"application/json": {}, "image/png": {}}},
                         404: {"model": Message, "description": "the firm is not in the "
                               "posted firms, or has nothing to explain"}, **ANSWERS},
              summary="One firm's probability, eligibility, reasons and SHAP contributions "
                      "for one tier, from the posted data only (JSON or a PNG waterfall)")
    def explain(body: ExplainRequest, request: Request):
        dataset = _dataset(body)
        if isinstance(dataset, JSONResponse):
            return dataset
        if not (dataset.firms["firm_id"] == body.firm_id).any():
            raise HTTPException(404, f"firm {body.firm_id!r} is not in the posted firms")
        try:
            with scoring:
                columns, _, scored = _score(dataset, body, request.app.state.models,
                                            firm_ids=[body.firm_id])
        except ScoringProblem as exc:
            return JSONResponse({"detail": [str(exc)], "errors": []}, status_code=422)
        tier_score = None if scored is None else scored.tiers.get(body.tier)
        if tier_score is None or tier_score.contributions is None:
            why = ("has no financials for the year before" if scored is None
                   else f"is not a {body.tier} candidate (it holds an excluding title or was "
                        "founded in the as-of year)")
            raise HTTPException(404, f"firm {body.firm_id!r} {why}: nothing to explain")
        if body.format == "png":
            from serving.report_plots import waterfall_png

            return Response(waterfall_png(tier_score.contributions, scored.X, max_display=12,
                                          dpi=100), media_type="image/png")
        [result] = _results(columns, (body.tier,))
        return {"year": body.year, "tier": body.tier, **result,
                "contributions": _top_contributions(tier_score.contributions, scored.X,
                                                    body.top)}

    @app.post("/whatif", dependencies=[Depends(authorised)],
              responses={404: {"model": Message, "description": "the firm is not in the "
                               "posted firms, or is not a candidate of the tier"}, **ANSWERS},
              summary="What it would take: the smallest changes to the firm's actionable "
                      "inputs that make it eligible and reach the target probability, each "
                      "step rescored (from the posted data only)")
    def whatif(body: WhatIfRequest, request: Request):
        from serving.whatif_run import WhatIfProblem, as_json, plan_firm

        dataset = _dataset(body)
        if isinstance(dataset, JSONResponse):
            return dataset
        try:
            with scoring:
                result = plan_firm(dataset, body.year, body.firm_id, body.tier,
                                   request.app.state.models, body.target_probability,
                                   body.rulebook, files=False)
        except (WhatIfProblem, ScoringProblem) as exc:
            raise HTTPException(404, str(exc)) from None
        return as_json(result)

    return app


def _prepare(models: dict) -> None:
    """Score the documented example once at start, so that the first request pays neither
    for the SHAP tables and the compiled kernel (models.treeshap) nor for lazy imports,
    schemas and the current rulebooks."""
    for registered in models.values():
        registered.model.shap_tables()  # the example is not every tier's candidate
    example = ScoreRequest(**ScoreRequest.model_config["json_schema_extra"]["examples"][0])
    dataset = _dataset(example)
    if not isinstance(dataset, JSONResponse):
        _score(dataset, example, models)


@functools.lru_cache(maxsize=64)
def _rulebooks(rulebook: str | None, year: int, tiers: tuple[str, ...]) -> dict:
    from serving.score import rulebooks_for

    # A client names rulebooks by year or id only, never by a path on the server.
    return rulebooks_for(rulebook, year, tiers, files=False)


def _dataset(body: ScoreRequest):
    """The posted tables as a validated Dataset, or the 422 answer naming the problems."""
    from features.contract import ContractError, from_frames

    # Records as lists of dicts: the contract makes each table's one frame of them.
    tables = {t: [r.model_dump() for r in getattr(body, t)] for t in TABLES}
    try:
        return from_frames(tables, source="request", money_unit=body.money_unit)
    except ContractError as exc:
        return JSONResponse({"detail": exc.problems, "errors": _contract_errors(exc)},
                            status_code=422)


def _score(dataset, body: ScoreRequest, models: dict, firm_ids=None):
    """(output columns, rejects, the scoring core's ScoredFrame or None) of the posted
    firms (or of `firm_ids` among them)."""
    from serving.partitions import missing_financials, scored_firm_ids
    from serving.score import score_chunk

    rulebooks = _rulebooks(body.rulebook, body.year, tuple(models))
    scored_ids = scored_firm_ids(dataset, body.year)
    firm_ids = scored_ids if firm_ids is None else \
        scored_ids[pd.Index(scored_ids).isin(list(firm_ids))]
    # The scored ids are among the posted firms (rows of unknown firms are rejected first):
    # when they are all of them, no firm lacks financials (the usual one-firm request).
    missing = _no_missing_financials(body.year) if len(firm_ids) == len(dataset.firms) \
        else missing_financials(dataset, body.year, firm_ids)
    # Usually both are empty: pandas' concat costs about a millisecond even then.
    rejects = pd.concat([dataset.rejects, missing], ignore_index=True) \
        if len(dataset.rejects) or len(missing) else missing
    if not len(firm_ids):
        return {"firm_id": []}, rejects, None
    columns, scored = score_chunk(dataset, body.year, firm_ids,
                                  {t: m.model for t, m in models.items()}, rulebooks,
                                  body.reasons, structured=True, ranks=False)
    return columns, rejects, scored


@functools.lru_cache(maxsize=16)
def _empty_missing_financials(year: int) -> pd.DataFrame:
    from features.domain import no_financials_rejects

    return no_financials_rejects([], year)


def _no_missing_financials(year: int) -> pd.DataFrame:
    """`serving.partitions.missing_financials` of a request whose every firm is scored: no
    rows, its columns (built once per year, copied)."""
    return _empty_missing_financials(year).copy()


def _top_contributions(contributions: pd.DataFrame, X: pd.DataFrame, top: int) -> list[dict]:
    """The `top` strongest SHAP contributions of the one explained row, with the feature's
    English and Chinese labels and the firm's value (change in log-odds relative to the
    year's selection rate)."""
    from features.labels import feature_label

    row = contributions.drop(columns=["bias"]).iloc[0]
    strongest = row.abs().sort_values(ascending=False, kind="stable").index[:top]
    values = X.loc[contributions.index[0]]
    return [{"feature": name, "label_en": feature_label(name, "en"),
             "label_zh": feature_label(name, "zh"), "value": _clean(values.get(name)),
             "contribution": float(row[name])} for name in strongest]


def app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes (`serve(workers=N)`): the settings come from
    GIANTWATCH_MODEL_ALIAS and GIANTWATCH_MAX_BODY_BYTES (training.settings)."""
    settings = get_settings()
    return create_app(settings.model_alias, settings.max_body_bytes)


def serve(host: str = "127.0.0.1", port: int = 8000, model_alias: str = "production",
          max_body_bytes: int = DEFAULT_MAX_BODY, workers: int = 1) -> None:
    """Run the API with uvicorn until interrupted. The registry is checked first, so that a
    missing model or a pipeline mismatch stops with one clear ScoringProblem. Scoring small
    requests is CPU-bound Python: `workers` > 1 runs that many processes (each loads the
    models; no request state is kept, so any worker answers any request)."""
    import uvicorn

    from serving.score import load_models, registered_versions

    if workers <= 1:
        app = create_app(model_alias, max_body_bytes, models=load_models(model_alias))
        uvicorn.run(app, host=host, port=port)
        return
    registered_versions(model_alias)  # each worker loads the models itself
    os.environ["GIANTWATCH_MODEL_ALIAS"] = model_alias
    os.environ["GIANTWATCH_MAX_BODY_BYTES"] = str(max_body_bytes)
    uvicorn.run("serving.api:app_from_env", factory=True, host=host, port=port, workers=workers)
