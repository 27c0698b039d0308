"""Province and ownership effects of the channel audit (models/audit_channels.py), on lists
simulated with a known provincial push (invisible) and known ownership favours."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from scipy.stats import spearmanr

from models.audit_channels import (
    DISQUALIFIED,
    as_independent,
    channel_design,
    merit_design,
    merit_knots,
    merit_signs,
    province_effects,
    province_unexplained,
)
from models.audit_flags import ownership_class
from models.selection_channels import TwoChannelSelection, bootstrap_excess

INTERFERENCE = {"A": 0.0, "B": 0.3, "C": 0.6, "D": 0.9, "E": 1.2, "F": 1.5}


def quota_lists(seed: int, per_province: int = 1500, years: int = 3):
    """Each province fills a tenth of its candidates a year, the top of merit + noise + a
    push (size 2 x interference) given to a random fifth of its candidates; the push is in
    no column. Returns X (merit), Z (province, state), y, offset (log-odds of the
    province-year's share), province."""
    rng = np.random.default_rng(seed)
    frames = []
    for year in range(years):
        for province, strength in INTERFERENCE.items():
            x = rng.normal(size=per_province)
            pushed = rng.random(per_province) < 0.2
            total = 2.0 * x + rng.normal(size=per_province) + 2.0 * strength * pushed
            chosen = np.zeros(per_province, int)
            chosen[np.argsort(-total)[:per_province // 10]] = 1
            frames.append(pd.DataFrame({"x": x, "y": chosen, "province": province,
                                        "state": (rng.random(per_province) < 0.1) * 1.0,
                                        "key": f"{province}-{year}"}))
    data = pd.concat(frames, ignore_index=True)
    share = data.groupby("key")["y"].transform("mean").to_numpy()
    return (data[["x"]], data[["province", "state"]], data["y"].to_numpy(),
            logit(share), data["province"].to_numpy())


def test_province_unexplained_recovers_each_groups_share_and_shrinks_small_groups():
    rng = np.random.default_rng(3)
    n = 40_000
    group = rng.choice(["big_low", "big_high"], size=n)
    q = rng.uniform(0, 0.2, n)
    u_true = np.where(group == "big_high", 0.15, 0.02)
    y = (rng.random(n) < 1 - (1 - q) * (1 - u_true)).astype(int)
    u = province_unexplained(q, y, group, u0=0.05)
    assert abs(u["big_high"] - 0.15) < 0.02 and abs(u["big_low"] - 0.02) < 0.01
    # Few candidates: the pseudo-candidates pull the share towards the list's.
    small = province_unexplained(q[:40], y[:40], group[:40], u0=0.05, prior=1_000)
    assert (small - 0.05).abs().max() < 0.02


def test_quota_list_province_effects_rank_the_invisible_push():
    X, Z, y, offset, province = quota_lists(seed=5)
    model = TwoChannelSelection("additive", merit_signs={"x": 1},
                                channel_signs={"province": 1, "state": 1},
                                unexplained_share=0.1).fit(X, Z, y, offset)
    table = province_effects(model, X, Z, y, offset, province, n_boot=10, seed=0)
    table = table.set_index("group")
    # A province cannot raise its count; its push shows as places filled below merit.
    assert spearmanr(table["excess"], pd.Series(INTERFERENCE)[table.index])[0] >= 0.8
    assert table.loc["A", "excess"] < 0 < table.loc["F", "excess"]  # against the average
    assert (table["low"] <= table["excess"] + 1e-12).all()
    assert (table["excess"] <= table["high"] + 1e-12).all()
    assert table.loc["F", "low"] > table.loc["A", "high"]
    assert table["candidates"].sum() == len(y)


def ownership_lists(seed: int, large_parent_bonus: float, n: int = 12_000):
    """Candidates with a merit score x; a fifth are subsidiaries whose parent group sizes are
    log-uniform (missing for independent firms, as in the panel, and for a twentieth of the
    subsidiaries), a tenth state-controlled. One committee: logit = offset - 3 + 1.5 x
    + large_parent_bonus * (parent of 1,000+ employees) + 0.8 * state-controlled. Returns X
    (the panel's raw columns), XM (merit), y, offset, and per row the true chance with and
    without the large-parent bonus."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    subsidiary = rng.random(n) < 0.2
    employees = np.where(subsidiary, np.exp(rng.uniform(np.log(50), np.log(20_000), n)), np.nan)
    revenue = employees * 1e6
    unknown = subsidiary & (rng.random(n) < 0.05)
    employees[unknown] = revenue[unknown] = np.nan
    large = np.where(subsidiary, (employees >= 1000) * 1.0, 0.0)
    large[unknown] = np.nan
    state = rng.random(n) < 0.1
    X = pd.DataFrame({"province": rng.choice(["A", "B", "C"], size=n),
                      "is_subsidiary": subsidiary * 1.0, "parent_employees": employees,
                      "parent_revenue": revenue, "parent_large_group": large,
                      "state_share": np.where(state, 1.0, 0.0), "state_controlled": state * 1.0,
                      "listed": (rng.random(n) < 0.05) * 1.0})
    offset = np.array([-0.3, 0.0, 0.3])[rng.integers(0, 3, n)]
    truly_large = subsidiary & (np.nan_to_num(employees, nan=2000.0) >= 1000)
    merit = offset - 3 + 1.5 * x + 0.8 * state
    with_bonus = expit(merit + large_parent_bonus * truly_large)
    y = (rng.random(n) < with_bonus).astype(int)
    return X, pd.DataFrame({"merit_log_odds": x}), y, offset, with_bonus, expit(merit)


def _ownership_effects(structure: str, X, XM, y, offset, n_boot: int = 20):
    Z = channel_design(X)
    model = TwoChannelSelection(structure, merit_signs={"merit_log_odds": 1},
                                channel_signs={c: 1 for c in Z.columns}).fit(XM, Z, y, offset)
    table = bootstrap_excess(model, XM, Z, y, {"ownership": (as_independent(Z),
                                                             ownership_class(X))},
                             offset, n_boot=n_boot, seed=0)["ownership"]
    return model, Z, table.set_index("group")


def test_a_favoured_large_parent_is_recovered_as_a_positive_subsidiary_effect():
    X, XM, y, offset, with_bonus, without = ownership_lists(seed=2, large_parent_bonus=1.5)
    _, _, table = _ownership_effects("additive", X, XM, y, offset)
    sub = (X["is_subsidiary"] == 1) & (X["state_controlled"] == 0)
    truth = with_bonus[sub].sum() / without[sub].sum() - 1
    assert table.loc["subsidiary", "low"] > 0
    assert table.loc["subsidiary", "excess"] == pytest.approx(truth, rel=0.3)
    # Independent firms have no parent to take away.
    assert table.loc["independent", "excess"] == pytest.approx(0.0, abs=0.02)


@pytest.mark.parametrize("structure", ["additive", "separate"])
def test_no_ownership_effect_can_come_out_negative(structure):
    """Subsidiaries of large groups truly disfavoured, and parent sizes missing for every
    independent firm and some subsidiaries: being taken as independent never raises a
    firm's chance, so every effect and interval bound is at least 0."""
    X, XM, y, offset, *_ = ownership_lists(seed=4, large_parent_bonus=-2.0)
    model, Z, table = _ownership_effects(structure, X, XM, y, offset, n_boot=10)
    assert (model.channel_coef_.drop("intercept") >= 0).all()
    gain = (model.predict_proba(XM, Z, offset)[:, 1]
            - model.predict_proba(XM, as_independent(Z), offset)[:, 1])
    assert gain.min() >= -1e-12
    assert (table[["excess", "low", "high"]] >= -1e-12).all().all()
    assert table.loc["subsidiary", "excess"] < 0.05  # nothing to find


def test_quota_province_effects_need_the_committees_unexplained_route():
    """Separate channels have no unexplained route; from them every province would read 0
    (u = 0 is a fixed point of the EM), so they are refused."""
    X, Z, y, offset, province = quota_lists(seed=6, per_province=300, years=2)
    separate = TwoChannelSelection("separate", merit_signs={"x": 1},
                                   channel_signs={"province": 1, "state": 1}).fit(X, Z, y, offset)
    with pytest.raises(ValueError, match="unexplained"):
        province_effects(separate, X, Z, y, offset, province, n_boot=0)


def eligibility_lists(seed: int, n: int = 30_000, state_bonus: float = 1.5):
    """Candidates with a merit score x (the merit model's log-odds), a tenth
    state-controlled, most of those subsidiaries of large groups, which break the SME rule
    (no merit selects them; the merit model does not read parent groups). One committee:
    logit = offset - 3 + 1.5 x + state_bonus * state - 6 * disqualified. Returns p_merit
    (sigmoid x), Z (state), disqualified, y, offset, state."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    state = (rng.random(n) < 0.1) * 1.0
    disqualified = (rng.random(n) < np.where(state == 1, 0.6, 0.05)) * 1.0
    offset = np.array([-0.3, 0.0, 0.3])[rng.integers(0, 3, n)]
    logit_p = offset - 3 + 1.5 * x + state_bonus * state - 6 * disqualified
    y = (rng.random(n) < expit(logit_p)).astype(int)
    return expit(x), pd.DataFrame({"state": state}), disqualified, y, offset, state


def _state_bonus(XM, Z, y, offset, structure="additive"):
    model = TwoChannelSelection(structure, merit_signs=merit_signs(XM),
                                channel_signs={"state": 1}).fit(XM, Z, y, offset)
    return model, model.channel_coef_["state"] / Z["state"].std(ddof=0)


def test_an_eligibility_breach_in_the_merit_part_gives_a_visible_favour_its_weight():
    """State-controlled firms are mostly subsidiaries of large groups, which no merit
    selects: without the breach among the merit columns the state's favour is read as
    failing (its bonus pulled towards 0); with it, the bonus comes out as simulated."""
    p_merit, Z, disqualified, y, offset, state = eligibility_lists(seed=1)
    blind, bonus_blind = _state_bonus(merit_design(p_merit), Z, y, offset)
    aware, bonus_aware = _state_bonus(merit_design(p_merit, (), disqualified), Z, y, offset)
    assert bonus_aware == pytest.approx(1.5, rel=0.25)
    assert bonus_blind < 0.5 * bonus_aware
    assert aware.merit_coef_[DISQUALIFIED] < -1.0  # bounded to lower the chance
    # The posterior of the eligible state-controlled selections follows the weight.
    eligible_state = (y == 1) & (state == 1) & (disqualified == 0)
    p_aware = aware.p_non_merit(merit_design(p_merit, (), disqualified), Z, offset)
    p_blind = blind.p_non_merit(merit_design(p_merit), Z, offset)
    assert p_aware[eligible_state].mean() > p_blind[eligible_state].mean() + 0.1


def test_the_merit_link_is_monotone_and_bends_where_the_log_odds_are_off_scale():
    """The merit model's log-odds rise faster than the committee's below its top and flatten
    above it: hinges at MERIT_KNOTS follow the bend (better likelihood, every fitted
    chance non-decreasing in the log-odds), a straight line cannot."""
    rng = np.random.default_rng(2)
    n = 30_000
    x = rng.normal(scale=1.5, size=n)
    state = (rng.random(n) < 0.1) * 1.0
    offset = np.zeros(n)
    bent = -4.0 + 3.0 * np.minimum(x, 1.0) + 0.3 * np.maximum(x - 1.0, 0.0)
    y = (rng.random(n) < expit(bent + 1.2 * state)).astype(int)
    p_merit, Z = expit(x), pd.DataFrame({"state": state})
    XM_line = merit_design(p_merit)
    XM_bent = merit_design(p_merit, merit_knots(p_merit))
    line, _ = _state_bonus(XM_line, Z, y, offset)
    bent_fit, bonus = _state_bonus(XM_bent, Z, y, offset)
    assert bent_fit.score(XM_bent, Z, y, offset) > line.score(XM_line, Z, y, offset) + 0.002
    assert bonus == pytest.approx(1.2, rel=0.25)
    grid = np.sort(x)
    XM_grid = merit_design(expit(grid), merit_knots(p_merit))
    chance = bent_fit.predict_proba(XM_grid, pd.DataFrame({"state": np.zeros(n)}),
                                    offset)[:, 1]
    assert (np.diff(chance) >= -1e-12).all()


def test_merit_design_columns_and_their_directions():
    p_merit = np.array([0.01, 0.2, 0.5, 0.9])
    knots = merit_knots(p_merit, (0.25, 0.75))
    XM = merit_design(p_merit, knots, np.array([0, 1, 0, 0]), np.array(["A", "B", "A", "C"]))
    log_odds = XM["merit_log_odds"].to_numpy()
    for j, knot in enumerate(knots):
        # Each knot splits the log-odds into a part below and a part above it.
        assert np.allclose(XM[f"merit_below_{j}"] + XM[f"merit_above_{j}"] + knot, log_odds)
        assert (XM[f"merit_below_{j}"] <= 0).all() and (XM[f"merit_above_{j}"] >= 0).all()
    signs = merit_signs(XM)
    assert "province" not in signs  # a provincial list's bar is free
    assert signs[DISQUALIFIED] == -1
    assert {signs[c] for c in XM.columns if c.startswith("merit_")} == {1}
