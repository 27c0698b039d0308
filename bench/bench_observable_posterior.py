"""The best ranking of the non-merit selections that the contract's data allow: a bound.

The oracle (truth.parquet's ``true_p_non_merit``) knows every favour a firm received,
including those no table records: a province's pushes (which firms it picked in a year)
and personal connections. No scorer of the contract data can know them. This bench regenerates
a universe (``training.synthetic.simulate``, same seed and mechanism as ``giantwatch
generate``), records each list decision's inputs, and scores every selection by the
generator's own mechanism with the hidden favours integrated out: the posterior that it was
not made on merit given

- its true committee score (a function of the published facts the contract carries: every
  scorer must estimate it from data, this one is handed it),
- the visible favours (the state share; a breach of the SME size or group rule, whose
  waiver or lobbying is taken as known: a selection breaking it had one),
- the list's merit line (the cutoff of that year's decision; the favour channel's scale
  under the separate mechanism),
- its province's interference (a parameter an estimator would have to learn),
- the firm's subsidy base rate before noise (political ties double it; an estimator sees
  only noisy yearly amounts),

and the distribution of the hidden ones: the provincial push (PROVINCE_PICK of a province's
candidates a year, strength uniform 0.5-1.5 times the province's interference) and
connections (6% of firms, exponential strength). Everything it is given is what the
contract shows or less noisy, so its average precision bounds any scorer's from above (up to
sampling noise), and it tells which part of the oracle's AP no data can reach.

Prints per tier: selections, non-merit ones (and those carried by a hidden favour), the AP
of the oracle and of this bound and their ratio, and the AP of ranking by the committee's
true chance on merit alone (its score against the list's merit line; no favour counted). The selections are those ``giantwatch audit`` scores
on the demo universes (its oracle AP is the same). Average precision is not exactly
maximised by ranking on a posterior, so on a universe where the hidden favours tell little
the bound may come out a hair above the oracle.

``--audit OUT`` (a `giantwatch audit` of the same universe) adds, on the selections it
scored, the AP of its p_non_merit, of its blend (anomaly_score) and of its merit model
alone (its merit log-odds, lowest first, size breaches first), and the Spearman
correlation of those log-odds with the committee's true score among the selections that
break no size rule.

    .venv/bin/python bench/bench_observable_posterior.py --firms 20000 --seed 7 \\
        [--mechanism separate] [--audit OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logit, ndtr
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score

from models.audit_flags import DISQUALIFYING
from training.synthetic import selection, selection_constants, simulate, stage_seed
from training.synthetic.selection import CHANNELS, FAVOUR, PROVINCE_PICK

# Rows of the (5, n) favours (selection.CHANNELS[1:]): the two a table shows (a breach
# of the SME size or group rule is in the data; a state share too), the two it hides.
SUBSIDIARY, PROVINCIAL, STATE, LENIENT, OVERSIZED = range(5)
CONNECTED_SHARE = 0.06     # firms.draw_firms: share of firms with personal ties
BACKED_SHARE = 0.3         # firms.draw_firms: share of subsidiaries their group lobbies for
SUBSIDY_SD = 0.8           # trajectories.add_subsidies: sd of the log base rate
DRAWS = 4000
TIER_NAMES = ("specialized", "little_giant", "champion")
# selection.run_selection: the Champion list weighs the favours less (champ_favours).
HIDDEN_SCALE = ((1.0, 1.0), (1.0, 1.0), (0.15, 0.1))


def record_decisions(n_firms: int, seed: int, mechanism: str):
    """Simulate the universe (the years of ``giantwatch generate``'s defaults, 2013-2025),
    keeping each new-title decision: ([(tier code, year, call)], Simulation), where call
    holds selection._decide's arguments (score, noise, sd, favours, eligible, group, quota,
    draw, share) and its result ``out`` (chosen, channel, p_selected, p_non_merit,
    p_no_province; (n,) arrays by firm number)."""
    calls, grants = [], []
    decide, grant = selection._decide, selection._grant

    def recording_decide(score, noise, sd, favours, eligible, group, quota, mech, draw, share):
        out = decide(score, noise, sd, favours, eligible, group, quota, mech, draw, share)
        calls.append({"score": score, "noise": noise, "sd": sd, "favours": favours,
                      "eligible": eligible, "group": group, "quota": quota, "draw": draw,
                      "share": share, "out": out})
        return out

    def recording_grant(log, candidates, announced, chosen, decision, tier, year):
        grants.append((tier, year, calls[-1]))
        return grant(log, candidates, announced, chosen, decision, tier, year)

    selection._decide, selection._grant = recording_decide, recording_grant
    try:
        sim = simulate(n_firms, seed, 2013, 2025, mechanism=mechanism)
    finally:
        selection._decide, selection._grant = decide, grant
    return grants, sim


def connection_prior(sim, seed: int) -> np.ndarray:
    """(n,) P(personal ties | the firm's subsidy base rate, ownership): the base rate as
    trajectories.add_subsidies draws it (its first draw of the subsidies stream), doubled
    for a favoured firm (ties or a lobbying group)."""
    firms = sim.firms
    rng = np.random.default_rng(stage_seed(seed, "subsidies"))
    noise = rng.normal(np.log(0.003), SUBSIDY_SD, firms.n)
    base_ties = 1.0 + (firms.state_share > 0.5) + 0.5 * (firms.group >= 0)
    favoured = (firms.connections > 0) | firms.group_backing
    observed = noise + np.log(base_ties + favoured)        # log(base rate x ties)
    prior_fav = 1 - (1 - CONNECTED_SHARE) * (1 - BACKED_SHARE * (firms.group >= 0))

    def density(shift):
        return np.exp(-0.5 * ((observed - np.log(0.003) - shift) / SUBSIDY_SD) ** 2)

    with_fav = prior_fav * density(np.log(base_ties + 1))
    without = (1 - prior_fav) * density(np.log(base_ties))
    return with_fav / (with_fav + without) * CONNECTED_SHARE / prior_fav


def hidden_draws(rng, interference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden favour draws for m selections (interference: (m,)): the provincial push
    (m, DRAWS), and the connections' strength if connected (1, DRAWS; its chance weighs
    them outside)."""
    pushed = rng.random((1, DRAWS)) < PROVINCE_PICK
    size = rng.uniform(0.5, 1.5, (1, DRAWS))
    push = pushed * size * FAVOUR["provincial"] * interference[:, None]
    return push, rng.exponential(1.0, (1, DRAWS)) * FAVOUR["lenient"]


def bound_posterior(call, province_interference, q_conn, scale, mechanism, rng,
                    hidden_known: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(p_non_merit, merit_alone), each (m,) over the decision's selections (in firm
    order): the posterior given only what the data show, and the chance the firm had on
    merit alone (its score against the list's merit line, no favour counted).
    province_interference, q_conn: (n,) per firm; scale: the tier's share of the
    (provincial, lenient) favours. hidden_known: every favour taken as seen (the
    generator's own p_non_merit: the check that this re-derivation matches it)."""
    score, noise, sd = call["score"], call["noise"], call["sd"]
    favours, eligible, group, quota = call["favours"], call["eligible"], call["group"], call["quota"]
    idx = np.flatnonzero(eligible)
    own_merit = (score + noise)[idx].astype(np.float64)
    own_group = group[idx]
    strength = favours[:, idx].sum(axis=0).astype(np.float64)
    chosen_mask = call["out"][0][idx]
    sel = np.flatnonzero(chosen_mask)
    s = score[idx][sel].astype(np.float64)
    seen = [SUBSIDIARY, PROVINCIAL, STATE, LENIENT, OVERSIZED] if hidden_known else \
        [SUBSIDIARY, STATE, OVERSIZED]
    visible = favours[seen][:, idx][:, sel].sum(axis=0).astype(np.float64)
    firms = idx[sel]
    if hidden_known:
        push, ties, q = np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(len(sel))
    else:
        push, ties = hidden_draws(rng, province_interference[firms])
        push, ties, q = push * scale[0], ties * scale[1], q_conn[firms]
    if mechanism == "additive":
        total = own_merit + strength
        cutoff = np.full(len(quota), np.inf)
        np.minimum.at(cutoff, own_group[chosen_mask], total[chosen_mask])
        k = cutoff[own_group[sel]]
        alone = ndtr((s - k) / sd)

        def chance(extra):
            return ndtr((s[:, None] + visible[:, None] + extra - k[:, None]) / sd).mean(axis=1)

        with_ties = chance(push + ties)
        without = chance(push)
        p_sel = (1 - q) * without + q * with_ties
        return np.clip(1 - alone / np.maximum(p_sel, 1e-300), 0, 1), alone
    # separate: the favour channel's chance c = min(1, lam * (1 - exp(-strength)))
    pull = 1 - np.exp(-strength)
    room = np.bincount(own_group, weights=pull, minlength=len(quota))
    lam_all = np.where(room > 0, call["share"] * quota / np.maximum(room, 1e-12), 0.0)[own_group]
    lam = lam_all[sel]
    # The firms the favour channel carried (_decide's draw), the rest of the list by merit.
    favoured = (call["draw"][idx] < np.minimum(1.0, lam_all * pull)) & chosen_mask
    by_merit = chosen_mask & ~favoured
    cutoff = np.full(len(quota), np.inf)
    np.minimum.at(cutoff, own_group[by_merit], own_merit[by_merit])
    p_m = ndtr((s - cutoff[own_group[sel]]) / sd)

    def mean_c(extra):
        return np.minimum(1.0, lam[:, None] * (1 - np.exp(-(visible[:, None] + extra)))).mean(axis=1)

    c = (1 - q) * mean_c(push) + q * mean_c(push + ties)
    return np.clip((1 - p_m) * c / np.maximum(1 - (1 - p_m) * (1 - c), 1e-300), 0, 1), p_m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mechanism", default="additive")
    parser.add_argument("--audit", help="folder of a `giantwatch audit` of the same universe")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    grants, sim = record_decisions(args.firms, args.seed, args.mechanism)
    interference = selection_interference(sim)
    q_conn = connection_prior(sim, args.seed)
    rng = np.random.default_rng(0)
    parts = []
    for tier, year, call in grants:
        idx = np.flatnonzero(call["eligible"])
        chosen = idx[call["out"][0][idx]]
        if not len(chosen):
            continue
        bound, merit_alone = bound_posterior(call, interference[sim.firms.province], q_conn,
                                             HIDDEN_SCALE[tier], args.mechanism, rng)
        parts.append(pd.DataFrame({
            "tier": TIER_NAMES[tier], "year": year, "firm_id": sim.firms.firm_id[chosen],
            "score": call["score"][chosen].astype(np.float64),
            "non_merit": call["out"][1][chosen] != 0,
            "hidden_channel": np.isin(CHANNELS[call["out"][1][chosen]],
                                      ["provincial", "lenient"]),
            "oracle": call["out"][3][chosen],
            "bound": bound,
            # The chance on merit alone, lowest first (a size breach costs the score
            # committee.SME_PENALTY, so breaches come first, as in the audit).
            "merit_alone": 1 - merit_alone}))
    table = pd.concat(parts, ignore_index=True)
    if args.audit:
        table = with_audit_scores(table, Path(args.audit) / "anomalies.csv")
    out = []
    for tier, part in table.groupby("tier", sort=False):
        if not part["non_merit"].any():
            continue
        ap = {name: average_precision_score(part["non_merit"], part[name])
              for name in ("oracle", "bound", "merit_alone")}
        out.append({"tier": tier, "selections": len(part),
                    "non_merit": int(part["non_merit"].sum()),
                    "hidden_channel": int(part["hidden_channel"].sum()),
                    "oracle_ap": round(ap["oracle"], 3), "bound_ap": round(ap["bound"], 3),
                    "bound_of_oracle": round(ap["bound"] / ap["oracle"], 3),
                    "merit_alone_ap": round(ap["merit_alone"], 3),
                    "merit_alone_of_oracle": round(ap["merit_alone"] / ap["oracle"], 3),
                    **(audit_figures(part) if args.audit else {})})
    print(pd.DataFrame(out).to_string(index=False))
    if args.json:
        for row in out:
            print(json.dumps({"firms": args.firms, "seed": args.seed,
                              "mechanism": args.mechanism, **row}))


def with_audit_scores(table: pd.DataFrame, anomalies_csv: Path) -> pd.DataFrame:
    """The selections the audit scored (inner join on firm, tier and year), with its
    p_non_merit, anomaly_score (the blend), merit_probability and size breach flags."""
    audit = pd.read_csv(anomalies_csv, usecols=[
        "firm_id", "year", "tier", "p_non_merit", "anomaly_score", "merit_probability",
        *DISQUALIFYING], encoding="utf-8-sig")
    return table.merge(audit, on=["firm_id", "tier", "year"], how="inner")


def audit_figures(part: pd.DataFrame) -> dict:
    """AP of the audit's scores on one tier's selections, and the rank correlation of its
    merit log-odds with the committee's true score among the selections breaking no rule."""
    breach = part[list(DISQUALIFYING)].sum(axis=1) > 0
    log_odds = logit(part["merit_probability"].clip(1e-9, 1 - 1e-9))
    figures = {"audit_merit_alone_ap": round(average_precision_score(
        part["non_merit"], -log_odds + 100 * breach), 3)}
    for name in ("p_non_merit", "anomaly_score"):
        if part[name].notna().all():
            figures[f"audit_{name}_ap"] = round(
                average_precision_score(part["non_merit"], part[name]), 3)
    figures["merit_spearman"] = round(float(spearmanr(
        part.loc[~breach, "score"], log_odds[~breach])[0]), 3)
    return figures


def selection_interference(sim) -> np.ndarray:
    """(n_provinces,) the generator's interference per province."""
    return selection_constants(sim.ref)[0].astype(np.float64)


if __name__ == "__main__":
    main()
