"""The HTTP API's request and answer bodies, as the OpenAPI schema documents them.

Records are contract rows whose values are JSON scalars; ids are strings; counts are strict
integers (not booleans, not text); `rulebook` names only shipped rulebooks. Every refusal
is a 422 in one shape, `Problems`, whether pydantic or the data contract refuses.
"""

from __future__ import annotations

import functools
from typing import Annotated, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

from features.contract import TABLES
from features.domain import TIERS

Tier = Literal[TIERS]
# A cell of a record: a JSON scalar (a list or object is no cell of a table).
Scalar = StrictStr | StrictInt | StrictFloat | StrictBool | None
Id = Annotated[StrictStr, Field(min_length=1, max_length=200)]


class _Record(BaseModel):
    """One row of a contract table: the columns of DATA_CONTRACT.md, each a JSON scalar."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Scalar]


class FirmRecord(_Record):
    firm_id: Id


class FinancialsRecord(_Record):
    firm_id: Id


class PatentRecord(_Record):
    patent_id: Id
    firm_id: Id


class CertificationRecord(_Record):
    firm_id: Id


class ScoreRequest(BaseModel):
    """Data-contract tables as JSON records (column name -> value), one list per table."""

    year: StrictInt = Field(..., ge=1901, le=2100, description="as-of year t; features use "
                            "data known by the end of t-1 (financials of t-1 are required)")
    firms: list[FirmRecord] = Field(..., description="rows of the firms table")
    financials: list[FinancialsRecord] = Field(default_factory=list)
    patents: list[PatentRecord] = Field(default_factory=list)
    certifications: list[CertificationRecord] = Field(default_factory=list)
    reasons: StrictInt = Field(3, ge=0, le=10, description=(
        "reasons per direction and tier; they quote values, bars and outcomes but do not "
        "place a firm among candidates (the posted firms need not be a year's candidates)"))
    money_unit: Literal["yuan", "thousand", "wan"] = Field(
        "yuan", description="unit of the money columns as posted: yuan, thousand (千元) or "
                            "wan (万元); converted to yuan")
    rulebook: str | None = Field(None, max_length=200, description=(
        "shipped rulebooks for eligibility, gaps and reasons, comma-separated: years "
        "(2022), ids (little_giant_2022) or codes (default: the one in force for the year)"))

    @field_validator("rulebook")
    @classmethod
    def _shipped_rulebooks_only(cls, value: str | None) -> str | None:
        if value is not None:
            unknown = [p for p in value.split(",") if p.strip() not in shipped_rulebook_names()]
            if unknown:
                raise ValueError(f"{unknown[0].strip()!r} is not a shipped rulebook; "
                                 f"available: {', '.join(sorted(shipped_rulebook_names()))}")
        return value

    model_config = {"json_schema_extra": {"examples": [{
        "year": 2025,
        "firms": [{"firm_id": "F1", "province": "33", "industry_code": "C3491",
                   "founded_year": 2010}],
        "financials": [{"firm_id": "F1", "year": 2024, "revenue": 120e6,
                        "net_profit": 9e6, "total_assets": 150e6,
                        "total_liabilities": 60e6, "rd_expense": 7e6, "employees": 210}],
        "patents": [], "certifications": []}]}}


class ExplainRequest(ScoreRequest):
    """The data of `POST /score` plus the firm and tier to explain; nothing is kept."""

    firm_id: Id = Field(..., description="the firm to explain (a firms row)")
    tier: Tier = Field("little_giant", description="which tier's model")
    top: StrictInt = Field(12, ge=1, le=60, description="contributions listed, strongest first")
    format: Literal["json", "png"] = Field("json", description="json, or a PNG waterfall")


class WhatIfRequest(ScoreRequest):
    """The data of `POST /score` plus the firm, tier and target of a what-if plan."""

    firm_id: Id = Field(..., description="the firm to plan for (a firms row)")
    tier: Tier = Field("little_giant", description="which tier")
    target_probability: float | None = Field(
        None, ge=0.0, le=1.0, description="probability to reach (default: that of the last "
        "posted candidate inside the expected quota, the sum of the probabilities)")


class Problem(BaseModel):
    """One failing cell or field: where it is and the rule it breaks."""

    table: str | None = Field(None, description="contract table, or None for a request field")
    column: str | None = Field(None, description="column (or request field) concerned")
    record: int | None = Field(None, description="0-based record of the table")
    rule: str = Field(..., description="the rule broken")
    value: str | None = Field(None, description="the value given, as text")


class Problems(BaseModel):
    """The body of every 422 answer."""

    detail: list[str] = Field(..., description="one sentence per problem")
    errors: list[Problem] = Field(default_factory=list, description="the failing cells")


class Message(BaseModel):
    """The body of 401, 404 and 413 answers."""

    detail: str


ANSWERS = {
    400: {"model": Message, "description": "the body cannot be parsed (not JSON text)"},
    401: {"model": Message, "description": "missing or wrong X-API-Key (when a key is set)"},
    413: {"model": Message, "description": "request body over the server's limit"},
    422: {"model": Problems, "description": "malformed request, or data that breaks the "
                                            "data contract"},
}


@functools.lru_cache(maxsize=1)
def shipped_rulebook_names() -> frozenset[str]:
    """Ids, codes and years of the rulebooks shipped with the package."""
    from features.rules import available_rulebooks

    table = available_rulebooks()
    return frozenset(map(str, [*table["id"], *table["code"], *table["year"]]))


def request_problems(exc: RequestValidationError) -> Problems:
    """Pydantic's validation errors in the shape of the contract's 422 answers."""
    detail, errors = [], []
    for error in exc.errors():
        loc = [p for p in error.get("loc", ()) if p != "body"]
        table = loc[0] if len(loc) >= 3 and loc[0] in TABLES and isinstance(loc[1], int) \
            else None
        record = loc[1] if table else None
        column = str(loc[2]) if table else (str(loc[0]) if loc else None)
        where = (f"{table}, column {column}, record {record}" if table
                 else f"field {column}" if column else "request body")
        value = error.get("input")
        shown = None if value is None or isinstance(value, (dict, list)) else str(value)[:200]
        detail.append(f"{where}: {error.get('msg', 'invalid')}")
        errors.append(Problem(table=table, column=column, record=record,
                              rule=str(error.get("msg", "invalid")), value=shown))
    return Problems(detail=detail, errors=errors)
