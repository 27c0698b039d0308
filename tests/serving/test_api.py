"""The HTTP API, driven over real HTTP against a `giantwatch serve` server process."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from serving.score import TIERS, load_models, score_firms
from tests.conftest import tracking_env
from tests.serving.test_score import SCORE_YEAR, trained_store

API_KEY = "test-key-5f2c"
AUTH = {"X-API-Key": API_KEY}
TABLES = ("firms", "financials", "patents", "certifications")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def contract_records(folder, firm_ids) -> dict:
    """The four tables' rows of `firm_ids` as JSON records (dates as YYYY-MM-DD)."""
    payload = {}
    for table in TABLES:
        frame = pd.read_parquet(folder / f"{table}.parquet")
        frame = frame[frame["firm_id"].isin(firm_ids)]
        payload[table] = json.loads(frame.to_json(orient="records", date_format="iso",
                                                  date_unit="s"))
        for record in payload[table]:
            for key in ("filed", "granted", "lapsed"):
                if record.get(key):
                    record[key] = record[key][:10]
    return payload


@pytest.fixture(scope="module")
def store(small_universe, tmp_path_factory):
    return trained_store(small_universe, tmp_path_factory)


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("api") / "server.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "GIANTWATCH_API_KEY": API_KEY}
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "giantwatch"), "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2"],
            env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, "server did not come up:\n" + log.read_text()[-3000:]
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def firm_ids(small_universe):
    fin = pd.read_parquet(small_universe / "financials.parquet")
    return sorted(fin.loc[fin["year"] == SCORE_YEAR - 1, "firm_id"])[:12]


@pytest.fixture(scope="module")
def payload(small_universe, firm_ids):
    return {"year": SCORE_YEAR, **contract_records(small_universe, firm_ids)}


def test_health_is_open_and_the_rest_needs_the_key(server, payload):
    health = httpx.get(f"{server}/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert set(health.json()["models"]) == set(TIERS)
    assert httpx.post(f"{server}/score", json=payload, timeout=60).status_code == 401
    wrong = httpx.post(f"{server}/score", json=payload, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    assert httpx.get(f"{server}/model").status_code == 401
    assert httpx.get(f"{server}/docs").status_code == 200
    assert "/score" in httpx.get(f"{server}/openapi.json").json()["paths"]


def test_model_endpoint_describes_the_registered_versions(server):
    body = httpx.get(f"{server}/model", headers=AUTH).json()
    for tier in TIERS:
        info = body["tiers"][tier]
        assert info["registered_name"] == f"giantwatch-{tier}"
        assert "production" in info["aliases"] and info["version"]
        assert len(info["data_fingerprint"]) == 16
        assert info["feature_pipeline_version"]
        assert 0 <= info["cv_metrics"]["pr_auc"] <= 1


def test_score_matches_batch_scoring(server, payload, firm_ids, small_universe, store):
    response = httpx.post(f"{server}/score", json=payload, headers=AUTH, timeout=120)
    assert response.status_code == 200, response.text
    results = {r["firm_id"]: r for r in response.json()["results"]}
    assert sorted(results) == firm_ids
    with tracking_env(store):
        batch, _ = score_firms(small_universe, SCORE_YEAR, models=load_models())
    batch = batch.set_index("firm_id").loc[firm_ids]
    for tier in TIERS:
        got = np.array([np.nan if results[f][f"p_{tier}"] is None else results[f][f"p_{tier}"]
                        for f in firm_ids])
        np.testing.assert_allclose(got, batch[f"p_{tier}"], rtol=1e-9, atol=1e-12)
    for firm in firm_ids:
        for tier in TIERS:
            eligibility = results[firm]["eligibility"][tier]
            if results[firm][f"p_{tier}"] is None:
                assert eligibility is None and results[firm]["reasons"][tier] is None
            else:
                assert eligibility["status"] == batch.loc[firm, f"eligible_{tier}"]
                assert eligibility["rulebook"] == batch.loc[firm, f"rulebook_{tier}"]
                assert isinstance(eligibility["failed"], list)
                assert isinstance(eligibility["gaps"], dict)
                # The API does not place firms among candidates; the words are otherwise
                # the batch file's.
                assert results[firm]["reasons"][tier]["for"] == re.sub(
                    r", (?:higher|lower) than \d+% of candidates", "",
                    batch.loc[firm, f"reasons_{tier}_for"])


def test_explain_answers_from_the_posted_data_only(server, payload):
    """POST /explain is stateless: one client's data never reaches another's answer, and
    the explanation is the one /score gives for the same data."""
    body = {**json.loads(json.dumps(payload)), "reasons": 3}
    scored = httpx.post(f"{server}/score", json=body, headers=AUTH, timeout=120).json()
    firm = next(r for r in scored["results"] if r["p_little_giant"] is not None)
    ask = {**body, "firm_id": firm["firm_id"], "tier": "little_giant", "top": 5}
    answer = httpx.post(f"{server}/explain", json=ask, headers=AUTH, timeout=120)
    assert answer.status_code == 200
    explained = answer.json()
    assert explained["p_little_giant"] == pytest.approx(firm["p_little_giant"], rel=1e-9)
    assert explained["eligibility"]["little_giant"] == firm["eligibility"]["little_giant"]
    assert explained["reasons"]["little_giant"] == firm["reasons"]["little_giant"]
    from tests.outputs_doc import documented

    assert set(explained) - set(firm) == {"year", "tier"} | documented("POST /explain")
    contributions = explained["contributions"]
    assert len(contributions) == 5 and all(c["label_en"] and c["label_zh"] for c in contributions)
    sizes = [abs(c["contribution"]) for c in contributions]
    assert sizes == sorted(sizes, reverse=True)
    png = httpx.post(f"{server}/explain", json={**ask, "format": "png"}, headers=AUTH,
                     timeout=120)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    # Another client posting other data cannot reach the firm just scored.
    stranger = {"year": body["year"], "firms": [], "financials": [], "patents": [],
                "certifications": [], "firm_id": firm["firm_id"], "tier": "little_giant"}
    other = httpx.post(f"{server}/explain", json=stranger, headers=AUTH, timeout=60)
    assert other.status_code in (404, 422)
    assert firm["firm_id"] not in other.text or "not in the posted firms" in other.text
    assert httpx.get(f"{server}/firms/{firm['firm_id']}/explain.png",
                     headers=AUTH).status_code == 404  # the shared-state endpoint is gone


def test_a_firm_without_financials_is_rejected_not_dropped(server, payload):
    body = json.loads(json.dumps(payload))
    body["firms"].append({"firm_id": "NEWFIRM", "province": "33", "industry_code": "C3491",
                          "founded_year": 2001})
    response = httpx.post(f"{server}/score", json=body, headers=AUTH, timeout=120)
    assert response.status_code == 200
    rejects = response.json()["rejects"]
    assert [r["record"] for r in rejects if "NEWFIRM" in r["record"]]
    assert "NEWFIRM" not in {r["firm_id"] for r in response.json()["results"]}


def test_bad_payload_is_422_naming_table_column_and_record(server, payload):
    body = json.loads(json.dumps(payload))
    body["financials"][2]["revenue"] = -5
    body["firms"][1]["province"] = "999"
    response = httpx.post(f"{server}/score", json=body, headers=AUTH, timeout=60)
    assert response.status_code == 422
    detail = " ".join(response.json()["detail"])
    assert "financials, column revenue, record 2: must be >= 0" in detail
    assert "firms, column province, record 1" in detail
    errors = response.json()["errors"]
    assert any(e["table"] == "financials" and e["column"] == "revenue" and e["record"] == 2
               for e in errors)
    missing = httpx.post(f"{server}/score", json={"year": SCORE_YEAR}, headers=AUTH)
    assert missing.status_code == 422 and "firms" in missing.text
    assert httpx.get(f"{server}/health").status_code == 200


def test_bodies_over_the_limit_are_413_declared_or_streamed(server):
    big = b'{"year": 2025, "firms": [' + b" " * (11 * 1024 * 1024) + b"]}"
    declared = httpx.post(f"{server}/score", content=big, headers={
        **AUTH, "Content-Type": "application/json"}, timeout=60)
    assert declared.status_code == 413

    def chunks():
        for start in range(0, len(big), 256 * 1024):
            yield big[start:start + 256 * 1024]

    streamed = httpx.post(f"{server}/score", content=chunks(), headers={
        **AUTH, "Content-Type": "application/json"}, timeout=60)
    assert streamed.status_code == 413
    assert httpx.get(f"{server}/health").status_code == 200


def test_200_concurrent_requests_are_all_answered(server, small_universe, firm_ids):
    payloads = [{"year": SCORE_YEAR, **contract_records(small_universe, [firm])}
                for firm in firm_ids[:4]]
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(headers=AUTH, timeout=300, limits=limits) as client:
        def post(i: int) -> tuple[int, int]:
            response = client.post(f"{server}/score", json=payloads[i % len(payloads)])
            return response.status_code, len(response.json().get("results", []))

        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(post, range(200)))
    assert answers == [(200, 1)] * 200
    assert httpx.get(f"{server}/health").status_code == 200


def test_whatif_plans_from_the_posted_data_only(server, payload):
    """POST /whatif: a plan for a posted candidate, each step rescored, the target its own;
    a firm that is not posted is a 404, and nothing of the request is kept."""
    scored = httpx.post(f"{server}/score", json=payload, headers=AUTH, timeout=120).json()
    candidate = next(r for r in scored["results"] if r["p_little_giant"] is not None)
    body = {**payload, "firm_id": candidate["firm_id"], "tier": "little_giant",
            "target_probability": min(1.0, 2 * candidate["p_little_giant"])}
    answer = httpx.post(f"{server}/whatif", json=body, headers=AUTH, timeout=300)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["before"]["probability"] == pytest.approx(candidate["p_little_giant"], rel=1e-9)
    assert plan["before"]["eligible"] == candidate["eligibility"]["little_giant"]["status"]
    assert plan["target"] == body["target_probability"]
    probabilities = [plan["before"]["probability"]] + [s["probability"] for s in plan["steps"]]
    assert plan["after"]["probability"] == probabilities[-1]
    assert all(s["unit"] in ("CNY", "persons", "patents", "flag") for s in plan["steps"])
    assert plan["reached"] == (plan["after"]["eligible"] != "fail"
                               and plan["after"]["probability"] >= plan["target"])
    missing = httpx.post(f"{server}/whatif", json={**body, "firm_id": "nobody"}, headers=AUTH,
                         timeout=60)
    assert missing.status_code == 404 and "not in the firms table" in missing.text
