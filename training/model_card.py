"""The model card of a registered version: what it was trained on, how it did, what it cannot do.

Markdown, set as the description of each registered model version (MLflow's registry UI
renders it) and logged as `model_card.md` in the tier's run. The fold and metric tables are
the ones `giantwatch train` prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.evaluate import Evaluation

# Below this many selections in a test year, a fold's PR AUC and precision@k swing with one or
# two firms: the card and `train` say so.
FEW_SELECTIONS = 10
MODEL_LABELS = {"lightgbm": "LightGBM", "logistic": "Logistic regression",
                "rules": "Rulebook in force"}
# Metric, label, how to print it, and whether higher is better.
METRICS = (
    ("pr_auc", "PR AUC", "{:.3f}", True),
    ("roc_auc", "ROC AUC", "{:.3f}", True),
    ("precision_at_k", "Precision@k", "{:.1%}", True),
    ("brier", "Brier score", "{:.4f}", False),
    ("ece", "Calibration error (ECE)", "{:.2%}", False),
)


@dataclass
class CardFacts:
    """Everything a card states about one registered version."""

    tier: str
    registered_name: str
    version: str
    data_fingerprint: str
    labelled_years: list[int]
    rows: int
    selected: int
    feature_pipeline_version: str
    giantwatch_version: str
    evaluation: Evaluation
    importance: pd.DataFrame  # feature, gain (models.lgbm.TierModel.feature_importance)
    review: bool = False  # a re-review model (training.review): rows are titles up for review
    sampling: str = ""  # training.sampling.CaseControl.describe() of a selection model


def fold_table(evaluation: Evaluation) -> pd.DataFrame:
    """One row per walk-forward fold: test year, training years, rows and selections in the
    test year, and LightGBM's PR AUC and precision@k there."""
    rows = evaluation.metrics.query("model == 'lightgbm' and test_year != 'mean'")
    return pd.DataFrame({
        "test year": rows["test_year"].astype(int).to_numpy(),
        "trained on": rows["train_years"].to_numpy(),
        "firms tested": rows["n_test"].astype(int).to_numpy(),
        "selections": rows["n_selected"].astype(int).to_numpy(),
        "PR AUC": rows["pr_auc"].to_numpy(),
        "precision@k": rows["precision_at_k"].to_numpy(),
    })


def thin_folds(evaluation: Evaluation) -> list[int]:
    """Test years with fewer than FEW_SELECTIONS selections."""
    folds = fold_table(evaluation)
    return folds.loc[folds["selections"] < FEW_SELECTIONS, "test year"].tolist()


def baseline_table(evaluation: Evaluation) -> pd.DataFrame:
    """Walk-forward means per metric (rows) and model (columns), numbers unformatted."""
    means = evaluation.metrics.query("test_year == 'mean'").set_index("model")
    return pd.DataFrame({MODEL_LABELS[m]: [means.loc[m, key] for key, *_ in METRICS]
                         for m in MODEL_LABELS if m in means.index},
                        index=pd.Index([label for _, label, *_ in METRICS], name="metric"))


def formatted_baselines(evaluation: Evaluation) -> pd.DataFrame:
    """baseline_table with each metric printed in its own format (percentages where they
    read better), plus which direction is better."""
    table = baseline_table(evaluation)
    out = table.copy().astype(object)
    for (_, label, fmt, _higher), (_, values) in zip(METRICS, table.iterrows()):
        out.loc[label] = [fmt.format(v) if np.isfinite(v) else "n/a" for v in values]
    out.insert(0, "better", ["higher" if higher else "lower" for *_, higher in METRICS])
    return out


def pillar_table(importance: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Features grouped by explanation pillar: count, share of split gain, strongest ones."""
    from models.explain import PILLARS, feature_pillars

    frame = importance.assign(pillar=feature_pillars(importance["feature"]).to_numpy())
    total = frame["gain"].sum() or 1.0
    rows = []
    for pillar, part in frame.groupby("pillar", sort=False):
        part = part.sort_values("gain", ascending=False)
        rows.append({"pillar": PILLARS.get(pillar, pillar), "features": len(part),
                     "gain share": part["gain"].sum() / total,
                     "strongest": ", ".join(f"`{f}`" for f in part["feature"].head(top))})
    return pd.DataFrame(rows).sort_values("gain share", ascending=False, ignore_index=True)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of already formatted cells (pandas' to_markdown
    needs the tabulate package for what is a three-line join)."""
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def model_card(facts: CardFacts) -> str:
    """The card in Markdown."""
    ev = facts.evaluation
    folds = fold_table(ev)
    shown_folds = folds.assign(**{"PR AUC": folds["PR AUC"].map("{:.3f}".format),
                                  "precision@k": folds["precision@k"].map("{:.1%}".format),
                                  "firms tested": folds["firms tested"].map("{:,}".format)})
    baselines = formatted_baselines(ev).reset_index()
    pillars = pillar_table(facts.importance)
    pillars["gain share"] = pillars["gain share"].map("{:.1%}".format)
    first, last = facts.labelled_years[0], facts.labelled_years[-1]
    thin = thin_folds(ev)
    limits = [
        ("Probabilities are calibrated to the selection rate of the newest training year "
        f"({last}); a year with another quota moves every probability, while the ranking of "
        "firms holds better. Read them as ranks within a year first."),
        ("The model learns how firms *were* selected, including region and ownership "
        "(non-merit pillars), not how they should be; `giantwatch audit` separates the two."),
        (f"Features must come from feature pipeline `{facts.feature_pipeline_version}`: "
        "`giantwatch score` refuses a version trained with another one."),
        ("Metrics are out of sample by year (each fold trains only on earlier years) but "
        f"rest on {len(folds)} test years; a single year can differ by more than the "
        "differences between models here."),
    ]
    if thin:
        limits.insert(0, f"**Few selections**: test year(s) {', '.join(map(str, thin))} "
                         f"had fewer than {FEW_SELECTIONS} selections; their PR AUC and "
                         "precision@k are noisy.")
    if facts.review:
        what = (f"Probability that a firm whose **{facts.tier}** title comes up for re-review "
                "in year *t* (granted or renewed in *t−3*) is renewed rather than revoked or "
                "left to lapse")
        rows = f"{facts.rows:,} re-reviews, {facts.selected:,} renewed"
    else:
        what = (f"Probability that a candidate firm is selected for the **{facts.tier}** tier "
                "in an as-of year *t*")
        rows = f"{facts.rows:,} candidate firm-years, {facts.selected:,} selections"
    kind = " re-review" if facts.review else ""
    return "\n".join([
        f"# {facts.registered_name} v{facts.version} — {facts.tier.replace('_', ' ')}{kind}",
        "",
        (f"{what}, from data known by the end of *t−1*. Input: the feature columns of "
        "the signature (categoricals as strings); output: `probability` in [0, 1]."),
        "",
        "## Data",
        "",
        f"- Data fingerprint `{facts.data_fingerprint}` (SHA-256 of the four contract tables)",
        f"- Labelled years {first}–{last} ({len(facts.labelled_years)} years), {rows}",
        *([f"- Training rows: {facts.sampling}"] if facts.sampling else []),
        (f"- giantwatch {facts.giantwatch_version}, feature pipeline "
        f"`{facts.feature_pipeline_version}`"),
        "",
        "## Walk-forward folds (LightGBM)",
        "",
        markdown_table(shown_folds),
        "",
        "## Against the baselines (mean over the folds)",
        "",
        markdown_table(baselines),
        "",
        "## Features by pillar",
        "",
        markdown_table(pillars),
        "",
        "## Known limits",
        "",
        *[f"- {line}" for line in limits],
        "",
    ])


def formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its metric columns (SUMMARY metric keys or fold_table's) printed in their
    own formats and named by their labels, for people (the CLI's tables)."""
    formats = {key: (label, fmt) for key, label, fmt, _ in METRICS}
    formats.update({"log_loss": ("Log loss", "{:.4f}"), "PR AUC": ("PR AUC", "{:.3f}"),
                    "precision@k": ("precision@k", "{:.1%}")})
    out = frame.copy()
    for column in frame.columns:
        if column in formats:
            label, fmt = formats[column]
            out[column] = [fmt.format(v) if pd.notna(v) and np.isfinite(v) else "n/a"
                           for v in frame[column]]
            out = out.rename(columns={column: label})
    if "model" in out.columns:
        out["model"] = out["model"].map(lambda m: MODEL_LABELS.get(m, m))
    return out
