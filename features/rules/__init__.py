"""Check firms against the official certification criteria held as TOML rulebooks.

    rb = load_rulebook("2022", tier="little_giant")   # or a rulebook id, code or .toml path
    res = evaluate(features, rb)                       # features: one row per firm (pipeline frame)
    res.criteria          # firms x criteria, categorical fail / unknown / pass
    res.eligible          # fail if a required criterion fails, pass if all pass, else unknown
    res.as_features("rule_")                            # 1.0 / 0.0 / NaN for the model
    explain_failures(features, rb, res)                 # failed ids + gap texts per firm

Missing data and criteria on data outside the contract are ``unknown``, never ``fail``; see
features/rules/engine.py for the strict vs on-data readings and features/rules/book.py for the
TOML layout. A new rulebook year is a new TOML file in features/rules/rulebooks/.
"""

from __future__ import annotations

from features.rules.book import RulebookError
from features.rules.evaluation import (
    Assessment,
    RuleResult,
    assess,
    criteria_table,
    evaluate,
    explain_failures,
)
from features.rules.registry import (
    LIST_DAY,
    available_rulebooks,
    in_force_note,
    list_date,
    load_rulebook,
    resolve_rulebooks,
    rulebook_in_force,
)
from features.rules.types import Criterion, Rulebook, feature_directions

__all__ = [
    "LIST_DAY",
    "Assessment",
    "Criterion",
    "RuleResult",
    "Rulebook",
    "RulebookError",
    "assess",
    "available_rulebooks",
    "criteria_table",
    "evaluate",
    "explain_failures",
    "feature_directions",
    "in_force_note",
    "list_date",
    "load_rulebook",
    "resolve_rulebooks",
    "rulebook_in_force",
]
