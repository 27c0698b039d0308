"""The one-firm `POST /score` answers what the batch scorer writes for the same firm and year.

In process (FastAPI's TestClient, no server): each request posts one firm with all its
rows, as an API client does; the answer's probabilities, eligibility (rulebook, verdict,
failed criteria, gaps), reasons and identity must equal the batch run's over the whole
universe (`giantwatch score`'s `score_firms`, structured).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.domain import NO_FINANCIALS_RULE
from features.identity import IDENTITY_COLUMNS
from serving.api import create_app
from serving.score import TIERS, load_models, score_firms
from tests.conftest import tracking_env
from tests.serving.test_api import contract_records
from tests.serving.test_score import SCORE_YEAR, trained_store

# The API does not place a firm among the year's candidates (it sees only the posted ones);
# otherwise its reasons are the batch file's words.
PLACEMENT = re.compile(r", (?:higher|lower) than \d+% of candidates")


@pytest.fixture(scope="module")
def models(small_universe, tmp_path_factory):
    with tracking_env(trained_store(small_universe, tmp_path_factory)):
        yield load_models()


@pytest.fixture(scope="module")
def batch_run(models, small_universe) -> tuple[pd.DataFrame, pd.DataFrame]:
    scores, rejects = score_firms(small_universe, SCORE_YEAR, models=models, structured=True,
                                  reviews={})
    return scores.set_index("firm_id"), rejects


@pytest.fixture(scope="module")
def batch(batch_run) -> pd.DataFrame:
    return batch_run[0]


def _chosen(batch: pd.DataFrame) -> list[str]:
    """A few firms per tier's candidates (eligible ones where there are), and a
    non-candidate of every tier."""
    chosen = []
    for tier in TIERS:
        candidates = batch[batch[f"p_{tier}"].notna()]
        chosen += [*candidates.index[candidates[f"eligible_{tier}"] == "pass"][:1],
                   *candidates.index[:2]]
    outside = batch.index[batch[[f"p_{t}" for t in TIERS]].isna().all(axis=1)]
    return list(dict.fromkeys([*chosen, *outside[:1]]))


def test_one_firm_answers_equal_the_batch_file(models, batch, small_universe):
    firms = _chosen(batch)
    assert len(firms) >= 5
    with TestClient(create_app(models=models)) as client:
        for firm in firms:
            body = {"year": SCORE_YEAR, **contract_records(small_universe, [firm])}
            response = client.post("/score", json=body)
            assert response.status_code == 200, response.text
            [result] = response.json()["results"]
            assert response.json()["rejects"] == []
            _assert_batch_row(result, batch.loc[firm], firm)


def test_a_firm_without_financials_is_rejected_as_the_batch_rejects_it(models, batch_run,
                                                                        small_universe):
    """A request of a scored firm and a firm founded before the year without financials for
    the year before: the first is answered as the batch file has it, the second rejected
    with the batch run's reject row."""
    scores, rejects = batch_run
    missing = rejects[rejects["rule"] == NO_FINANCIALS_RULE].set_index("firm_id")
    assert len(missing)
    absent, scored = missing.index[0], scores.index[0]
    body = {"year": SCORE_YEAR, **contract_records(small_universe, [scored, absent])}
    with TestClient(create_app(models=models)) as client:
        response = client.post("/score", json=body)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    _assert_batch_row(result, scores.loc[scored], scored)
    [reject] = [r for r in response.json()["rejects"] if r["firm_id"] == absent]
    expected = missing.loc[absent]
    for column in ("table", "column", "rule", "reason", "record"):
        assert reject[column] == expected[column], column
    assert reject["year"] == SCORE_YEAR and reject["row"] is None


def _assert_batch_row(result: dict, expected: pd.Series, firm: str) -> None:
    """One firm's answer of POST /score equals its row of the batch file (structured)."""
    assert result["firm_id"] == firm
    for column in IDENTITY_COLUMNS:
        assert result[column] == expected[column], (firm, column)
    for tier in TIERS:
        p = result[f"p_{tier}"]
        if pd.isna(expected[f"p_{tier}"]):
            assert p is None and result["eligibility"][tier] is None
            assert result["reasons"][tier] is None
            continue
        np.testing.assert_allclose(p, expected[f"p_{tier}"], rtol=1e-12, atol=0)
        assert result["eligibility"][tier] == {
            "rulebook": expected[f"rulebook_{tier}"],
            "status": expected[f"eligible_{tier}"],
            "failed": list(expected[f"failed_{tier}"]),
            "gaps": dict(expected[f"gaps_{tier}"])}, (firm, tier)
        for side in ("for", "against"):
            assert result["reasons"][tier][side] == PLACEMENT.sub(
                "", expected[f"reasons_{tier}_{side}"]), (firm, tier, side)
