"""`giantwatch whatif` and `POST /whatif`: a what-if plan for one firm and tier with the
production models and the rulebook in force (models.whatif does the work)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.domain import TIER_NAMES
from features.rules import resolve_rulebooks
from models.reason_text import criterion_names
from models.whatif import LEVERS, WhatIfPlan, quota_probability, whatif_plan


class WhatIfProblem(Exception):
    """A request that cannot be planned (unknown firm, not a candidate, no financials)."""


@dataclass
class WhatIfResult:
    plan: WhatIfPlan
    name: str
    quota_line: float  # the probability of the last firm inside the expected quota
    candidates: int


def plan_firm(dataset, year: int, firm_id: str, tier: str, models: dict,
              target: float | None = None, rulebook: str | None = None,
              files: bool = True) -> WhatIfResult:
    """The plan for `firm_id` (models: tier -> RegisteredModel). target: probability to
    reach (None: the quota line of the year's candidates, from the same batch scoring);
    rulebook: a year or id (None: the one in force); files=False never reads a rulebook
    from a path (the API)."""
    from serving.partitions import scored_firm_ids
    from serving.score import score_firms

    year = int(year)
    firms = dataset.firms
    if not (firms["firm_id"] == firm_id).any():
        raise WhatIfProblem(f"firm {firm_id!r} is not in the firms table")
    if firm_id not in set(scored_firm_ids(dataset, year)):
        raise WhatIfProblem(f"firm {firm_id!r} has no financials for fiscal year {year - 1}")
    if tier not in models:
        raise WhatIfProblem(f"no model for tier {tier!r}; tiers: {', '.join(models)}")
    try:
        book = resolve_rulebooks(rulebook, year, (tier,), files=files)[tier]
    except KeyError as e:
        raise WhatIfProblem(str(e).strip("'\"")) from None
    everyone, _ = score_firms(dataset, year, models=models, reasons=0)
    p = everyone[f"p_{tier}"].to_numpy(dtype=float)
    line = quota_probability(p)
    try:
        plan = whatif_plan(dataset, firm_id, year, tier, models[tier].model, book,
                           line if target is None else float(target))
    except ValueError as e:
        raise WhatIfProblem(str(e)) from None
    name = firms.loc[firms["firm_id"] == firm_id, "name"].iloc[0]
    return WhatIfResult(plan, "" if not isinstance(name, str) else name, line,
                        int(np.isfinite(p).sum()))


def describe(result: WhatIfResult) -> list[str]:
    """The plan in plain lines, as the CLI prints it."""
    plan, names = result.plan, criterion_names(result.plan.rulebook)
    who = f"{result.name} ({plan.firm_id})" if result.name else plan.firm_id
    lines = [f"{who}: {TIER_NAMES[plan.tier][0]} as of {plan.year}, rulebook {plan.rulebook}",
             f"  now: {plan.p_before:.1%} chance, eligible {plan.eligible_before}"
             + (f" (fails: {'; '.join(names.get(c, c) for c in plan.failed_before)})"
                if plan.failed_before else ""),
             (f"  target: {plan.target:.1%} (the quota line of {result.candidates:,} candidates "
             f"is {result.quota_line:.1%})")]
    for i, step in enumerate(plan.steps, 1):
        fixes = f"; clears {'; '.join(names.get(c, c) for c in step.fixes)}" if step.fixes \
            else ""
        lines.append(f"  {i}. {step.text}{fixes} -> {step.p_after:.1%}, eligible "
                     f"{step.eligible_after}")
    for c in plan.unfixable:
        lines.append(f"  cannot be cleared by changing fiscal {plan.year - 1} inputs: "
                     f"{names.get(c, c)}")
    verdict = "reached" if plan.reached else "not reached"
    lines.append(f"  {verdict}: {plan.p_after:.1%} chance, eligible {plan.eligible_after}")
    return lines


def plan_table(plan: WhatIfPlan) -> pd.DataFrame:
    """The plan's steps as a reader's table: step, change, clears (criterion names),
    probability after (a percentage) and eligibility after."""
    names = criterion_names(plan.rulebook)
    return pd.DataFrame([{"step": i, "change": s.text,
                          "clears": "; ".join(names.get(c, c) for c in s.fixes),
                          "probability after": f"{s.p_after:.1%}",
                          "eligible after": s.eligible_after}
                         for i, s in enumerate(plan.steps, 1)],
                        columns=["step", "change", "clears", "probability after",
                                 "eligible after"])


def plan_summary(plan: WhatIfPlan) -> str:
    """One sentence: where the plan ends against its target, and what no change clears."""
    names = criterion_names(plan.rulebook)
    text = (f"Target {plan.target:.1%}: {'reached' if plan.reached else 'not reached'} "
            f"({plan.p_after:.1%}, eligible {plan.eligible_after}).")
    if plan.unfixable:
        text += (f" No change to fiscal {plan.year - 1} inputs clears: "
                 + "; ".join(names.get(c, c) for c in plan.unfixable) + ".")
    return text


def as_json(result: WhatIfResult) -> dict:
    """The plan as a JSON object (the API's answer)."""
    plan, names = result.plan, criterion_names(result.plan.rulebook)
    return {
        "firm_id": plan.firm_id, "name": result.name, "tier": plan.tier, "year": plan.year,
        "rulebook": plan.rulebook, "target": plan.target, "quota_line": result.quota_line,
        "before": {"probability": plan.p_before, "eligible": plan.eligible_before,
                   "failed": plan.failed_before},
        "steps": [{"lever": s.lever, "amount": s.amount, "unit": LEVERS[s.lever].unit,
                   "text": s.text, "clears": s.fixes, "probability": s.p_after,
                   "eligible": s.eligible_after} for s in plan.steps],
        "unfixable": [{"criterion": c, "name": names.get(c, c)} for c in plan.unfixable],
        "after": {"probability": plan.p_after, "eligible": plan.eligible_after},
        "reached": plan.reached,
    }
