"""What-if plans on a generated universe with the registered models: a firm one criterion
short gets a plan that fixes exactly that criterion, and its data changed by the plan,
rescored by batch scoring, is eligible with at least the target probability."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from features.contract import load_dataset
from features.rules import resolve_rulebooks
from models.whatif import apply_change, apply_plan, quota_probability, whatif_plan
from serving.score import load_models, score_firms
from tests.conftest import tracking_env
from tests.serving.test_score import trained_store

YEAR, TIER = 2026, "little_giant"
FIXABLE = ("lg26_main_share", "lg26_debt_ratio", "lg26_class1_ip", "lg26_rd_expense_2y")


@pytest.fixture(scope="module")
def setting(small_universe, tmp_path_factory):
    with tracking_env(trained_store(small_universe, tmp_path_factory)):
        models = load_models()
        dataset = load_dataset(small_universe)
        scores, _ = score_firms(dataset, YEAR, models=models, reasons=0)
        yield dataset, models, scores


def test_one_criterion_short_gets_exactly_that_fixed_and_rescoring_agrees(setting):
    dataset, models, scores = setting
    rulebook = resolve_rulebooks(None, YEAR)[TIER]
    short = scores[scores[f"failed_{TIER}"].isin(FIXABLE)].sort_values(f"p_{TIER}")
    assert len(short), "the universe has no firm one fixable criterion short"
    firm = short.iloc[-1]
    # The year's quota line, or a little under the firm's own probability where it is above.
    target = 0.9 * min(quota_probability(scores[f"p_{TIER}"].to_numpy()), firm[f"p_{TIER}"])
    plan = whatif_plan(dataset, firm.firm_id, YEAR, TIER, models[TIER].model, rulebook,
                       target=float(target))
    assert plan.failed_before == [firm[f"failed_{TIER}"]]
    first = plan.steps[0]
    assert first.fixes == [firm[f"failed_{TIER}"]] and first.amount > 0
    assert not plan.unfixable and plan.reached
    # Rescored by the batch path on the changed data: no failed criterion, the plan's
    # probability, at least the target.
    again, _ = score_firms(apply_plan(dataset, plan), YEAR, models=models, reasons=0)
    row = again.set_index("firm_id").loc[firm.firm_id]
    assert row[f"eligible_{TIER}"] in ("pass", "unknown")
    assert not isinstance(row[f"failed_{TIER}"], str) or row[f"failed_{TIER}"] == ""
    np.testing.assert_allclose(row[f"p_{TIER}"], plan.p_after, rtol=1e-9)
    assert row[f"p_{TIER}"] >= plan.target
    # The amount is the smallest that clears the bar (to three significant digits).
    smaller = apply_change(dataset, firm.firm_id, YEAR, first.lever, first.amount * 0.99)
    less, _ = score_firms(smaller, YEAR, models=models, reasons=0)
    assert firm[f"failed_{TIER}"] in str(less.set_index("firm_id").loc[firm.firm_id,
                                                                          f"failed_{TIER}"])


def test_a_higher_target_is_pursued_until_no_lever_helps(setting):
    """Each step raises the probability and keeps the firm off "fail"; the plan stops at
    the target or where no lever's step (at any scale) raises the probability further."""
    from models.whatif import LEVERS, STEP_SCALES, _fiscal_row, evaluate, firm_rows

    dataset, models, scores = setting
    rulebook = resolve_rulebooks(None, YEAR)[TIER]
    model = models[TIER].model
    eligible = scores[(scores[f"eligible_{TIER}"] != "fail") & scores[f"p_{TIER}"].notna()]
    firm = eligible.sort_values(f"p_{TIER}").iloc[len(eligible) // 3]
    plan = whatif_plan(dataset, firm.firm_id, YEAR, TIER, model, rulebook,
                       target=min(1.0, 3 * float(firm[f"p_{TIER}"])))
    probabilities = [plan.p_before] + [s.p_after for s in plan.steps]
    assert all(b > a for a, b in itertools.pairwise(probabilities))
    assert all(s.eligible_after != "fail" for s in plan.steps)
    if not plan.reached:
        final = apply_plan(firm_rows(dataset, firm.firm_id), plan)
        row = _fiscal_row(final, firm.firm_id, YEAR)
        for lever in LEVERS.values():
            for scale in STEP_SCALES:
                amount = min(scale * lever.increment(row), lever.limit(row))
                amount = float(np.floor(amount)) if lever.whole else amount
                after = evaluate(apply_change(final, firm.firm_id, YEAR, lever.name, amount),
                                 firm.firm_id, YEAR, TIER, model, rulebook)
                assert after.probability <= plan.p_after + 1e-9 or after.eligible == "fail"
    holder = scores[scores[f"p_{TIER}"].isna()].iloc[0]
    with pytest.raises(ValueError, match="not a little_giant candidate"):
        whatif_plan(dataset, holder.firm_id, YEAR, TIER, model, rulebook, 0.5)
