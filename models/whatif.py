"""What it would take: the cheapest changes to a firm's actionable inputs that make it
eligible under the rulebook in force and raise its probability of selection to a target.

    plan = whatif_plan(dataset, "9132...", 2026, "little_giant", model, rulebook, target=0.31)
    plan.steps[0].text     # "raise R&D expense by 2.4M CNY (fiscal 2025)"
    plan.steps[0].p_after  # the probability the real scoring path gives after the step

Every change is made to the firm's own rows of the contract tables (financials of fiscal
year t-1, its patents) and every figure after a step comes from the production path:
`features.pipeline.build_features` on the changed data, then `models.scoring.score_tier`.
So derived quantities move together (more R&D expense raises R&D intensity, the 2-year R&D
sum and the points score, and lowers net profit by the same amount), and nothing here
re-implements a feature or a rule.

The search has two stages. (a) Eligibility: criterion by criterion (rulebook order), each
lever that can clear a failed criterion is bisected to its smallest sufficient amount and
the lever with the smallest relative change is taken. (b) Probability: greedy steps, each
the lever whose standard increment raises the probability most, until the target is
reached or no lever helps. Levers only move in the direction the criteria reward, within
the data contract's bounds (R&D staff <= employees, main revenue <= revenue, liabilities
>= 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from features.rules import Rulebook, assess
from features.rules.engine import PASS
from features.rules.gaps import money
from models.scoring import score_tier

MAX_GREEDY_STEPS = 12
# Each greedy step tries every lever at 1, 3 and 10 standard increments: the models are not
# monotone, so a small step may not help where a larger one does.
STEP_SCALES = (1.0, 3.0, 10.0)
BISECTION_ROUNDS = 16  # CNY amounts to 1/65,536 of the lever's range, then rounded up


@dataclass(frozen=True)
class Lever:
    """One actionable input of a firm, changed in its own units.

    name: id; unit: "CNY", "persons", "patents" or "flag"; limit(row): the largest change
    the data contract allows given the fiscal-year financials row; increment(row): the
    standard step of the probability stage; words(amount, fiscal_year): what the step asks.
    """

    name: str
    unit: str
    limit: Callable[[pd.Series], float]
    increment: Callable[[pd.Series], float]
    words: Callable[[float, int], str]

    @property
    def whole(self) -> bool:
        return self.unit in ("persons", "patents", "flag")


def _value(row: pd.Series, column: str) -> float:
    v = row.get(column, np.nan)
    return 0.0 if pd.isna(v) else float(v)


def _holds(row: pd.Series, column: str) -> bool:
    """A boolean cell that is known and true (unknown is not held)."""
    v = row.get(column)
    return v is not None and not pd.isna(v) and bool(v)


LEVERS: dict[str, Lever] = {lever.name: lever for lever in (
    Lever("rd_expense", "CNY",
          limit=lambda r: max(_value(r, "revenue") - _value(r, "rd_expense"), 0.0),
          increment=lambda r: max(0.25 * _value(r, "rd_expense"), 0.005 * _value(r, "revenue")),
          words=lambda a, y: f"raise R&D expense by {money(a)} CNY (fiscal {y})"),
    Lever("rd_staff", "persons",
          limit=lambda r: max(_value(r, "employees") - _value(r, "rd_staff"), 0.0),
          increment=lambda r: max(1.0, round(0.2 * _value(r, "rd_staff"))),
          words=lambda a, y: f"add {a:,.0f} R&D staff (fiscal {y})"),
    Lever("invention_patents", "patents", limit=lambda r: 50.0, increment=lambda r: 1.0,
          words=lambda a, y: f"obtain {a:,.0f} more invention patent{'s' if a != 1 else ''} "
                             f"granted (in fiscal {y})"),
    Lever("main_revenue", "CNY",
          limit=lambda r: max(_value(r, "revenue") - _value(r, "main_revenue"), 0.0),
          increment=lambda r: 0.05 * _value(r, "revenue"),
          words=lambda a, y: f"move {money(a)} CNY of revenue into the main business "
                             f"(fiscal {y})"),
    Lever("total_liabilities", "CNY", limit=lambda r: _value(r, "total_liabilities"),
          increment=lambda r: 0.1 * _value(r, "total_liabilities"),
          words=lambda a, y: f"repay {money(a)} CNY of liabilities from cash (fiscal {y})"),
    Lever("quality_cert", "flag",
          limit=lambda r: 0.0 if _holds(r, "quality_cert") else 1.0,
          increment=lambda r: 1.0,
          words=lambda a, y: "obtain a management-system or export-market product "
                             f"certification (fiscal {y})"),
)}


def firm_rows(dataset, firm_id: str):
    """The dataset restricted to one firm's rows (features are per firm)."""
    from features.contract import Dataset

    tables = {t: getattr(dataset, t) for t in ("firms", "financials", "patents",
                                               "certifications")}
    return Dataset(**{t: f[f["firm_id"] == firm_id].reset_index(drop=True)
                      for t, f in tables.items()})


def apply_change(data, firm_id: str, year: int, lever: str, amount: float):
    """A copy of the one-firm `data` with `lever` moved by `amount` in fiscal year year-1.

    R&D expense is an expense: net profit falls by the same amount. Repaid liabilities
    leave with the cash that repays them: total assets fall by the same amount. Patents are
    invention rows filed two years before and granted mid fiscal year.
    """
    fiscal = int(year) - 1
    if amount <= 0:
        return data
    if lever == "invention_patents":
        n = round(amount)
        start = len(data.patents)
        new = pd.DataFrame({
            "patent_id": [f"whatif-{firm_id}-{start + i}" for i in range(n)],
            "firm_id": firm_id, "kind": "invention",
            "filed": pd.Timestamp(f"{fiscal - 2}-06-30"),
            "granted": pd.Timestamp(f"{fiscal}-06-30"), "lapsed": pd.NaT, "ipc": pd.NA})
        patents = pd.concat([data.patents, new.astype(data.patents.dtypes.to_dict())],
                            ignore_index=True)
        return replace(data, patents=patents)
    fin = data.financials.copy()
    at = fin.index[(fin["firm_id"] == firm_id) & (fin["year"] == fiscal)]
    if lever == "quality_cert":
        fin.loc[at, "quality_cert"] = True
    elif lever == "rd_staff":
        fin.loc[at, "rd_staff"] = fin.loc[at, "rd_staff"].fillna(0) + round(amount)
    else:
        sign = -1.0 if lever == "total_liabilities" else 1.0
        fin.loc[at, lever] = fin.loc[at, lever].fillna(0) + sign * amount
        if lever == "rd_expense":
            fin.loc[at, "net_profit"] = fin.loc[at, "net_profit"] - amount
        if lever == "total_liabilities":
            fin.loc[at, "total_assets"] = fin.loc[at, "total_assets"] - amount
    return replace(data, financials=fin)


@dataclass
class Outcome:
    """The scoring path's verdict on one state of the firm: probability (NaN: not a
    candidate), on-data eligibility, the failed criteria and each criterion's status."""

    probability: float
    eligible: str
    failed: list[str]
    statuses: dict[str, int]


def evaluate(data, firm_id: str, year: int, tier: str, model, rulebook: Rulebook) -> Outcome:
    """Features, probability and assessment of the firm from `data`, as `score` computes
    them (model: a fitted TierModel)."""
    from features.pipeline import build_features

    X = build_features(data, year, firm_ids=[firm_id])
    scored = score_tier(X, year, tier, model, rulebook, reasons=0)
    verdict = scored.assessment if scored.assessment is not None else assess(X, rulebook)
    statuses = {c.id: int(verdict.result.criteria_on_data[c.id].cat.codes.iloc[0])
                for c in rulebook.criteria}
    return Outcome(float(scored.probability[0]), str(verdict.eligible.iloc[0]),
                   list(verdict.failed[0]), statuses)


@dataclass
class Step:
    """One change of a plan: its lever, amount (in the lever's unit), words, and the
    probability and eligibility the scoring path gives after it."""

    lever: str
    amount: float
    text: str
    p_after: float
    eligible_after: str
    fixes: list[str] = field(default_factory=list)


@dataclass
class WhatIfPlan:
    """The plan for one firm, tier and as-of year (see the module docstring)."""

    firm_id: str
    tier: str
    year: int
    rulebook: str
    target: float
    p_before: float
    eligible_before: str
    failed_before: list[str]
    steps: list[Step] = field(default_factory=list)
    unfixable: list[str] = field(default_factory=list)

    @property
    def p_after(self) -> float:
        return self.steps[-1].p_after if self.steps else self.p_before

    @property
    def eligible_after(self) -> str:
        return self.steps[-1].eligible_after if self.steps else self.eligible_before

    @property
    def reached(self) -> bool:
        """No criterion failed on the data (criteria the data cannot decide stay
        undecided: no change of inputs decides them) and the target probability reached."""
        return self.eligible_after != "fail" and self.p_after >= self.target

    def table(self) -> pd.DataFrame:
        """One row per step: step, change, amount, unit, fixes, probability, eligible."""
        return pd.DataFrame([{"step": i + 1, "change": s.text, "amount": s.amount,
                              "unit": LEVERS[s.lever].unit, "fixes": "; ".join(s.fixes),
                              "probability": s.p_after, "eligible": s.eligible_after}
                             for i, s in enumerate(self.steps)])


def apply_plan(dataset, plan: WhatIfPlan):
    """`dataset` with every step of `plan` made to the firm's rows (to rescore it)."""
    for step in plan.steps:
        dataset = apply_change(dataset, plan.firm_id, plan.year, step.lever, step.amount)
    return dataset


def quota_probability(probabilities) -> float:
    """The probability of the last firm inside the year's expected quota: the candidates
    sorted by probability, the k-th where k = round(sum of probabilities) (at least 1)."""
    p = np.sort(np.asarray(probabilities, dtype=float)[~np.isnan(probabilities)])[::-1]
    if not len(p):
        return float("nan")
    k = max(round(p.sum()), 1)
    return float(p[min(k, len(p)) - 1])


def _fiscal_row(data, firm_id: str, year: int) -> pd.Series:
    fin = data.financials
    rows = fin[(fin["firm_id"] == firm_id) & (fin["year"] == int(year) - 1)]
    return rows.iloc[0] if len(rows) else pd.Series(dtype=object)


def _smallest(passes: Callable[[float], bool], limit: float, whole: bool) -> float | None:
    """The smallest amount in (0, limit] for which `passes` holds (monotone), or None."""
    if limit <= 0 or not passes(limit):
        return None
    lo, hi = 0.0, float(limit)
    for _ in range(BISECTION_ROUNDS):
        if whole and hi - lo <= 1:
            break
        mid = (lo + hi) / 2
        mid = float(np.ceil(mid)) if whole else mid
        if passes(mid):
            hi = mid
        else:
            lo = mid
    if whole:
        return float(np.ceil(hi))
    # Round up to three significant digits: an amount people can act on, still sufficient.
    magnitude = 10 ** (np.floor(np.log10(hi)) - 2)
    rounded = float(np.ceil(hi / magnitude) * magnitude)
    return rounded if passes(rounded) else hi


def whatif_plan(dataset, firm_id: str, year: int, tier: str, model, rulebook: Rulebook,
                target: float) -> WhatIfPlan:
    """The plan (see the module docstring) for `firm_id` to be eligible under `rulebook`
    and reach probability `target` (0..1) of selection to `tier` as of `year`.

    model: the tier's fitted TierModel. Raises ValueError when the firm is not a candidate.
    """
    year = int(year)
    data = firm_rows(dataset, firm_id)

    def outcome(d) -> Outcome:
        return evaluate(d, firm_id, year, tier, model, rulebook)

    start = outcome(data)
    if np.isnan(start.probability):
        raise ValueError(f"firm {firm_id!r} is not a {tier} candidate as of {year}")
    plan = WhatIfPlan(firm_id, tier, year, rulebook.id, float(target), start.probability,
                      start.eligible, start.failed)
    current = start
    fiscal = year - 1
    # (a) eligibility, criterion by criterion
    for criterion in [c for c in rulebook.criteria if c.id in start.failed]:
        if current.statuses.get(criterion.id) == PASS:
            continue  # cleared by an earlier step
        row = _fiscal_row(data, firm_id, year)
        best = None
        for lever in LEVERS.values():
            def clears(amount, lever=lever, data=data, criterion=criterion):
                after = outcome(apply_change(data, firm_id, year, lever.name, amount))
                return after.statuses.get(criterion.id) == PASS
            amount = _smallest(clears, lever.limit(row), lever.whole)
            if amount is None:
                continue
            base = abs(_value(row, lever.name)) if lever.unit == "CNY" else 1.0
            relative = amount / base if base > 0 else amount
            if best is None or relative < best[0]:
                best = (relative, lever, amount)
        if best is None:
            plan.unfixable.append(criterion.id)
            continue
        _, lever, amount = best
        data = apply_change(data, firm_id, year, lever.name, amount)
        current = outcome(data)
        fixed = [c for c in start.failed if current.statuses.get(c) == PASS
                 and c not in {f for s in plan.steps for f in s.fixes}]
        plan.steps.append(Step(lever.name, amount, lever.words(amount, fiscal),
                               current.probability, current.eligible, fixed))
    # (b) probability, greedy steps that keep eligibility
    for _ in range(MAX_GREEDY_STEPS):
        if current.probability >= plan.target:
            break
        row = _fiscal_row(data, firm_id, year)
        best = None
        tries = [(lever, min(scale * lever.increment(row), lever.limit(row)))
                 for lever in LEVERS.values() for scale in STEP_SCALES]
        for lever, amount in tries:
            if lever.whole:
                amount = float(np.floor(amount))
            if amount <= 0:
                continue
            changed = apply_change(data, firm_id, year, lever.name, amount)
            after = outcome(changed)
            lost = current.eligible != "fail" and after.eligible == "fail"
            if not lost and after.probability > current.probability + 1e-9 and (
                    best is None or after.probability > best[2].probability):
                best = (lever, amount, after, changed)
        if best is None:
            break
        lever, amount, after, data = best
        last = plan.steps[-1] if plan.steps else None
        if last is not None and last.lever == lever.name and not last.fixes:
            amount += last.amount  # consecutive steps of one lever read as one change
            plan.steps.pop()
        plan.steps.append(Step(lever.name, amount, lever.words(amount, fiscal),
                               after.probability, after.eligible))
        current = after
    return plan
