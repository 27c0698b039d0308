"""Province effects of a list with provincial quotas (models/audit_channels.py), on lists
simulated with a known, invisible provincial push."""

import numpy as np
import pandas as pd
from scipy.special import logit
from scipy.stats import spearmanr

from models.audit_channels import province_effects, province_unexplained
from models.selection_channels import TwoChannelSelection

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
