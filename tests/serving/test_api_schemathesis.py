"""Schemathesis against a live `giantwatch serve`: requests generated from the OpenAPI
schema (its examples, boundary values and random bodies, a bounded number per operation)
never get a 5xx, and every answer's status, content type and body conform to the schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.test_api import _free_port
from tests.serving.test_score import trained_store

BIN = Path(sys.executable).parent
KEY = "schemathesis-key"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


@pytest.fixture(scope="module")
def live(small_universe, tmp_path_factory):
    store = trained_store(small_universe, tmp_path_factory)
    port, log = _free_port(), tmp_path_factory.mktemp("st") / "server.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "GIANTWATCH_API_KEY": KEY}
    with open(log, "wb") as sink:
        server = subprocess.Popen([str(BIN / "giantwatch"), "serve", "--port", str(port)],
                                  env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield base, log
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_generated_requests_get_no_5xx_and_conforming_answers(live, tmp_path):
    base, log = live
    run = subprocess.run(
        [str(BIN / "schemathesis"), "run", f"{base}/openapi.json", "--header",
         f"X-API-Key: {KEY}", "--checks", CHECKS, "--max-examples", "20", "--seed", "12",
         "--workers", "1", "--request-timeout", "120", "--generation-database", "none",
         "--no-color"],
        capture_output=True, text=True, timeout=540, cwd=tmp_path, check=False)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", report)
    assert counts and int(counts[1]) >= 100 and counts[1] == counts[2], report[-3000:]
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("page_path, text", [("/docs", "/score"),
                                             ("/redoc", "Probabilities, reasons and rule")])
def test_the_docs_render_in_chromium_with_no_network(live, page_path, text):
    """Every request that leaves the server is refused: the pages must still render. (ReDoc's
    footer asks its CDN for a decorative logo; no script, style or font is fetched.)"""

    from playwright import sync_api

    from tests.serving.browser import CHROMIUM_ARGS, chromium

    base, _ = live
    executable = chromium()
    assert executable, "chromium is not installed: run `make install`"
    outside, errors = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def only_local(route):
                if route.request.url.startswith(base):
                    return route.continue_()
                outside.append((route.request.resource_type, route.request.url))
                return route.abort()

            page.route("**/*", only_local)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + page_path, wait_until="load")
            page.get_by_text(text).first.wait_for(timeout=20_000)
        finally:
            browser.close()
    assert not errors and all(kind == "image" for kind, _ in outside), (errors, outside)
