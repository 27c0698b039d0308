"""`giantwatch audit`: audit every certified firm-year, write the ranked anomalies, the
overlooked candidates and a one-page HTML report, and track the run in MLflow.

    result = run_audit("data/demo", "out/audit")
    result.anomalies          # every certified firm-year, most anomalous first
    result.truth_evaluation   # when the dataset has truth.parquet (the synthetic universe)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score

from features.atomic import CSV_ENCODING, move_folder_into_place
from features.domain import TIERS, labelled_years, reviewed_years
from features.identity import firm_identity
from models.audit import FLAG_COLUMNS, POSTERIOR_COLUMNS, TierAudit, audit_tier
from models.audit_renewals import RENEWAL_COLUMNS, audit_renewals
from models.selection_channels import DECISIVE_Z, STRUCTURES

AUDITED_TIERS = TIERS
OUTPUT_FILES = ("anomalies.csv", "overlooked.csv", "renewals.csv", "report.html")
ANOMALY_COLUMNS = [
    "firm_id", "name", "province_en", "province_zh", "industry_code", "year", "tier",
    "anomaly_score", "p_non_merit", *FLAG_COLUMNS,
    "falls_short", "reasons",
    "reasons_for", "reasons_against", "merit_probability", "merit_rank", "candidates", "quota",
    "full_probability", "non_merit_share", "shap_isolation", "rulebook", "failed_criteria",
    "rule_failures",
    "oof_scheme",
    "province", "ownership",
]
METHODS = {
    "audit": "anomaly score (merit gap, non-merit share, SHAP isolation, rule flags)",
    "p_non_merit": "the two-channel model's posterior of the non-merit channel (tiers with "
                   "enough selections): the kept structure's, or the mean of both where the "
                   "held-out likelihood does not tell them apart",
    # Both structures' posteriors, whichever the held-out likelihood kept: whether it kept
    # the one that ranks better (docs/AUDIT_EVALUATION.md, "Which structure's posterior ranks").
    **{column: f"p_non_merit of the {structure} structure (fitted out of fold whichever "
               "structure was kept)" for structure, column in POSTERIOR_COLUMNS.items()},
    "oracle": "the generator's true p_non_merit (the best achievable ranking)",
    "rule_violations": "baseline: count of failed criteria of the rulebook in force, on data",
    "low_oof_probability": "baseline: 1 - full-model out-of-fold probability",
}


class AuditProblem(Exception):
    """The data cannot support an audit (e.g. no tier with two labelled years)."""


@dataclass
class AuditResult:
    out_dir: Path
    anomalies: pd.DataFrame
    overlooked: pd.DataFrame
    truth_evaluation: pd.DataFrame | None
    report_path: Path
    run_id: str
    experiment: str
    tiers: dict[str, TierAudit] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    # Spearman correlations of the recovered province effects with the generator's realised
    # province effect and its interference (province_effect_agreement; only for a generated
    # universe, which has truth.parquet).
    province_agreement: pd.DataFrame | None = None
    # Every renewal at re-review, judged by the rulebook in force (models.audit_renewals).
    renewals: pd.DataFrame | None = None


def precision_at_k_ties(y_true, score, k: int) -> float:
    """Precision among the k highest scores, with ties at the cut shared out evenly.

    A score with many ties (a count of failed criteria) would otherwise borrow the order of
    whatever the rows happened to be sorted by; this is its expected value under a random
    order within the tie.
    """
    y_true = np.asarray(y_true, dtype=float)
    score = np.asarray(score, dtype=float)
    if k <= 0 or not len(score):
        return float("nan")
    k = min(k, len(score))
    cut = np.sort(score)[::-1][k - 1]
    above, tied = score > cut, score == cut
    hits = y_true[above].sum() + (k - above.sum()) * y_true[tied].mean()
    return float(hits / k)


def evaluate_against_truth(anomalies: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """How well each ranking finds the non-merit selections, per tier.

    anomalies: the audit's rows (firm_id, year, tier, anomaly_score, p_non_merit,
    rule_failures, full_probability; and, evaluated when present, separate_posterior and
    additive_posterior); truth: firm_id, tier, year, event, channel (channel !=
    "merit" = selected for another reason) and, from generators that write it,
    true_p_non_merit (the oracle). Only `granted` events are selections. Returns one row
    per tier and method (METHODS): selections, non_merit, k (= non_merit),
    average_precision, precision_at_k, base_rate, of_oracle (average_precision / the
    oracle's).
    """
    keep = ["firm_id", "tier", "year", "channel"]
    if "true_p_non_merit" in truth:
        keep.append("true_p_non_merit")
    granted = truth[truth["event"] == "granted"][keep]
    joined = anomalies.merge(granted.drop_duplicates(["firm_id", "tier", "year"]),
                             on=["firm_id", "tier", "year"], how="inner")
    scores = {"audit": joined["anomaly_score"]}
    for method in ("p_non_merit", *POSTERIOR_COLUMNS.values()):
        if method in joined and joined[method].notna().any():
            scores[method] = joined[method]
    if "true_p_non_merit" in joined:
        scores["oracle"] = joined["true_p_non_merit"]
    scores.update({"rule_violations": joined["rule_failures"],
                   "low_oof_probability": 1.0 - joined["full_probability"]})
    rows = []
    for tier, part in joined.groupby("tier", sort=False):
        label = (part["channel"] != "merit").to_numpy(dtype=int)
        k = int(label.sum())
        for method, score in scores.items():
            values = score.loc[part.index].to_numpy(dtype=float)
            if np.isnan(values).any():
                continue  # a score the tier does not have (p_non_merit of a tier not modelled)
            rows.append({
                "tier": tier, "method": method, "selections": len(part), "non_merit": k, "k": k,
                "average_precision": float(average_precision_score(label, values))
                if 0 < k < len(part) else float("nan"),
                "precision_at_k": precision_at_k_ties(label, values, k) if k else float("nan"),
                "base_rate": k / len(part) if len(part) else float("nan"),
            })
    table = pd.DataFrame(rows, columns=["tier", "method", "selections", "non_merit", "k",
                                        "average_precision", "precision_at_k", "base_rate"])
    oracle = table[table["method"] == "oracle"].set_index("tier")["average_precision"]
    table["of_oracle"] = table["average_precision"] / table["tier"].map(oracle)
    return table


def true_province_effects(truth_candidates: pd.DataFrame, firms: pd.DataFrame) -> pd.DataFrame:
    """The generator's realised province effect per tier and province: selections expected
    from the true probabilities over those expected had no province pushed its candidates
    (``true_p_no_province``; other favours and each list's cutoff as they were), minus 1 (NaN
    where no candidate had a chance) —
    the audit's province excess, measured on the truth. truth_candidates: firm_id, tier,
    year, true_p_selected, true_p_no_province; firms: firm_id, province. Returns tier,
    province (code as str), candidates, effect; empty when the truth has no
    ``true_p_no_province`` (universes generated before it)."""
    columns = ["tier", "province", "candidates", "effect"]
    if "true_p_no_province" not in truth_candidates:
        return pd.DataFrame(columns=columns)
    joined = truth_candidates.merge(firms[["firm_id", "province"]], on="firm_id", how="inner")
    joined["province"] = joined["province"].astype(str)
    sums = joined.groupby(["tier", "province"]).agg(
        candidates=("firm_id", "size"), p=("true_p_selected", "sum"),
        p0=("true_p_no_province", "sum")).reset_index()
    sums["effect"] = sums["p"] / sums["p0"] - 1
    return sums[columns]


def province_effect_agreement(audits: dict[str, TierAudit], interference: pd.Series,
                              true_effects: pd.DataFrame | None = None) -> pd.DataFrame:
    """Spearman correlations, per modelled tier, of the recovered province effects (excess
    over merit) with the generator's realised province effect (true_province_effects: what
    the interference did in this universe) and with its provincial interference (index =
    province code; the parameter behind it), and the ceiling: the realised effect's own
    correlation with the interference (how well any estimate could rank the parameter at
    this size), and a baseline: provinces ranked by their number of candidates, fewest first,
    against the realised effect (the generator gives small provinces more interference, so
    an estimate that merely favours small provinces scores this). Returns tier, provinces,
    with_true_effect, with_interference, ceiling, size_baseline."""
    rows = []
    for tier, audit in audits.items():
        if audit.channels is None:
            continue
        effects = audit.channels.province_effects.set_index("group")["excess"]
        common = effects.index.intersection(interference.index)
        if len(common) < 3:
            continue
        row = {"tier": tier, "provinces": len(common),
               "with_true_effect": float("nan"),
               "with_interference": float(spearmanr(effects[common],
                                                    interference[common])[0]),
               "ceiling": float("nan"), "size_baseline": float("nan")}
        if true_effects is not None and len(true_effects):
            of_tier = true_effects[true_effects["tier"] == tier].set_index("province")
            true = of_tier["effect"].dropna()  # a province none of whose candidates had a chance
            both = common.intersection(true.index)
            if len(both) >= 3:
                row["with_true_effect"] = float(spearmanr(effects[both], true[both])[0])
                row["ceiling"] = float(spearmanr(true[both], interference[both])[0])
                row["size_baseline"] = float(spearmanr(-of_tier["candidates"][both],
                                                       true[both])[0])
        rows.append(row)
    return pd.DataFrame(rows, columns=["tier", "provinces", "with_true_effect",
                                       "with_interference", "ceiling", "size_baseline"])


def run_audit(data_dir: str | os.PathLike, out_dir: str | os.PathLike,
              tiers: tuple[str, ...] = AUDITED_TIERS, seed: int = 0,
              progress: Callable[[str], None] | None = None, *,
              render_report: Callable[..., object]) -> AuditResult:
    """Audit the certified firm-years of `tiers` in the dataset at `data_dir`.

    Writes OUT/anomalies.csv (ranked by anomaly_score, descending), OUT/overlooked.csv and
    OUT/report.html, all or nothing, and logs them to an MLflow run named "audit".
    render_report(audits, anomalies, overlooked, evaluation, path, dataset_name=...,
    skipped=...) writes the report (serving.report.render_report: reports are the serving
    layer's, so it is passed in rather than imported here).
    """
    import mlflow

    from features.contract import load_dataset
    from features.pipeline import stack_panels
    from training.tracking import experiment_for_dataset, setup_tracking

    say = progress or (lambda message: None)
    unknown = sorted(set(tiers) - set(AUDITED_TIERS))
    if unknown:
        raise AuditProblem(f"unknown tier(s) {unknown}; choose from {', '.join(AUDITED_TIERS)}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    say("Loading and validating the dataset")
    dataset = load_dataset(data_dir)
    certs = dataset.certifications
    audits, skipped = {}, {}
    for tier in tiers:
        years = labelled_years(certs, tier)
        if len(years) < 2:
            skipped[tier] = f"grants in {len(years)} year(s); out-of-fold scoring needs 2"
            say(f"{tier}: skipped ({skipped[tier]})")
            continue
        say(f"{tier}: building as-of panels for {years[0]}-{years[-1]}")
        panel = stack_panels(dataset, years, tier)
        audits[tier] = audit_tier(panel, tier, seed=seed, progress=say)
    if not audits:
        raise AuditProblem("no tier could be audited: " + "; ".join(
            f"{t}: {why}" for t, why in skipped.items()))

    certified = pd.concat([a.certified for a in audits.values()], ignore_index=True)
    anomalies = with_identity(certified, dataset.firms)
    anomalies = anomalies.sort_values("anomaly_score", ascending=False, kind="stable",
                                      ignore_index=True)[ANOMALY_COLUMNS]
    overlooked = with_identity(pd.concat([a.overlooked for a in audits.values()],
                                          ignore_index=True), dataset.firms)
    renewals = with_identity(_renewals(dataset, tiers, say), dataset.firms)[RENEWAL_COLUMNS]
    truth_path = data_dir / "truth.parquet"
    evaluation, agreement = None, None
    if truth_path.exists():
        say("Evaluating against truth.parquet")
        # (the certified rows, which also hold each structure's posterior)
        evaluation = evaluate_against_truth(certified, pd.read_parquet(truth_path))
        candidates_path = data_dir / "truth_candidates.parquet"
        true_effects = true_province_effects(pd.read_parquet(candidates_path), dataset.firms) \
            if candidates_path.exists() else None
        agreement = province_effect_agreement(audits, generator_interference(), true_effects)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        anomalies.to_csv(tmp / "anomalies.csv", index=False, encoding=CSV_ENCODING)
        overlooked.to_csv(tmp / "overlooked.csv", index=False, encoding=CSV_ENCODING)
        renewals.to_csv(tmp / "renewals.csv", index=False, encoding=CSV_ENCODING)
        say("Rendering the report")
        render_report(audits, anomalies, overlooked, evaluation, tmp / "report.html",
                      dataset_name=data_dir.resolve().name, skipped=skipped,
                      renewals=renewals)
        setup_tracking()
        experiment = experiment_for_dataset(data_dir)
        with mlflow.start_run(run_name="audit") as run:
            _log_run(mlflow, data_dir, tiers, seed, anomalies, overlooked, evaluation, skipped)
            _log_channels(mlflow, audits, agreement)
            for tier, part in renewals.groupby("tier"):
                mlflow.log_metric(f"{tier}.renewals", len(part))
                mlflow.log_metric(f"{tier}.renewals_failing_rules",
                                  int(part["fails_rules_in_force"].sum()))
            for name in OUTPUT_FILES:
                mlflow.log_artifact(str(tmp / name), artifact_path="audit")
        move_folder_into_place(tmp, out_dir, OUTPUT_FILES)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return AuditResult(out_dir, anomalies, overlooked, evaluation, out_dir / "report.html",
                       run.info.run_id, experiment, audits, skipped, agreement, renewals)


def _renewals(dataset, tiers, say) -> pd.DataFrame:
    """Every renewal at re-review of `tiers`, judged by the rulebook in force in its year
    (models.audit_renewals.audit_renewals on the re-review panels)."""
    from features.pipeline import stack_panels

    frames = []
    for tier in tiers:
        years = reviewed_years(dataset.certifications, tier)
        if not years:
            continue
        say(f"{tier}: judging the renewals of {years[0]}-{years[-1]}")
        panel = stack_panels(dataset, years, tier, review=True)
        frames.append(audit_renewals(panel.X, panel.keys, panel.y, tier))
    columns = [c for c in RENEWAL_COLUMNS if c not in ("name", "province_en", "province_zh",
                                                        "industry_code")]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True).sort_values(
        ["fails_rules_in_force", "rule_failures"], ascending=False, kind="stable",
        ignore_index=True)


def with_identity(frame: pd.DataFrame, firms: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the firm's name, province names and industry after firm_id (the frame's
    own `province` code stays where it is)."""
    identity = firm_identity(firms, frame["firm_id"])
    out = frame.copy()
    for position, column in enumerate(["name", "province_en", "province_zh", "industry_code"],
                                      start=1):
        out.insert(position, column, identity[column].to_numpy(dtype=object))
    return out


def _log_run(mlflow, data_dir: Path, tiers, seed: int, anomalies: pd.DataFrame,
             overlooked: pd.DataFrame, evaluation: pd.DataFrame | None, skipped: dict) -> None:
    mlflow.log_params({"tiers": ",".join(tiers), "seed": seed,
                       "data_dir": str(data_dir.resolve())})
    if skipped:
        mlflow.set_tags({f"skipped.{t}": why for t, why in skipped.items()})
    for tier, part in anomalies.groupby("tier"):
        mlflow.log_metric(f"{tier}.certified", len(part))
        mlflow.log_metric(f"{tier}.falls_short_share", float(part["falls_short"].mean()))
        for flag in FLAG_COLUMNS:
            mlflow.log_metric(f"{tier}.{flag}", int(part[flag].sum()))
    for tier, part in overlooked.groupby("tier"):
        mlflow.log_metric(f"{tier}.overlooked", len(part))
    if evaluation is not None:
        for row in evaluation.itertuples(index=False):
            for metric in ("average_precision", "precision_at_k"):
                value = getattr(row, metric)
                if np.isfinite(value):
                    mlflow.log_metric(f"truth.{row.tier}.{row.method}.{metric}", float(value))


def generator_interference() -> pd.Series:
    """The built-in generator's provincial interference by province code (what the
    province effects of a generated universe should recover)."""
    from training.synthetic.firms import load_reference

    provinces = load_reference().provinces
    return pd.Series(provinces["interference"].to_numpy(dtype=float),
                     index=provinces["province"].astype(str).to_numpy())


STRUCTURE_CHOICES_TITLE = ("How each list was filled: the two structures' held-out "
                           f"log-likelihood per candidate, Vuong's z (|z| >= {DECISIVE_Z} "
                           "tells them apart) and where p_non_merit comes from")


def structure_choices(audits: dict[str, TierAudit]) -> pd.DataFrame:
    """Per modelled tier: the held-out log-likelihood per candidate of each structure,
    Vuong's z (positive: separate channels fit better), the better structure (its model
    gives the effects) and where p_non_merit comes from (that structure's posterior, or the
    mean of both where the likelihood does not tell them apart)."""
    rows = [{"tier": tier, **{f"loglik_{s}": v for s, v in a.channels.heldout_loglik.items()},
             "vuong_z": a.channels.vuong_z, "better": a.channels.structure,
             "p_non_merit": a.channels.structure if a.channels.decided
             else "mean of both structures"}
            for tier, a in audits.items() if a.channels is not None]
    return pd.DataFrame(rows, columns=["tier", *(f"loglik_{s}" for s in STRUCTURES),
                                       "vuong_z", "better", "p_non_merit"])


def _log_channels(mlflow, audits: dict[str, TierAudit],
                  agreement: pd.DataFrame | None) -> None:
    """Held-out log-likelihood of each structure, Vuong's z between them, the structure kept
    and where p_non_merit comes from, fallbacks."""
    choices = structure_choices(audits).set_index("tier")
    for tier, audit in audits.items():
        if audit.channels is None:
            mlflow.set_tag(f"{tier}.channels", f"fallback: {audit.fallback}")
            continue
        mlflow.set_tag(f"{tier}.channels", audit.channels.structure)
        mlflow.set_tag(f"{tier}.p_non_merit", choices.loc[tier, "p_non_merit"])
        mlflow.log_metric(f"{tier}.heldout_vuong_z", audit.channels.vuong_z)
        for structure, value in audit.channels.heldout_loglik.items():
            mlflow.log_metric(f"{tier}.heldout_loglik.{structure}", float(value))
    for row in ([] if agreement is None else agreement.itertuples(index=False)):
        for name in ("with_true_effect", "with_interference", "ceiling", "size_baseline"):
            if np.isfinite(getattr(row, name)):
                mlflow.log_metric(f"truth.{row.tier}.province_effect_spearman.{name}",
                                  float(getattr(row, name)))
