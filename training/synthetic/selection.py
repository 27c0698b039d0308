"""The year-by-year certification process of the synthetic universe.

Each announcement year, for every tier: titles of firms that stopped reporting or broke
rules are revoked mid-term, titles granted or renewed three years earlier are re-reviewed
(``renewed`` or ``revoked``), and new titles fill the year's quota from the eligible
candidates ranked by committee score (:mod:`training.synthetic.committee`) plus noise.
Specialized SMEs are provincial lists with per-province quotas; Little Giants and
Champions are national lists.

Selection is not purely on merit. Channel favours: backed subsidiaries of large groups and
oversized firms escape the SME size check, a province pushes its favourites (strength from
provinces.csv), state-linked and personally connected firms get the benefit of the doubt.
How favours act is the ``mechanism`` (MECHANISMS):

- ``additive`` (the default): favours are added to the committee score, and the list is
  the top of merit + favours + noise;
- ``separate``: two channels fill the list independently. Each eligible firm is granted
  through favours with probability ``c = lam * (1 - exp(-favours))``, ``lam`` set so the
  channel fills SEPARATE_SHARE of the year's quota in expectation; merit (score + noise)
  fills the rest.

A selected firm that merit alone would not have selected (its score without favours
misses the merit cutoff) is recorded with the channel that carried it. Every decision
also records the true probabilities the audit is judged against: ``p_selected`` (before
the committee noise is drawn) and ``p_non_merit``, the probability that the selection
would not have happened on merit alone (additive: ``1 - Phi((s - k) / sd) / Phi((s + f - k)
/ sd)`` with score s, favours f, cutoff k, noise sd; separate: ``(1 - m) c / P``).

Every list decision also records the true ``p_selected`` of each eligible firm, selected
or not (``Events.candidates``): the oracle a selection model's ranking is measured against.
Firms that were not eligible (no report for t-1, a title that rules them out, up for
re-review) had no chance of that list.

Everything a decision in year t reads comes from fiscal year t-1 or earlier, and all
random draws of a year have fixed sizes, so changing data of year t or later never
changes decisions made up to year t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from features import domain
from training.synthetic import committee
from training.synthetic.firms import Firms
from training.synthetic.trajectories import Panel

F32 = np.float32
TIERS = np.array(domain.TIERS)
EVENTS = np.array(domain.EVENTS)
CHANNELS = np.array(["merit", "subsidiary", "provincial", "state_ties", "lenient", "oversized"])
PROVINCIAL = 1  # row of the provincial push in the (5, n) favours (CHANNELS[1:])
SPEC, LG, CHAMP = 0, 1, 2
GRANTED, RENEWED, REVOKED = 0, 1, 2

REAL_SCALE = 500_000  # firms behind the published counts
# Announced Little Giant batches; Single Champion batches 1-8 (~1,186 after 7, ~1,557
# after 8); new provincial Specialized SMEs (~48k valid mid-2022, ~98k 2023, >140k 2026).
LG_BATCHES = {2019: 248, 2020: 1744, 2021: 2930, 2022: 4357, 2023: 3671, 2024: 3012, 2025: 3482}
CHAMPION_BATCHES = {2016: 105, 2017: 130, 2018: 145, 2019: 170, 2020: 190, 2021: 200,
                    2022: 246, 2024: 371}
SPECIALIZED_NEW = {2017: 2200, 2018: 4500, 2019: 6500, 2020: 9000, 2021: 12500, 2022: 17000,
                   2023: 27000, 2024: 21000, 2025: 23000}
# Share of re-reviewed titles kept: Little Giant batches 1-3 kept 142/248, 1,079/1,744 and
# 2,430/2,930; 87% passed in 2025.
LG_KEEP = {2022: 142 / 248, 2023: 1079 / 1744, 2024: 2430 / 2930}
KEEP_DEFAULT = (0.85, 0.87, 0.90)
MIDTERM_VIOLATION = 0.003   # yearly chance a holder is struck off for a rule breach
SILENT_REVOKE = 0.5         # chance a holder that filed no report for t-1 is struck off
# Channel favours in committee-score units (log scale; a failed criterion costs ~3.5).
FAVOUR = {"subsidiary": 1.0, "provincial": 1.7, "state_ties": 1.0, "lenient": 1.3,
          "oversized": 0.5}
# Only moderately oversized firms pass unnoticed; a 5,000-employee firm would not.
OVERSIZE_LIMIT = 2500
PROVINCE_PICK = 0.12        # share of a province's candidates it pushes in a year
NOISE = (0.8, 0.7, 0.5)     # committee noise by tier
MECHANISMS = ("additive", "separate")
SEPARATE_SHARE = (0.2, 0.2, 0.1)  # share of a list the favour channel fills, by tier


@dataclass
class Events:
    """Decisions as parallel arrays (firm index, tier code, year, event code, channel code,
    batch number or NaN, true p_selected and p_non_merit, NaN for revocations) and ``title`` (n, T) int8: highest tier held during each year
    (0 none, 1 specialized, 2 little giant, 3 champion)."""

    firm: np.ndarray
    tier: np.ndarray
    year: np.ndarray
    event: np.ndarray
    channel: np.ndarray
    batch: np.ndarray
    p_selected: np.ndarray
    p_non_merit: np.ndarray
    title: np.ndarray
    candidates: Candidates | None = None


@dataclass
class Candidates:
    """Every firm eligible for a new title, per list (tier and year): firm index, tier code,
    year, the true probability of selection (the ``p_selected`` of Events for the
    firms that were selected) and ``p_no_province``, that probability had the firm's
    province not pushed it (its other favours and the list's cutoff as they were: the
    counterfactual a province effect is measured against), sorted by year, tier and firm."""

    firm: np.ndarray
    tier: np.ndarray
    year: np.ndarray
    p_selected: np.ndarray
    p_no_province: np.ndarray


def quotas(n_firms: int, first_year: int, last_year: int) -> dict[int, dict[int, int]]:
    """New titles per tier and year at this universe size; batches beyond the published
    ones repeat the last published year for Specialized SMEs and Little Giants."""
    scale = n_firms / REAL_SCALE
    out: dict[int, dict[int, int]] = {SPEC: {}, LG: {}, CHAMP: {}}
    for tier, table, extend in ((SPEC, SPECIALIZED_NEW, True), (LG, LG_BATCHES, True),
                                (CHAMP, CHAMPION_BATCHES, False)):
        last = max(table)
        for year in range(max(first_year + 1, min(table)), last_year + 1):
            real = table.get(year, table[last] if extend and year > last else 0)
            if real:
                out[tier][year] = max(1, round(real * scale))
    return out


def batch_numbers(tier: int, first_year: int, last_year: int) -> dict[int, int]:
    """National list batch number of each grant year (none for provincial lists)."""
    if tier == SPEC:
        return {}
    table = LG_BATCHES if tier == LG else CHAMPION_BATCHES
    years = sorted(table) + list(range(max(table) + 1, last_year + 1)) if tier == LG \
        else sorted(table)
    return {y: k + 1 for k, y in enumerate(years) if y <= last_year}


def _top_by_group(score: np.ndarray, group: np.ndarray, quota: np.ndarray) -> np.ndarray:
    """Mask of the ``quota[g]`` highest scores within each group g (score -inf = ineligible)."""
    order = np.lexsort((-score, group))
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    chosen = np.zeros(len(score), bool)
    chosen[order] = (rank < quota[g]) & np.isfinite(score[order])
    return chosen


def _decide(score: np.ndarray, noise: np.ndarray, sd: float, favours: np.ndarray,
            eligible: np.ndarray, group: np.ndarray, quota: np.ndarray, mechanism: str,
            draw: np.ndarray, share: float) -> tuple[np.ndarray, ...]:
    """Fill ``quota[g]`` places per group g from the eligible firms; return (chosen mask,
    channel, true p_selected, true p_non_merit, true p_selected without the provincial
    favour), all (n,).

    score: merit without noise; noise: the committee's draw (sd ``sd``); favours: (5, n);
    draw: (n,) uniforms for the separate mechanism's favour channel; share: the share of
    the quota that channel fills in expectation. A chosen firm is on ``merit`` when its
    score + noise reaches the merit cutoff, otherwise on the channel with the largest
    favour.
    """
    idx = np.flatnonzero(eligible)
    own_merit = score[idx] + noise[idx]
    own_favours, own_group = favours[:, idx], group[idx]
    own_score = score[idx]
    n_groups = len(quota)
    strength = own_favours.sum(axis=0)
    if mechanism == "additive":
        total = own_merit + strength
        picked = _top_by_group(total, own_group, quota)
        cutoff = np.full(n_groups, np.inf, F32)
        np.minimum.at(cutoff, own_group[picked], total[picked])
        on_merit = own_merit >= cutoff[own_group]
        k = cutoff[own_group].astype(np.float64)
        p_alone = ndtr((own_score - k) / sd)
        p_sel = ndtr((own_score + strength - k) / sd)
        p_non = np.clip(1 - p_alone / np.maximum(p_sel, 1e-300), 0, 1)
        p_no_prov = ndtr((own_score + strength - own_favours[PROVINCIAL] - k) / sd)
    elif mechanism == "separate":
        pull = 1 - np.exp(-strength.astype(np.float64))
        room = np.bincount(own_group, weights=pull, minlength=n_groups)
        lam = np.where(room > 0, share * quota / np.maximum(room, 1e-12), 0.0)
        c = np.minimum(1.0, lam[own_group] * pull)
        favoured = (draw[idx] < c) & (quota[own_group] > 0)
        # Favours cannot take more places than a group has.
        favoured &= _top_by_group(np.where(favoured, own_merit, -np.inf), own_group, quota)
        rest = quota - np.bincount(own_group[favoured], minlength=n_groups)
        by_merit = _top_by_group(np.where(favoured, -np.inf, own_merit), own_group, rest)
        picked = favoured | by_merit
        cutoff = np.full(n_groups, np.inf, F32)
        np.minimum.at(cutoff, own_group[by_merit], own_merit[by_merit])
        on_merit = own_merit >= cutoff[own_group]
        p_m = ndtr((own_score - cutoff[own_group].astype(np.float64)) / sd)
        p_sel = 1 - (1 - p_m) * (1 - c)
        p_non = (1 - p_m) * c / np.maximum(p_sel, 1e-300)
        pull_no_prov = 1 - np.exp(-(strength - own_favours[PROVINCIAL]).astype(np.float64))
        c_no_prov = np.minimum(1.0, lam[own_group] * pull_no_prov)
        p_no_prov = 1 - (1 - p_m) * (1 - c_no_prov)
    else:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
    chosen = np.zeros(len(score), bool)
    chosen[idx[picked]] = True
    channel = np.zeros(len(score), np.int8)
    channel[idx] = np.where(on_merit, 0, 1 + np.argmax(own_favours, axis=0))
    p_selected = np.full(len(score), np.nan)
    p_non_merit = np.full(len(score), np.nan)
    p_no_province = np.full(len(score), np.nan)
    p_selected[idx], p_non_merit[idx], p_no_province[idx] = p_sel, p_non, p_no_prov
    return chosen, channel, p_selected, p_non_merit, p_no_province


def run_selection(seed: np.random.SeedSequence, firms: Firms, panel: Panel,
                  valid_inv: np.ndarray, valid_ip: np.ndarray, interference: np.ndarray,
                  guangdong_index: int, mechanism: str = "additive") -> Events:
    """Simulate every list from the first announcement year to the last sample year.

    ``interference`` (n_provinces,) 0..1 scales a province's push for its favourites;
    ``mechanism`` (MECHANISMS) is how favours act (module docstring).
    """
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
    n, T = panel.revenue.shape
    first_year, last_year = int(panel.years[0]), int(panel.years[-1])
    quota = quotas(n, first_year, last_year)
    batches = [batch_numbers(t, first_year, last_year) for t in (SPEC, LG, CHAMP)]
    announced = np.full((3, n), -9999, np.int16)
    revoked = np.full((3, n), -9999, np.int16)
    lg_first = np.full(n, 9999, np.int16)
    title = np.zeros((n, T), np.int8)
    guangdong = firms.province == guangdong_index
    n_prov = int(firms.province.max()) + 1
    state = np.where(firms.state_share > 0.5, 1.0, 2 * firms.state_share).astype(F32)
    log: list[tuple] = []
    candidates: list[tuple] = []

    years = list(range(first_year + 1, last_year + 1))
    year_seeds = seed.spawn(len(years))
    for year, year_seed in zip(years, year_seeds):
        rng = np.random.default_rng(year_seed)
        noise = rng.standard_normal((3, n)).astype(F32) * np.asarray(NOISE, F32)[:, None]
        review_noise = rng.standard_normal((3, n)).astype(F32) * np.asarray(NOISE, F32)[:, None]
        pushed = rng.random(n) < PROVINCE_PICK
        push_size = rng.uniform(0.5, 1.5, n).astype(F32)
        violation = rng.random((3, n)) < MIDTERM_VIOLATION
        silent = rng.random((3, n)) < SILENT_REVOKE
        # Drawn every year whatever the mechanism, after the other draws: the additive
        # universe stays the one it was.
        favour_draw = rng.random((3, n))
        if year < 2016:
            continue

        valid = (announced >= year - 2) & (revoked < announced)
        due = (announced == year - 3) & (revoked < announced)
        f = committee.facts(panel, valid_inv, valid_ip, firms, year)
        sme_fail = f["oversized"] | f["group_large"]
        favours = np.stack([
            np.where(firms.group_backing & f["group_large"],
                     committee.SME_PENALTY + FAVOUR["subsidiary"], 0.0),
            pushed * push_size * FAVOUR["provincial"] * interference[firms.province],
            state * FAVOUR["state_ties"],
            firms.connections * FAVOUR["lenient"],
            np.where(firms.size_waiver & f["oversized"] & ~f["group_large"]
                     & (f["emp"] < OVERSIZE_LIMIT),
                     committee.SME_PENALTY + FAVOUR["oversized"], 0.0),
        ]).astype(F32)
        lg_before = (lg_first < year).astype(F32)
        score = np.stack([
            committee.specialized_merit(f, firms, guangdong) - committee.SME_PENALTY * sme_fail,
            committee.little_giant_merit(f, firms) - committee.SME_PENALTY * sme_fail,
            committee.champion_merit(f, lg_before, year),
        ])
        merit = score + noise
        champ_favours = favours * np.array([0, 0.15, 0.25, 0.1, 0], F32)[:, None]
        tier_favours = (favours, favours, champ_favours)

        def decide(tier, score_, noise_, eligible, group, quota_, favours_=tier_favours,
                   draw=favour_draw):
            return _decide(score_, noise_, NOISE[tier], favours_[tier], eligible, group,
                           quota_, mechanism, draw[tier], SEPARATE_SHARE[tier])

        for tier in (SPEC, LG, CHAMP):
            struck = valid[tier] & (violation[tier] | (~f["obs"] & silent[tier]))
            log.append((np.flatnonzero(struck), tier, year, REVOKED, 0))
            revoked[tier, struck] = year
            if due[tier].any():
                keep = LG_KEEP.get(year, KEEP_DEFAULT[tier]) if tier == LG else KEEP_DEFAULT[tier]
                reviewed = due[tier]
                k = round(keep * int(reviewed.sum()))
                kept, channel, p_sel, p_non, _ = decide(
                    tier, merit[tier] - noise[tier], review_noise[tier], reviewed & f["obs"],
                    np.zeros(n, np.int16), np.array([k]))
                log.append((np.flatnonzero(kept), tier, year, RENEWED, channel[kept],
                            p_sel[kept], p_non[kept]))
                log.append((np.flatnonzero(reviewed & ~kept), tier, year, REVOKED, 0))
                announced[tier, kept] = year
                revoked[tier, reviewed & ~kept] = year

        held_top = valid[CHAMP] | valid[LG]
        new_champ = np.zeros(n, bool)
        if year in quota[CHAMP]:
            eligible = f["obs"] & ~valid[CHAMP] & ~due[CHAMP]
            new_champ, *decision = decide(CHAMP, score[CHAMP], noise[CHAMP], eligible,
                                          np.zeros(n, np.int16), np.array([quota[CHAMP][year]]))
            _grant(log, candidates, announced, new_champ, decision, CHAMP, year)
        if year in quota[LG]:
            eligible = (f["obs"] & valid[SPEC] & ~held_top & ~due[LG] & ~due[CHAMP]
                        & ~new_champ)
            chosen, *decision = decide(LG, score[LG], noise[LG], eligible,
                                       np.zeros(n, np.int16), np.array([quota[LG][year]]))
            _grant(log, candidates, announced, chosen, decision, LG, year)
            lg_first = np.where(chosen, np.minimum(lg_first, year), lg_first).astype(np.int16)
        if year in quota[SPEC]:
            eligible = (f["obs"] & ~valid[SPEC] & ~held_top & ~due.any(axis=0) & ~new_champ)
            per_prov = np.bincount(firms.province[eligible], minlength=n_prov)
            prov_quota = _largest_remainder(per_prov, quota[SPEC][year])
            chosen, *decision = decide(SPEC, score[SPEC], noise[SPEC], eligible, firms.province,
                                       prov_quota)
            _grant(log, candidates, announced, chosen, decision, SPEC, year)

        holds = (announced == year) | ((announced >= year - 2) & (revoked < announced))
        level = np.where(holds[CHAMP], 3, np.where(holds[LG], 2, np.where(holds[SPEC], 1, 0)))
        title[:, year - first_year] = level

    events = _collect(log, batches, title)
    events.candidates = _collect_candidates(candidates)
    return events


def _grant(log, candidates, announced, chosen, decision, tier, year) -> None:
    """Log a list's grants and its eligible firms' true p_selected and p_no_province (the
    firms _decide gave a probability); decision = (channel, p_selected, p_non_merit,
    p_no_province) of _decide."""
    log.append((np.flatnonzero(chosen), tier, year, GRANTED,
                *(values[chosen] for values in decision[:3])))
    eligible = np.flatnonzero(~np.isnan(decision[1]))
    candidates.append((eligible, tier, year, decision[1][eligible], decision[3][eligible]))
    announced[tier, chosen] = year


def _collect_candidates(parts: list[tuple]) -> Candidates:
    """One Candidates of the (firm indices, tier, year, p_selected, p_no_province) logged
    by _grant."""
    firm = [f.astype(np.int32) for f, *_ in parts]
    sizes = [len(f) for f in firm]
    cols = {"firm": np.concatenate(firm) if firm else np.empty(0, np.int32),
            "tier": np.repeat(np.array([t for _, t, *_ in parts], np.int8), sizes),
            "year": np.repeat(np.array([y for _, _, y, *_ in parts], np.int16), sizes),
            "p_selected": np.concatenate([p for *_, p, _ in parts]) if parts else np.empty(0),
            "p_no_province": np.concatenate([p for *_, p in parts]) if parts
            else np.empty(0)}
    order = np.lexsort((cols["firm"], cols["tier"], cols["year"]))
    return Candidates(**{k: v[order] for k, v in cols.items()})


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``weights`` (Hamilton method)."""
    if weights.sum() == 0:
        return np.zeros_like(weights)
    exact = weights / weights.sum() * min(total, int(weights.sum()))
    base = np.floor(exact).astype(np.int64)
    short = round(float(exact.sum())) - int(base.sum())
    base[np.argsort(-(exact - base), kind="stable")[:short]] += 1
    return base


def _collect(log, batches, title) -> Events:
    parts = {k: [] for k in ("firm", "tier", "year", "event", "channel", "batch",
                             "p_selected", "p_non_merit")}
    for firm, tier, year, event, channel, *truth in log:
        m = len(firm)
        if m == 0:
            continue
        parts["firm"].append(firm.astype(np.int32))
        parts["tier"].append(np.full(m, tier, np.int8))
        parts["year"].append(np.full(m, year, np.int16))
        parts["event"].append(np.full(m, event, np.int8))
        parts["channel"].append(np.broadcast_to(np.asarray(channel, np.int8), (m,)).copy())
        number = batches[tier].get(year, np.nan) if event == GRANTED else np.nan
        parts["batch"].append(np.full(m, number, np.float64))
        p_sel, p_non = truth if truth else (np.nan, np.nan)
        parts["p_selected"].append(np.broadcast_to(np.asarray(p_sel, np.float64), (m,)).copy())
        parts["p_non_merit"].append(np.broadcast_to(np.asarray(p_non, np.float64), (m,)).copy())
    dtypes = {"firm": np.int32, "tier": np.int8, "year": np.int16, "event": np.int8,
              "channel": np.int8, "batch": np.float64, "p_selected": np.float64,
              "p_non_merit": np.float64}
    cols = {k: np.concatenate(v) if v else np.empty(0, dtypes[k]) for k, v in parts.items()}
    order = np.lexsort((cols["firm"], cols["event"], cols["tier"], cols["year"]))
    return Events(title=title, **{k: v[order] for k, v in cols.items()})
