"""What the API accepts: ids as strings, cells as JSON scalars, shipped rulebooks only, no
overflow; every 422 in the documented `Problems` shape naming table, column and record;
and docs that need no network. Validation answers before any model is touched, so the app
runs here with no registry."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from serving.api import Problems, ScoreRequest, create_app, shipped_rulebook_names
from tests.features.contract_fixtures import contract_tables

YEAR = 2022


@pytest.fixture(scope="module")
def client():
    # Requests that fail validation never reach the models; none are loaded.
    # No models: every request here is refused before scoring (nothing to prepare).
    with TestClient(create_app(models={"little_giant": None}, prepare=False)) as test_client:
        yield test_client


@pytest.fixture()
def body() -> dict:
    tables = contract_tables()
    payload = {"year": YEAR}
    for name, frame in tables.items():
        payload[name] = [{k: v for k, v in record.items() if not pd.isna(v)}
                         for record in frame.to_dict(orient="records")]
    return copy.deepcopy(payload)


def problems(response) -> Problems:
    assert response.status_code == 422, response.text
    parsed = Problems.model_validate(response.json())
    assert set(response.json()) == {"detail", "errors"}
    assert parsed.detail and all(isinstance(d, str) for d in parsed.detail)
    return parsed


@pytest.mark.parametrize("rulebook", ["/etc/passwd.toml", "../../x.toml", "x.toml",
                                      "little_giant_1999", "2022,/etc/passwd"])
def test_rulebook_names_only_shipped_rulebooks(client, body, rulebook):
    answer = problems(client.post("/score", json={**body, "rulebook": rulebook}))
    assert [e.column for e in answer.errors] == ["rulebook"]
    assert "is not a shipped rulebook" in answer.detail[0]


def test_shipped_rulebook_ids_codes_and_years_are_accepted():
    names = shipped_rulebook_names()
    assert {"little_giant_2022", "2022", "2016"} <= names
    for name in ("2022", "little_giant_2022", "2022, champion_2023"):
        assert ScoreRequest(year=YEAR, firms=[{"firm_id": "a"}], rulebook=name).rulebook == name


@pytest.mark.parametrize("firm_id", [["a", "b"], {"x": 1}, 17, None, ""])
def test_firm_id_must_be_a_string(client, body, firm_id):
    body["firms"][1]["firm_id"] = firm_id
    answer = problems(client.post("/score", json=body))
    assert (answer.errors[0].table, answer.errors[0].column, answer.errors[0].record) == \
        ("firms", "firm_id", 1)
    assert answer.detail[0].startswith("firms, column firm_id, record 1:")


def test_a_cell_must_be_a_json_scalar(client, body):
    body["financials"][3]["revenue"] = [1, 2]
    answer = problems(client.post("/score", json=body))
    assert {(e.table, e.column, e.record) for e in answer.errors} == {("financials", "revenue", 3)}


@pytest.mark.parametrize("field, value", [("reasons", False), ("reasons", "3"),
                                          ("year", True), ("year", 2022.5)])
def test_numbers_are_not_booleans_or_text(client, body, field, value):
    answer = problems(client.post("/score", json={**body, field: value}))
    assert [(e.table, e.column) for e in answer.errors] == [(None, field)]


@pytest.mark.parametrize("table, column, value, rule", [
    ("financials", "employees", 1e20, "is too large"),
    ("financials", "employees", 10**30, "is too large"),
    ("financials", "employees", 5e7, "must be below 10,000,000"),
    ("financials", "revenue", 1e300, "must be below 1e15 CNY"),
    ("firms", "parent_revenue", 1e300, "must be below 1e15 CNY"),
])
def test_overflow_is_422_naming_the_cell(client, body, table, column, value, rule):
    body[table][2][column] = value
    answer = problems(client.post("/score", json=body))
    assert any(e.table == table and e.column == column and e.record == 2 for e in answer.errors)
    assert f"{table}, column {column}, record 2: {rule}" in answer.detail[0]


def test_a_missing_column_is_named_not_the_schema(client, body):
    for record in body["firms"]:
        record.pop("province")
    answer = problems(client.post("/score", json=body))
    assert [(e.table, e.column) for e in answer.errors] == [("firms", "province")]
    assert "Schema" not in " ".join(answer.detail) + str(answer.errors)


def test_no_firms_is_422(client, body):
    answer = problems(client.post("/score", json={**body, "firms": []}))
    assert answer.detail == ["firms: has no records; firms is required"]


def test_malformed_json_is_422_in_the_same_shape(client):
    response = client.post("/score", content=b"{not json",
                           headers={"Content-Type": "application/json"})
    assert problems(response).errors[0].table is None


def test_the_422_shape_is_documented_for_every_post(client):
    schema = client.get("/openapi.json").json()
    for path in ("/score", "/explain"):
        answers = schema["paths"][path]["post"]["responses"]
        assert answers["422"]["content"]["application/json"]["schema"]["$ref"] == \
            "#/components/schemas/Problems"
    problem = schema["components"]["schemas"]["Problem"]["properties"]
    assert set(problem) == {"table", "column", "record", "rule", "value"}
    firm = schema["components"]["schemas"]["FirmRecord"]["properties"]["firm_id"]
    assert firm["type"] == "string"


@pytest.mark.parametrize("page, asset", [("/docs", "swagger-ui-bundle.js"),
                                         ("/redoc", "redoc.standalone.js")])
def test_docs_load_their_assets_from_the_app(client, page, asset):
    html = client.get(page).text
    assert asset in html
    assert "cdn" not in html.lower() and "https://" not in html
    url = next(part.split('"')[0] for part in html.split('src="')[1:] if asset in part)
    script = client.get(url)
    assert script.status_code == 200 and len(script.content) > 100_000


def test_the_422_fields_are_documented():
    from tests.outputs_doc import documented

    assert set(Problems.model_fields["errors"].annotation.__args__[0].model_fields) == \
        documented("422 answers")


def test_money_in_wan_is_refused_unless_declared(client, body):
    from serving.api import _dataset

    firm = body["financials"][0]
    body["financials"] = [{**firm, "year": 2000 + i, "revenue": 8000.0, "main_revenue": None,
                           "total_assets": 12000.0, "total_liabilities": 5000.0,
                           "net_profit": 600.0, "rd_expense": 400.0, "export_revenue": None,
                           "subsidies": None, "equity_raised": None}
                          for i in range(6, 20)]
    for record in body["firms"]:
        record["founded_year"] = 2000
    answer = problems(client.post("/score", json=body))
    assert '"money_unit": "wan"' in answer.detail[0] and "ten-thousand yuan" in answer.detail[0]
    declared = _dataset(ScoreRequest.model_validate({**body, "money_unit": "wan"}))
    assert declared.financials["revenue"].tolist() == [8.0e7] * 14
