"""The two-channel selection model on data simulated from known channels."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score

from models.selection_channels import (
    DECISIVE_Z,
    STRUCTURES,
    TwoChannelSelection,
    bootstrap_excess,
    loglik_rows,
    posterior_given_choice,
    told_apart,
    vuong_z,
)

PROVINCE_EFFECT = {"A": 0.0, "B": 0.5, "C": 1.0, "D": 1.5, "E": 2.0}
MERIT = {"x1": 1.5, "x2": 1.0}
SIGNS = {"merit_signs": {"x1": 1, "x2": 1}, "channel_signs": {"state": 1}}


def simulate(n: int, structure: str, seed: int):
    """Merit m = sigmoid(-3 + 1.5 x1 + x2); non-merit c from province and state ties.
    separate: selected by either channel; additive: one logistic committee whose log-odds
    add the bonus. Returns X, Z, y, offset (by year), the oracle posterior and the truth
    (selected and not on merit alone)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    province = rng.choice(list(PROVINCE_EFFECT), size=n)
    state = (rng.random(n) < 0.2).astype(float)
    Z = pd.DataFrame({"province": province, "state": state})
    year = rng.integers(0, 3, n)
    offset = np.array([-0.3, 0.0, 0.3])[year]
    merit = offset - 3 + MERIT["x1"] * X["x1"].to_numpy() + MERIT["x2"] * X["x2"].to_numpy()
    bonus = pd.Series(province).map(PROVINCE_EFFECT).to_numpy() + 1.5 * state
    if structure == "separate":
        channel = offset - 4.5 + bonus
        on_merit = rng.random(n) < expit(merit)
        favoured = rng.random(n) < expit(channel)
        y = (on_merit | favoured).astype(int)
        m, c = expit(merit), expit(channel)
        oracle = (1 - m) * c / (1 - (1 - m) * (1 - c))
    else:
        noise = rng.logistic(size=n)
        on_merit = merit + noise > 0
        y = (merit + bonus + noise > 0).astype(int)
        oracle = 1 - expit(merit) / expit(merit + bonus)
    return X, Z, y, offset, year, oracle, (y == 1) & ~on_merit


@pytest.mark.parametrize("structure", ["separate", "additive"])
def test_recovers_the_structure_the_channels_and_ranks_near_the_oracle(structure):
    X, Z, y, offset, year, oracle, non_merit = simulate(6000, structure, seed=3)
    model = TwoChannelSelection(**SIGNS)
    assert model.fit(X, Z, y, offset=offset, groups=year) is model
    assert model.structure_ == structure
    assert model.heldout_loglik_[structure] > model.heldout_loglik_[
        {"separate": "additive", "additive": "separate"}[structure]]
    # Merit coefficients are on standardised columns: back to raw units.
    raw = model.merit_coef_[["x1", "x2"]] / X.std(ddof=0).to_numpy()
    assert raw["x1"] == pytest.approx(MERIT["x1"], rel=0.25)
    assert raw["x2"] == pytest.approx(MERIT["x2"], rel=0.25)
    provinces = [f"province_{p}" for p in PROVINCE_EFFECT]
    rho = spearmanr(model.channel_coef_[provinces], list(PROVINCE_EFFECT.values()))[0]
    assert rho > 0.85  # at most one swap of neighbouring provinces
    selected = y == 1
    ap_model = average_precision_score(non_merit[selected],
                                       model.p_non_merit(X, Z, offset)[selected])
    ap_oracle = average_precision_score(non_merit[selected], oracle[selected])
    assert ap_model >= 0.95 * ap_oracle
    # The posterior is a probability, and it tracks the true one.
    p = model.p_non_merit(X, Z, offset)[selected]
    assert ((p >= 0) & (p <= 1)).all()
    assert np.corrcoef(p, oracle[selected])[0, 1] > 0.9


def test_known_direction_bounds_the_coefficient():
    X, Z, y, offset, *_ = simulate(3000, "separate", seed=5)
    free = TwoChannelSelection("separate").fit(X, Z, y, offset)
    # A wrong direction declared for x2 (its true effect is positive) pins it at zero.
    bounded = TwoChannelSelection("separate", merit_signs={"x2": -1}).fit(X, Z, y, offset)
    assert free.merit_coef_["x2"] > 0.5
    assert bounded.merit_coef_["x2"] == pytest.approx(0.0, abs=1e-9)
    assert bounded.loglik_ < free.loglik_


def test_province_excess_with_bootstrap_intervals_orders_the_provinces():
    X, Z, y, offset, _, _, _ = simulate(3000, "additive", seed=11)
    model = TwoChannelSelection("additive", **SIGNS).fit(X, Z, y, offset)
    tables = bootstrap_excess(model, X, Z, y, {
        "province": (Z.assign(province="none"), Z["province"]),
        "state": (Z.assign(state=0.0), np.where(Z["state"] == 1, "state", "other"))},
        offset, n_boot=15, seed=0)
    assert tables["state"].set_index("group").loc["state", "low"] > 0.1
    table = tables["province"].set_index("group")
    assert (table["low"] <= table["excess"]).all() and (table["excess"] <= table["high"]).all()
    assert table.loc["E", "low"] > 0 > table.loc["A", "high"]
    assert spearmanr(table["excess"], pd.Series(PROVINCE_EFFECT)[table.index])[0] > 0.85
    assert table["candidates"].sum() == len(X)


def test_unknown_structure_is_refused():
    X, Z, y, *_ = simulate(200, "separate", seed=1)
    with pytest.raises(ValueError, match="structure"):
        TwoChannelSelection("mixed").fit(X, Z, y)


def test_unexplained_favours_make_low_merit_selections_non_merit():
    """An additive committee plus favours no column shows (a fixed chance of being carried
    whatever the merit): with their share given, the posterior finds the low-merit
    selections those favours carried; without it they count as merit selections."""
    X, Z, _, offset, *_ = simulate(8000, "additive", seed=7)
    rng = np.random.default_rng(8)
    merit = offset - 3 + MERIT["x1"] * X["x1"].to_numpy() + MERIT["x2"] * X["x2"].to_numpy()
    bonus = Z["province"].map(PROVINCE_EFFECT).to_numpy() + 1.5 * Z["state"].to_numpy()
    noise = rng.logistic(size=len(X))
    committee = merit + bonus + noise > 0
    unexplained = rng.random(len(X)) < 0.08
    y = (committee | unexplained).astype(int)
    selected = y == 1
    non_merit = selected & ~(merit + noise > 0)
    share = float((selected & ~committee).sum() / selected.sum())
    p_true = 1 - (1 - expit(merit + bonus)) * 0.92
    oracle = 1 - expit(merit) / p_true

    given = TwoChannelSelection("additive", unexplained_share=share, **SIGNS).fit(
        X, Z, y, offset)
    ignored = TwoChannelSelection("additive", **SIGNS).fit(X, Z, y, offset)
    assert given.unexplained_ == pytest.approx(0.08, rel=0.2)
    assert ignored.unexplained_ == 0.0
    ap = {name: average_precision_score(non_merit[selected],
                                        model.p_non_merit(X, Z, offset)[selected])
          for name, model in (("given", given), ("ignored", ignored))}
    ap_oracle = average_precision_score(non_merit[selected], oracle[selected])
    assert ap["given"] >= 0.97 * ap_oracle
    assert ap["given"] > ap["ignored"] + 0.02
    probs = given.channel_probabilities(X, Z, offset)
    assert (probs["p_selected"] >= probs["p_merit"]).all()


def test_a_sign_bounds_every_level_of_a_categorical_column():
    X, Z, y, offset, *_ = simulate(3000, "additive", seed=4)
    model = TwoChannelSelection("additive", merit_signs=SIGNS["merit_signs"],
                                channel_signs={"province": 1, "state": 1}).fit(X, Z, y, offset)
    levels = model.channel_coef_[[f"province_{p}" for p in PROVINCE_EFFECT]]
    assert (levels >= 0).all()
    # Counted from the least-favoured province: the others' order is kept.
    assert spearmanr(levels, list(PROVINCE_EFFECT.values()))[0] > 0.85


@pytest.mark.parametrize("structure", ["separate", "additive"])
def test_vuong_tells_the_structures_apart_on_enough_rows_only(structure):
    """Both structures fitted on one simulated list and scored on another: the statistic
    favours the true structure beyond chance on 6,000 held-out candidates, and cannot on
    200 of them."""
    X, Z, y, offset, *_ = simulate(6000, structure, seed=3)
    X_new, Z_new, y_new, offset_new, *_ = simulate(6000, structure, seed=103)
    rows = {s: loglik_rows(y_new, TwoChannelSelection(s, **SIGNS).fit(X, Z, y, offset)
                           .predict_proba(X_new, Z_new, offset_new)[:, 1])
            for s in STRUCTURES}
    z = vuong_z(rows["separate"], rows["additive"])
    assert (z if structure == "separate" else -z) >= DECISIVE_Z
    assert abs(vuong_z(rows["separate"][:200], rows["additive"][:200])) < DECISIVE_Z


def test_vuong_statistic_is_the_summed_difference_over_its_standard_error():
    rng = np.random.default_rng(0)
    a, b = rng.normal(-0.2, 0.1, 400), rng.normal(-0.21, 0.1, 400)
    difference = a - b
    expected = difference.sum() / (difference.std(ddof=1) * np.sqrt(400))
    assert vuong_z(a, b) == pytest.approx(expected)
    assert vuong_z(b, a) == pytest.approx(-expected)
    assert vuong_z(a, a) == 0.0
    assert vuong_z(np.full(9, -0.25), np.full(9, -0.375)) == np.inf  # the same gain each row
    assert vuong_z(a[:1], b[:1]) == 0.0
    assert loglik_rows([1, 0], [0.8, 0.8]) == pytest.approx(np.log([0.8, 0.2]))


def test_p_non_merit_is_the_better_structures_posterior_only_when_told_apart():
    posteriors = {"separate": np.array([0.9, 0.2, 1.0]), "additive": np.array([0.5, 0.4, 1.0])}
    for z in (DECISIVE_Z, -2.5, np.inf):
        assert told_apart(z)
        np.testing.assert_array_equal(posterior_given_choice(posteriors, "additive", z),
                                      posteriors["additive"])
    for z in (1.95, -0.3, 0.0):
        assert not told_apart(z)
        np.testing.assert_allclose(posterior_given_choice(posteriors, "additive", z),
                                   [0.7, 0.3, 1.0])
