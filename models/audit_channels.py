"""The audit's model of how selections happen (models/selection_channels.py), fitted out of
fold on a tier's stacked panel.

The merit part sees the out-of-fold merit model's log-odds (a monotone model of the
published criteria; models/audit.py), on a national list nothing else. On a list filled
province by province (Specialized SMEs: thousands of selections) it sees them through a
monotone piecewise-linear link (hinges at MERIT_KNOTS), and whether the firm breaks a
published eligibility rule (the SME size, a large parent group: af.DISQUALIFYING), bounded
to lower the chance: the merit model does not read parent groups, so without the flag the
candidates no merit can select (many of them state-controlled) are read as favours that
failed, and the state's favour comes out near 0. The firm's merit depth, its failed
criteria and shortfalls are functions of the same facts, and each measured worse as a
second merit column (docs/AUDIT_EVALUATION.md). The non-merit part sees only the ownership
and region features (ownership, parent group, state share, listing, subsidies, province),
each bounded to raise the chance (favours only add; a province's effect is counted from the
least-favoured province). Independence is the zero point of every ownership column (no
parent: parent sizes 0), so taking firms as independent (as_independent) removes exactly
what the state and a parent add and no ownership effect can be negative. The additive
structure leaves UNEXPLAINED_SHARE of the selections to favours no feature shows
(models/selection_channels.py). Only candidates holding the title
a list requires are fitted (neither channel selects anyone else). A selection breaking a
published eligibility rule gets p_non_merit 1. Both structures are fitted per fold on the
fold's training years and score the fold's test year, and they are compared by their
held-out log-likelihood (both fitted without the unexplained share, which the likelihood
cannot size). Where it tells them apart (Vuong's test, models/selection_channels.py), the
better one gives every selection its ``p_non_merit``; where it does not, ``p_non_merit`` is
the mean of both posteriors: on the four additive universes measured the likelihood kept
separate channels on three by less than chance, and their posterior ranked the non-merit
selections well below the committee's on two (docs/AUDIT_EVALUATION.md). One more fit of
the better structure on every labelled year gives the province and ownership effects, with
Poisson-bootstrap intervals.

On a national list a province's effect is what its province column adds. On a list with
provincial quotas (Specialized SMEs) a province cannot raise its count, only fill its places
below the merit line: its column measures the bar its own candidates set (Guangdong's pass
mark is higher), so there it is a merit column, free in sign, not a favour. Its effect is
its own share of the selections no feature explains (province_unexplained,
province_effects: a province's push picks firms the data cannot tell apart), read from an
additive committee's unexplained route whichever structure gives p_non_merit (one with a
straight merit link and the province among the favours, the design its prior was chosen
with; fit_channels).

A tier with fewer than MIN_SELECTIONS selections is not modelled (the audit falls back to
the merit-gap score and says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logit

from features.domain import PROVINCIAL_LIST_TIERS
from models import audit_flags as af
from models.audit_oof import AuditFold
from models.explain import non_merit_features, rule_criterion
from models.selection_channels import (
    STRUCTURES,
    TwoChannelSelection,
    bootstrap_excess,
    loglik_rows,
    posterior_given_choice,
    told_apart,
    vuong_z,
)

MIN_SELECTIONS = 200
NEGATIVES_PER_SELECTION = 15   # non-selected rows kept per selection, reweighted
MAX_SELECTIONS = 1_500         # selections kept per fit, reweighted
N_BOOT = 30
ALPHA = 1.0  # ridge penalty of both parts (models.selection_channels)
LEVEL = 0.9
# Redundant with province (macro_region) or with listed (the board name).
CHANNEL_EXCLUDED = frozenset({"macro_region", "listed_board"})
# The merit part's link: hinges of the merit model's log-odds at these quantiles of the
# candidates' (denser at the top, where the selections are). The log-odds are on no fixed
# scale against the committee's (the merit model is fitted on sampled candidates, and on the
# default universe's Specialized lists its top twentieth is selected at 0.30, not the 0.35
# a straight line gives, while the middle rises faster than the line): a straight line
# there also mis-sizes every favour. Chosen on the default universe (docs/AUDIT_EVALUATION.md).
MERIT_KNOTS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
DISQUALIFIED = "disqualified"
# A tenth of the selections carried by favours no feature shows: the likelihood does not
# identify it (it prefers none, which makes a selection far below the merit line with no
# visible favour a merit selection). Chosen on the default universe among 0.05-0.3
# (docs/AUDIT_EVALUATION.md); MERICS found about one in four selections falling short of
# the criteria, a bound.
UNEXPLAINED_SHARE = 0.1
# What an independent firm looks like in the non-merit features (the ownership
# counterfactual): every ownership column at its zero point, the least-favoured value
# (channel_design gives a firm without a parent parent sizes 0), so the counterfactual
# removes exactly what the state and the parent add and, every coefficient being bounded
# to raise the chance, cannot raise it; listing and subsidies are left as they are.
INDEPENDENT = {"state_share": 0.0, "state_controlled": 0.0, "is_subsidiary": 0.0,
               "parent_large_group": 0.0, "parent_employees": 0.0, "parent_revenue": 0.0}
NO_PROVINCE = "(none)"
# There a province's push is read from the selections its features do not explain (which
# firms it pushed is not in the data): each province gets its own unexplained share, pulled
# towards the list's by this many pseudo-candidates (random-effect shrinkage: a province of
# a few hundred candidates is mostly noise). Chosen on the default universe among 0, 20, 50
# and 200 (docs/AUDIT_EVALUATION.md).
PROVINCE_PRIOR = 50.0
# What a province's effect is counted against: the model's chance with the province's effect
# removed ("merit"), or, on a list filled province by province, with the list's average
# share of unexplained selections in place of the province's own ("list share"). The
# report's words, table headers and plot axes follow this value.
AGAINST_MERIT = "merit"
AGAINST_LIST_SHARE = "list share"


@dataclass
class ChannelAudit:
    """p_non_merit: (n,) out-of-fold posterior per row of the panel (NaN where unscored):
    the kept structure's where the held-out likelihood tells the structures apart
    (``decided``), else the mean of both structures' (``by_structure``); structure: the
    structure with the better held-out log-likelihood (its model gives the effects);
    heldout_loglik: {structure: mean held-out log-likelihood per candidate}; vuong_z:
    Vuong's statistic of separate against additive on those candidates (positive when
    separate channels fit better; ``decided``: told_apart(vuong_z)); model: the
    structure fitted on every labelled year;
    province_effects / ownership_effects: group, candidates, excess, low, high (excess =
    selections expected / expected without the group's effect - 1; LEVEL interval);
    province_reference: what the province effects are counted against (AGAINST_MERIT or,
    on a provincial list, AGAINST_LIST_SHARE)."""

    p_non_merit: np.ndarray
    structure: str
    heldout_loglik: dict[str, float]
    model: TwoChannelSelection
    province_effects: pd.DataFrame
    ownership_effects: pd.DataFrame
    fold_structures: list[str] = field(default_factory=list)
    by_structure: dict[str, np.ndarray] = field(default_factory=dict)
    province_reference: str = AGAINST_MERIT
    vuong_z: float = 0.0

    @property
    def decided(self) -> bool:
        """Whether the held-out likelihood tells the structures apart (told_apart)."""
        return told_apart(self.vuong_z)


def merit_design(p_merit: np.ndarray, knots=(), disqualified: np.ndarray | None = None,
                 province: np.ndarray | None = None) -> pd.DataFrame:
    """(n, columns): the merit model's log-odds ``l``, its hinges min(l - k, 0) and
    max(l - k, 0) at each of ``knots`` (log-odds values), the 0/1 ``disqualified`` flag (a
    published eligibility rule broken) and the ``province`` (a provincial list's bar), the
    last two when given. merit_signs gives each column's direction."""
    log_odds = logit(np.clip(p_merit, 1e-6, 1 - 1e-6))
    columns = {"merit_log_odds": log_odds}
    for j, knot in enumerate(knots):
        columns[f"merit_below_{j}"] = np.minimum(log_odds - knot, 0.0)
        columns[f"merit_above_{j}"] = np.maximum(log_odds - knot, 0.0)
    if disqualified is not None:
        columns[DISQUALIFIED] = np.asarray(disqualified, dtype=float)
    if province is not None:
        columns["province"] = np.asarray(province)
    return pd.DataFrame(columns)


def merit_signs(XM: pd.DataFrame) -> dict[str, int]:
    """The direction of each merit column: the log-odds and every hinge raise the chance (so
    the link is monotone: each segment's slope is a sum of non-negative coefficients), a
    broken eligibility rule lowers it, a province's bar is free."""
    return {c: -1 if c == DISQUALIFIED else 1 for c in XM.columns if c != "province"}


def merit_knots(p_merit: np.ndarray, quantiles=MERIT_KNOTS) -> np.ndarray:
    """The knots of the merit link: ``quantiles`` of the candidates' merit log-odds (no
    label is read, so every fold may share them)."""
    return np.quantile(logit(np.clip(p_merit, 1e-6, 1 - 1e-6)), quantiles)


def channel_design(X: pd.DataFrame) -> pd.DataFrame:
    """(n, q): the ownership and region features, parent sizes on a log scale (log1p) and 0
    for a firm without a parent (independence is the zero point of every ownership column;
    a subsidiary's unknown parent size stays missing), province as a category."""
    columns = [c for c in non_merit_features(X.columns) if c not in CHANNEL_EXCLUDED]
    Z = X[columns].reset_index(drop=True).copy()
    no_parent = (Z["is_subsidiary"] == 0).to_numpy() if "is_subsidiary" in Z \
        else np.zeros(len(Z), dtype=bool)
    for column in ("parent_employees", "parent_revenue"):
        if column in Z:
            Z[column] = np.log1p(Z[column].astype(float).clip(lower=0)).where(~no_parent, 0.0)
    if "province" in Z:
        Z["province"] = Z["province"].astype(object).where(Z["province"].notna(), "unknown") \
            .astype(str)
    return Z


def as_independent(Z: pd.DataFrame) -> pd.DataFrame:
    """Z (channel_design's columns) with every firm taken as independent (INDEPENDENT):
    the ownership counterfactual."""
    return Z.assign(**{c: v for c, v in INDEPENDENT.items() if c in Z})


def _rule_columns(X: pd.DataFrame, tier: str, status: bool) -> list[str]:
    """The panel's rule-result columns of ``tier``'s own criteria, status or not."""
    return [c for c in X.columns if (criterion := rule_criterion(c)) is not None
            and criterion.tier == tier and (criterion.pillar == "status") == status]


def status_eligible(X: pd.DataFrame, tier: str) -> np.ndarray:
    """(n,) bool: rows that pass every status criterion the panel's rule results carry (the
    title a list requires, e.g. a Little Giant must hold the Specialized title). Neither
    channel can select a firm without it, so the model is fitted on these rows only."""
    columns = _rule_columns(X, tier, status=True)
    if not columns:
        return np.ones(len(X), dtype=bool)
    values = X[columns].to_numpy(dtype=float)
    return ((values == 1) | np.isnan(values)).all(axis=1)


def year_offset(y: np.ndarray, years: np.ndarray) -> np.ndarray:
    """(n,) log-odds of each row's year's selection share (the list's size is known)."""
    frame = pd.DataFrame({"y": y, "year": years})
    share = frame["year"].map(frame.groupby("year")["y"].mean()).to_numpy()
    return logit(np.clip(share, 1e-6, 1 - 1e-6))


def training_sample(y: np.ndarray, rows: np.ndarray, seed: int) -> tuple[np.ndarray,
                                                                        np.ndarray]:
    """(positions, weights): up to MAX_SELECTIONS selections of ``rows`` and
    NEGATIVES_PER_SELECTION others per selection kept, each weighted by the inverse of its
    sampling rate so probabilities keep their scale (the GLMs need no more rows, and the
    bootstrap refits many times)."""
    rng = np.random.default_rng(seed)
    positions, weights = [], []
    positives = rows[y[rows] == 1]
    kept = min(len(positives), MAX_SELECTIONS)
    for group, size in ((positives, kept),
                        (rows[y[rows] != 1], NEGATIVES_PER_SELECTION * max(kept, 1))):
        size = min(len(group), size)
        positions.append(np.sort(rng.choice(group, size=size, replace=False)))
        weights.append(np.full(size, len(group) / max(size, 1)))
    return np.concatenate(positions), np.concatenate(weights)


def fit_channels(X: pd.DataFrame, p_merit: np.ndarray, y: np.ndarray, years: np.ndarray,
                 folds: list[AuditFold], scored: np.ndarray, tier: str, seed: int = 0,
                 n_boot: int = N_BOOT) -> ChannelAudit | None:
    """Fit the two-channel model out of fold over the panel rows (X: (n, features),
    p_merit: (n,) out-of-fold merit probabilities, y: (n,) 0/1, years: (n,), scored: (n,)
    bool rows with an out-of-fold score); only rows passing the status criteria
    (status_eligible) are fitted and scored; None when they hold fewer than
    MIN_SELECTIONS selections."""
    # A selection that breaks a published eligibility rule (the title a list requires, the
    # SME size, subsidiary of a large group) cannot have been made on merit: p_non_merit 1.
    disqualified = (af.shortfall_flags(X, tier, None)[list(af.DISQUALIFYING)].max(axis=1)
                    .to_numpy() == 1)
    eligible = status_eligible(X, tier)
    breach = (disqualified | ~eligible) & (y == 1) & scored
    scored = scored & eligible
    if int(y[scored].sum()) < MIN_SELECTIONS:
        return None
    n = len(y)
    Z = design = channel_design(X)  # (design: with the province, for the province effects)
    province = Z["province"].to_numpy() if "province" in Z else np.full(n, "unknown")
    quota = tier in PROVINCIAL_LIST_TIERS
    if quota:
        # The province is the list's bar, a merit column (module docstring).
        XM = merit_design(p_merit, merit_knots(p_merit[scored]), disqualified,
                          province if "province" in Z else None)
        Z = Z.drop(columns=["province"], errors="ignore")
    else:
        # A national list keeps the straight line and no breach column: with them the
        # held-out log-likelihood of the default universe's Little Giants fell (-0.2071
        # against -0.2058), and on seed 11 and the separate mechanism the hinges' top
        # segments, fitted on a few dozen candidates, extrapolated badly (-0.268 against
        # -0.212, -0.283 against -0.249; docs/AUDIT_EVALUATION.md).
        XM = merit_design(p_merit)
    signs = (merit_signs(XM), {column: 1 for column in Z.columns})
    offset = year_offset(y, years)
    p_non = {s: np.full(n, np.nan) for s in STRUCTURES}
    row_loglik = {s: np.full(n, np.nan) for s in STRUCTURES}  # held-out, per candidate
    fold_structures = []
    for k, fold in enumerate(folds):
        train = np.flatnonzero(scored & np.isin(years, fold.train_years))
        test = np.flatnonzero(scored & (years == fold.test_year))
        if not len(test) or not y[train].sum():
            continue
        rows, weights = training_sample(y, train, seed + k)
        fold_ll = {}
        for structure in STRUCTURES:
            # The structures are compared as the likelihood fits them (no unexplained
            # share: the likelihood cannot size it); the posterior then adds it.
            fit = (XM.iloc[rows], Z.iloc[rows], y[rows], offset[rows], weights)
            model = _model(structure, signs, 0.0).fit(*fit)
            row_loglik[structure][test] = loglik_rows(y[test], model.predict_proba(
                XM.iloc[test], Z.iloc[test], offset[test])[:, 1])
            fold_ll[structure] = row_loglik[structure][test].sum()
            if structure == "additive":
                model = _model(structure, signs).fit(*fit)
            p_non[structure][test] = model.p_non_merit(XM.iloc[test], Z.iloc[test],
                                                       offset[test])
        fold_structures.append(max(fold_ll, key=fold_ll.get))
    held = ~np.isnan(row_loglik[STRUCTURES[0]])
    heldout = {s: float(row_loglik[s][held].mean()) if held.any() else 0.0 for s in STRUCTURES}
    structure = max(heldout, key=heldout.get)
    z = vuong_z(*(row_loglik[s][held] for s in STRUCTURES))

    everything = np.flatnonzero(scored)
    rows, weights = training_sample(y, everything, seed)
    model = _model(structure, signs).fit(XM.iloc[rows], Z.iloc[rows], y[rows],
                                                 offset[rows], weights)
    # Effects over every scored candidate, refits on the sample (bootstrap weights on top).
    ownership = af.ownership_class(X)
    counterfactuals = {"ownership": (as_independent(Z), ownership)}
    if not quota:
        counterfactuals["province"] = (Z.assign(province=NO_PROVINCE) if "province" in Z
                                       else Z, province)
    effects = _effects(model, XM, Z, y, offset, counterfactuals, rows, weights, everything,
                       n_boot, seed)
    if quota:
        # The unexplained route a province's push is read from is an additive committee's
        # (separate channels have none: every province would read 0), whichever structure
        # gives p_non_merit; that committee keeps the design its prior was chosen with (a
        # straight merit link, no breach column, the province as a favour column):
        # read from the committee above, the effects' rank correlation with the realised
        # effect fell from 0.61 to 0.44 on the default universe (docs/AUDIT_EVALUATION.md).
        XP, ZP = merit_design(p_merit), design
        committee = _model("additive", (merit_signs(XP), {c: 1 for c in ZP.columns})).fit(
            XP.iloc[rows], ZP.iloc[rows], y[rows], offset[rows], weights)
        effects["province"] = province_effects(
            committee, XP.iloc[everything], ZP.iloc[everything], y[everything],
            offset[everything], province[everything], n_boot, seed)
    for values in p_non.values():
        values[breach] = 1.0
    return ChannelAudit(posterior_given_choice(p_non, structure, z), structure, heldout, model,
                        effects["province"], effects["ownership"], fold_structures, p_non,
                        AGAINST_LIST_SHARE if quota else AGAINST_MERIT, z)


def _model(structure: str, signs: tuple[dict, dict],
           unexplained_share: float = UNEXPLAINED_SHARE) -> TwoChannelSelection:
    """signs: the merit part's and the non-merit part's column directions."""
    return TwoChannelSelection(structure, merit_signs=signs[0], channel_signs=signs[1],
                               alpha=ALPHA, max_iter=60, tol=1e-6,
                               unexplained_share=unexplained_share)


def _effects(model, XM, Z, y, offset, counterfactuals, rows, weights, everything, n_boot,
             seed) -> dict[str, pd.DataFrame]:
    """bootstrap_excess on the training sample, the excess counted over the sample's rows
    weighted by their inverse sampling rate (so they stand for every candidate);
    candidates = the group's scored candidates."""
    tables = bootstrap_excess(
        model, XM.iloc[rows], Z.iloc[rows], y[rows],
        {name: (Z_cf.iloc[rows], np.asarray(by)[rows])
         for name, (Z_cf, by) in counterfactuals.items()},
        offset[rows], weights, n_boot=n_boot, level=LEVEL, seed=seed)
    out = {}
    for name, table in tables.items():
        counts = pd.Series(np.asarray(counterfactuals[name][1])[everything]).value_counts()
        table["candidates"] = table["group"].map(counts).fillna(0).astype("int64")
        out[name] = table.sort_values("excess", ascending=False, ignore_index=True)
    return out


def province_unexplained(q: np.ndarray, y: np.ndarray, group: np.ndarray, u0: float,
                         prior: float = 0.0, weight: np.ndarray | None = None,
                         max_iter: int = 500, tol: float = 1e-9) -> pd.Series:
    """Per group (province), the probability ``u_g`` that a favour no feature shows carries a
    candidate, ``P = 1 - (1 - q) (1 - u_g)``, by EM over that latent route (a selection's
    posterior of it is ``u_g / P``), with ``prior`` pseudo-candidates at ``u0`` (the list's
    share) in each group. q: (n,) chance without that route (the committee's); y: (n,) 0/1;
    group: (n,); weight: (n,) row weights (bootstrap). Returns u_g indexed by group."""
    codes, groups = pd.factorize(np.asarray(group))
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
    size = np.bincount(codes, weights=w, minlength=len(groups))
    u = np.full(len(groups), u0, dtype=float)
    for _ in range(max_iter):
        route = u[codes]
        posterior = np.where(y == 1, route / np.maximum(1 - (1 - q) * (1 - route), 1e-12), 0.0)
        updated = (np.bincount(codes, weights=w * posterior, minlength=len(groups))
                   + prior * u0) / (size + prior)
        if np.max(np.abs(updated - u)) < tol:
            u = updated
            break
        u = updated
    return pd.Series(u, index=groups)


def province_effects(model: TwoChannelSelection, XM: pd.DataFrame, Z: pd.DataFrame,
                     y: np.ndarray, offset: np.ndarray, province: np.ndarray,
                     n_boot: int = N_BOOT, seed: int = 0,
                     prior: float = PROVINCE_PRIOR) -> pd.DataFrame:
    """A quota list's province effects (``model``: an additive committee with an unexplained
    route, ``unexplained_`` > 0): selections expected per province over those
    expected without its favours, minus 1, where its favours are its own share of the
    selections no feature explains (province_unexplained with ``prior``) and without them it
    has the list's (the candidate-weighted mean over provinces: the smallest would be a
    noisy reference, a small province's share); the fitted model otherwise as it is. Over every scored candidate (rows of XM, Z: (n, .); y, offset, province: (n,)).
    Interval: LEVEL quantiles over n_boot Poisson-bootstrap reweightings of the candidates
    (the count noise given the fitted committee; its coefficients are not refitted).
    Returns group, candidates, excess, low, high, most favoured first."""
    u0 = float(getattr(model, "unexplained_", 0.0))
    if model.structure_ != "additive" or u0 <= 0:
        # u = 0 is a fixed point of the EM: every province would read 0.
        raise ValueError("province_effects needs an additive committee with an unexplained "
                         f"route (got {model.structure_}, unexplained_={u0})")

    # The committee's chance, without the list's unexplained route (P = 1 - (1 - q)(1 - u0)).
    q = 1 - (1 - model.predict_proba(XM, Z, offset)[:, 1]) / (1 - u0)
    codes, groups = pd.factorize(np.asarray(province))

    def excess(weight):
        u = province_unexplained(q, y, province, u0, prior, weight).reindex(groups).to_numpy()
        with_effect = 1 - (1 - q) * (1 - u[codes])
        without = 1 - (1 - q) * (1 - np.average(u[codes], weights=weight))
        return (np.bincount(codes, weights=weight * with_effect, minlength=len(groups))
                / np.bincount(codes, weights=weight * without, minlength=len(groups)) - 1)

    point = excess(np.ones(len(y)))
    rng = np.random.default_rng(seed)
    draws = np.array([excess(rng.poisson(1.0, len(y)).astype(float)) for _ in range(n_boot)])
    tail = (1 - LEVEL) / 2
    table = pd.DataFrame({
        "group": groups, "candidates": np.bincount(codes, minlength=len(groups)),
        "excess": point,
        "low": np.nanquantile(draws, tail, axis=0) if n_boot else point,
        "high": np.nanquantile(draws, 1 - tail, axis=0) if n_boot else point})
    return table.sort_values("excess", ascending=False, ignore_index=True)
