"""Selection audit of one tier: which certified firm-years look anomalous, and who was
overlooked.

Two LightGBM models per tier, both scored out of fold (models/audit_oof.py):
- the MERIT model sees only what the published criteria of the tier's rulebooks in force
  read (the firm's financials, IP, sector flags) and the tier's own rule results, each
  constrained in the direction its bar rewards (merit_directions); no ownership, state
  share, parent group, listing, subsidies, province or region;
- the FULL model sees every feature, so it learns whatever else the lists reward.

The full model learns the non-merit pattern itself, so a firm picked for its connections
gets a high full-model probability: its own probability is a poor anomaly signal. The
anomaly score therefore combines
- merit gap: how deep the firm ranks on merit among that year's candidates, in units of
  the year's number of selections (rank / quota; > 1 means merit alone would not have
  picked it);
- non-merit share: the share of the full model's positive SHAP attribution that comes
  from ownership and region features;
- SHAP isolation: how unusual its full-model SHAP profile is among the tier's certified
  firm-years (isolation forest);
- rule shortfalls: weak performance and failed R&D/IP criteria; and, as disqualifying, the
  two size breaches (own size or a large parent group above the SME limits).
The soft parts are rank percentiles among the tier's certified firm-years, weighted a
priori (WEIGHTS); a disqualifying breach adds 1, so such selections rank first. That blend
is the ranking (``anomaly_score``).

Beside it, ``p_non_merit``: the posterior, from a model of how the list is filled by a merit
channel and a non-merit channel (models/audit_channels.py), that the selection would not
have happened on merit alone (empty for a tier with fewer than
audit_channels.MIN_SELECTIONS selections). It does not order the anomalies: on the
generated universes measured it finds the non-merit selections better than the blend on
every modelled tier but the Little Giants of one seed, and as well on the Specialized lists
of another (README). The flags explain the score. No weight or threshold is fitted to any
record of which selections were irregular.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from features.rules import feature_directions, rulebook_in_force
from models import audit_flags as af
from models.audit_channels import MIN_SELECTIONS, ChannelAudit, fit_channels
from models.audit_oof import AuditFold, cross_fit, merit_rank, quota_expected
from models.explain import (
    NON_MERIT_PILLARS,
    feature_pillar,
    fold_rule_columns,
    non_merit_features,
    positive_share,
    prerequisite_features,
    rule_criterion,
)
from models.reasons import reason_codes
from models.selection_channels import STRUCTURES

WEIGHTS = {"merit_gap": 0.5, "non_merit_share": 0.2, "shap_isolation": 0.1,
           "rule_shortfalls": 0.2}
SOFT_SHORTFALLS = ("weak_performance", "fails_rd_or_ip")
DISQUALIFYING = af.DISQUALIFYING
LOW_MERIT_DEPTH = 2.0          # ranks beyond twice the year's number of selections
NON_MERIT_SHARE_FLAG = 0.25    # a quarter or more of the push from ownership or region
SAMPLE_SIZE = 1_000            # candidates whose SHAP values feed the global plots
# Title history that no criterion asks for, and industry identity beyond the sector
# criteria: kept out of the merit model.
MERIT_EXCLUDED = frozenset({
    "title_level", "years_held_specialized", "years_held_little_giant", "years_held_champion",
    "renewals_passed", "ever_revoked", "industry_section", "industry_division",
    "industry_group",
})
# The merit model: small trees, every split chosen on the data (no random thresholds: few
# features, and the direction of each is known), a slower rate.
MERIT_PARAMS = {"num_leaves": 4, "extra_trees": False, "learning_rate": 0.05,
                "monotone_constraints_method": "advanced"}
FLAG_COLUMNS = (*af.SHORTFALL_FLAGS, "low_merit_probability", "non_merit_attribution_share")
# Each structure's out-of-fold posterior, whichever the held-out likelihood kept: columns of
# the certified rows (not of anomalies.csv), for the evaluation against a synthetic truth.
POSTERIOR_COLUMNS = {structure: f"{structure}_posterior" for structure in STRUCTURES}


def merit_columns(columns) -> list[str]:
    """The columns the merit model may use: no ownership or region, no extra history."""
    return [c for c in columns
            if c not in MERIT_EXCLUDED and feature_pillar(c) not in NON_MERIT_PILLARS]


def merit_directions(columns, tier: str, years) -> dict[str, int]:
    """The merit model's columns, each with the direction it is constrained to (+1, -1, or
    0 for none): the features the published criteria of ``tier``'s rulebooks in force over
    ``years`` read, in the direction their bars reward, and the tier's own rule results
    (passing a criterion never counts against a firm). Out of fold, a small monotone model
    of what the committee is told to weigh ranks merit better than one free to use every
    performance feature (README, the audit's table)."""
    allowed = merit_columns(columns)
    books = {rb.id: rb for rb in (rulebook_in_force(tier, int(y)) for y in set(years))}
    read = feature_directions(books.values())
    out = {c: read[c] for c in allowed if c in read}
    out.update({c: 1 for c in allowed if (criterion := rule_criterion(c)) is not None
                and criterion.tier == tier})
    return out


@dataclass
class TierAudit:
    """certified: one row per certified firm-year (positions of the panel as index), with
    flags, components, anomaly_score and reasons; overlooked: high-merit candidates not
    selected; candidates: every scored candidate (firm_id, year, province, ownership,
    p_merit, p_full, expected_merit, selected); X / contributions_*: features and SHAP values
    of the rows explained (certified, a sample of candidates, overlooked); channels: the
    two-channel model (None when the tier falls back to the merit gap, ``fallback`` says
    why)."""

    tier: str
    certified: pd.DataFrame
    overlooked: pd.DataFrame
    candidates: pd.DataFrame
    X: pd.DataFrame
    contributions_full: pd.DataFrame
    contributions_merit: pd.DataFrame
    folds: list[AuditFold]
    merit_features: list[str]
    channels: ChannelAudit | None = None
    fallback: str = ""


def _percentile(values: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return np.zeros(0)
    return pd.Series(values).rank(pct=True, method="average").to_numpy()


def shap_isolation(contributions: pd.DataFrame, seed: int) -> np.ndarray:
    """Isolation-forest outlyingness (higher = more unusual) of each row's SHAP profile."""
    values = contributions.drop(columns=["bias"], errors="ignore").to_numpy(dtype=float)
    if len(values) < 10:
        return np.zeros(len(values))
    forest = IsolationForest(n_estimators=200, random_state=seed).fit(values)
    return -forest.score_samples(values)


def anomaly_components(merit_depth: np.ndarray, non_merit_share: np.ndarray,
                       isolation: np.ndarray, flags: pd.DataFrame) -> pd.DataFrame:
    """The weighted parts of the anomaly score (one row per certified firm-year)."""
    soft = flags[list(SOFT_SHORTFALLS)].sum(axis=1).to_numpy(dtype=float) / len(SOFT_SHORTFALLS)
    parts = pd.DataFrame({
        "merit_gap": WEIGHTS["merit_gap"] * _percentile(np.log(merit_depth)),
        "non_merit_share": WEIGHTS["non_merit_share"] * _percentile(non_merit_share),
        "shap_isolation": WEIGHTS["shap_isolation"] * _percentile(isolation),
        "rule_shortfalls": WEIGHTS["rule_shortfalls"] * soft,
        "disqualifying": flags[list(DISQUALIFYING)].max(axis=1).to_numpy(dtype=float),
    }, index=flags.index)
    return parts


def audit_tier(panel, tier: str, seed: int = 0, progress: Callable[[str], None] | None = None,
               sample_size: int = SAMPLE_SIZE, params: dict | None = None) -> TierAudit:
    """Audit every certified firm-year of `panel` (a features.pipeline.Panel of the tier's
    labelled years, e.g. from stack_panels)."""
    say = progress or (lambda message: None)
    X = panel.X.reset_index(drop=True)
    keys = panel.keys.reset_index(drop=True)
    y = np.asarray(panel.y, dtype=float)
    years = keys["year"].to_numpy()
    X_full = X  # the pipeline's frame, lens rule results included
    directions = merit_directions(X_full.columns, tier, years)
    merit = list(directions)
    X_merit = X_full[merit]
    merit_params = {**MERIT_PARAMS, **(params or {}),
                    "monotone_constraints": [directions[c] for c in merit]}

    rng = np.random.default_rng(seed)
    unselected = np.flatnonzero(y != 1)
    sample = np.zeros(len(y), dtype=bool)
    sample[rng.choice(unselected, size=min(sample_size, len(unselected)), replace=False)] = True

    def overlooked_rows(test: np.ndarray, p: np.ndarray) -> np.ndarray:
        rank = pd.Series(p).rank(ascending=False, method="min").to_numpy()
        return test[(rank <= y[test].sum()) & (y[test] != 1)]

    # Selections breaking the SME size rule are no example of merit: the merit model does
    # not learn from them (the full model does).
    breaches = af.shortfall_flags(X_full, tier, None)[list(DISQUALIFYING)].max(axis=1)
    merit_drop = (y == 1) & (breaches.to_numpy() == 1)
    say(f"{tier}: out-of-fold merit and full models")
    cf = cross_fit(X_merit, X_full, y, years, seed=seed, explain_rows=overlooked_rows,
                   sample=sample, progress=lambda m: say(f"{tier}: {m}"), params=params,
                   merit_drop=merit_drop, merit_params=merit_params)
    scored = cf.scheme != ""
    rank = merit_rank(np.where(scored, cf.p_merit, -np.inf), years).astype("int64")
    per_year = pd.DataFrame({"year": years, "y": y, "scored": scored})
    quota = per_year["year"].map(per_year.groupby("year")["y"].sum()).to_numpy().astype("int64")
    candidates_n = per_year["year"].map(per_year.groupby("year").size()).to_numpy()
    province = X["province"].astype(object).where(X["province"].notna(), "unknown") \
        .astype(str).to_numpy() if "province" in X else np.full(len(X), "unknown")
    ownership = af.ownership_class(X)

    say(f"{tier}: scoring the certified firm-years")
    pos = np.flatnonzero((y == 1) & scored)
    X_cert = X_full.iloc[pos]
    # Each selection is judged by the rulebook in force in its year, evaluated once.
    verdicts = af.assessments_in_force(X_cert, years[pos], tier)
    rd_ip = af.rd_ip_failures(verdicts, len(pos))
    failed = af.failed_criteria(verdicts, len(pos))
    rulebook_ids = np.empty(len(pos), dtype=object)
    for rows, verdict in verdicts.values():
        rulebook_ids[rows] = verdict.rulebook.id
    flags = af.shortfall_flags(X_cert, tier, rd_ip)
    full_c = cf.contributions_full.loc[pos]
    merit_c = cf.contributions_merit.loc[pos]
    share = positive_share(full_c, non_merit_features(X_full.columns),
                           exclude=prerequisite_features(X_full.columns)).to_numpy()
    depth = rank[pos] / np.maximum(quota[pos], 1)
    isolation = shap_isolation(full_c, seed)
    flags["low_merit_probability"] = (depth > LOW_MERIT_DEPTH).astype("int64")
    flags["non_merit_attribution_share"] = (share >= NON_MERIT_SHARE_FLAG).astype("int64")
    parts = anomaly_components(depth, share, isolation, flags)
    channels, fallback = None, ""
    if int(y[scored].sum()) >= MIN_SELECTIONS:
        say(f"{tier}: merit and non-merit channels")
        channels = fit_channels(X_full, cf.p_merit, y, years, cf.folds, scored, tier, seed)
    # The ranking stays on the blend: the two-channel posterior beats it on every modelled
    # tier of the generated universes measured but the Little Giants of seed 11 (level on
    # the Specialized lists of seed 13; README, the audit's table); the posterior is
    # reported beside it.
    score = parts.sum(axis=1).to_numpy()
    if channels is not None:
        p_non_merit = channels.p_non_merit[pos]
    else:
        fallback = (f"{int(y[scored].sum())} selections scored, fewer than the "
                    f"{MIN_SELECTIONS} (among candidates holding the title the list requires) "
                    "the channel model needs")
        p_non_merit = np.full(len(pos), np.nan)
    say(f"{tier}: flags and reasons of the certified firm-years")
    details = pd.DataFrame({"merit_rank": rank[pos], "candidates": candidates_n[pos],
                            "quota": quota[pos], "non_merit_share": share})
    X_cert_idx = X_cert.set_axis(pd.RangeIndex(len(pos)))
    texts = af.flag_texts(X_cert_idx, flags.reset_index(drop=True), rd_ip, details,
                          rulebook_ids)
    drivers = _reasons_in_force(X_cert, _drivers(full_c), verdicts, "for")
    shortfalls = _reasons_in_force(X_merit.iloc[pos], merit_c, verdicts, "against")
    certified = pd.DataFrame({
        "firm_id": keys["firm_id"].to_numpy()[pos], "year": years[pos], "tier": tier,
        "anomaly_score": score, "p_non_merit": p_non_merit,
        **{column: channels.by_structure[s][pos] if channels is not None
           else np.full(len(pos), np.nan) for s, column in POSTERIOR_COLUMNS.items()},
        **{c: flags[c].to_numpy() for c in FLAG_COLUMNS},
        "falls_short": flags[list(af.SHORTFALL_FLAGS)].max(axis=1).to_numpy(),
        "merit_probability": cf.p_merit[pos], "merit_rank": rank[pos],
        "candidates": candidates_n[pos], "quota": quota[pos], "merit_depth": depth,
        "full_probability": cf.p_full[pos], "non_merit_share": share,
        "shap_isolation": isolation,
        "rulebook": rulebook_ids,
        "failed_criteria": ["; ".join(f) for f in failed],
        "rule_failures": [len(f) for f in failed],
        **{f"part_{c}": parts[c].to_numpy() for c in parts.columns},
        "oof_scheme": cf.scheme[pos], "province": province[pos], "ownership": ownership[pos],
        "reasons": texts, "reasons_for": drivers, "reasons_against": shortfalls,
    }, index=pd.Index(pos, name="row"))
    certified = certified.sort_values("anomaly_score", ascending=False, kind="stable")

    say(f"{tier}: overlooked candidates")
    look = np.flatnonzero(scored & (y != 1) & (rank <= quota))
    merit_look = cf.contributions_merit.loc[look]
    look_verdicts = af.assessments_in_force(X_full.iloc[look], years[look], tier)
    overlooked = pd.DataFrame({
        "firm_id": keys["firm_id"].to_numpy()[look], "year": years[look], "tier": tier,
        "merit_probability": cf.p_merit[look], "merit_rank": rank[look],
        "quota": quota[look], "candidates": candidates_n[look],
        "full_probability": cf.p_full[look], "province": province[look],
        "ownership": ownership[look], "oof_scheme": cf.scheme[look],
        "reasons_for": _reasons_in_force(X_merit.iloc[look], _drivers(merit_look),
                                         look_verdicts, "for"),
    }, index=pd.Index(look, name="row")).sort_values(["year", "merit_rank"], kind="stable")

    rows = np.flatnonzero(scored)
    candidates = pd.DataFrame({
        "firm_id": keys["firm_id"].to_numpy()[rows], "year": years[rows], "tier": tier,
        "province": province[rows], "ownership": ownership[rows],
        "p_merit": cf.p_merit[rows], "p_full": cf.p_full[rows],
        "expected_merit": quota_expected(cf.p_merit[rows], years[rows], y[rows]),
        "selected": (y[rows] == 1).astype("int64"),
    })
    explained = cf.contributions_full.index.union(cf.contributions_merit.index)
    return TierAudit(tier, certified, overlooked, candidates, X_full.loc[explained],
                     cf.contributions_full, cf.contributions_merit, cf.folds, merit,
                     channels, fallback)


def _drivers(contributions: pd.DataFrame) -> pd.DataFrame:
    """SHAP values worth naming as reasons: rule results folded onto their feature, and no
    prerequisite titles (they push every candidate on the list alike)."""
    folded = fold_rule_columns(contributions)
    return folded.drop(columns=prerequisite_features(folded.columns), errors="ignore")


def _reasons_in_force(X: pd.DataFrame, contributions: pd.DataFrame, verdicts: dict,
                      side: str) -> np.ndarray:
    """Reasons ``side`` ("for" / "against") of the rows of X, each year's rows quoting the
    rulebook in force that year (``verdicts`` from audit_flags.assessments_in_force)."""
    out = np.full(len(X), "", dtype=object)
    for rows, verdict in verdicts.values():
        # The rows of a year are that year's candidates: each firm is placed among them.
        Xy = X.iloc[rows]
        reasons = reason_codes(Xy, contributions.iloc[rows], n=3, assessment=verdict, cohort=Xy)
        out[rows] = reasons[f"reasons_{side}"].to_numpy(dtype=object)
    return out


def disparity(candidates: pd.DataFrame, by: str) -> pd.DataFrame:
    """Observed selections against those expected from merit, per group of `by`.

    Columns: group, candidates, observed, expected, ratio (observed / expected) and z
    ((observed - expected) / sqrt(expected), a Poisson-style gap).
    """
    table = candidates.groupby(by, observed=True).agg(
        candidates=("selected", "size"), observed=("selected", "sum"),
        expected=("expected_merit", "sum")).reset_index().rename(columns={by: "group"})
    table["ratio"] = table["observed"] / table["expected"].where(table["expected"] > 0)
    table["z"] = (table["observed"] - table["expected"]) / np.sqrt(
        table["expected"].where(table["expected"] > 0))
    return table.sort_values("expected", ascending=False, ignore_index=True)
