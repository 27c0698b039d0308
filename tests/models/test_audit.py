"""The selection audit end to end on the small generated universe, plus its building blocks."""

from __future__ import annotations

import os

import mlflow
import numpy as np
import pandas as pd
import pytest

from models import audit_oof
from models.audit import POSTERIOR_COLUMNS, anomaly_components, merit_columns, merit_directions
from models.audit_flags import shortfall_flags
from models.audit_oof import LEAVE_ONE_YEAR_OUT, WALK_FORWARD, plan_folds, training_rows
from models.explain import non_merit_features
from models.selection_channels import posterior_given_choice, told_apart
from serving.report import render_report
from tests.conftest import isolated_mlflow
from training.audit_run import (
    ANOMALY_COLUMNS,
    OUTPUT_FILES,
    evaluate_against_truth,
    precision_at_k_ties,
    run_audit,
    structure_choices,
)

TIER = "little_giant"


@pytest.fixture(scope="module")
def audited(small_universe, tmp_path_factory):
    home = tmp_path_factory.mktemp("audit")
    with isolated_mlflow(home):
        result = run_audit(small_universe, home / "out", tiers=(TIER,), seed=0,
                           render_report=render_report)
        yield {"result": result, "home": home, "data": small_universe}


def test_outputs_rank_every_certified_firm_year(audited):
    out = audited["home"] / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    anomalies = pd.read_csv(out / "anomalies.csv", dtype={"firm_id": str, "province": str})
    assert list(anomalies.columns) == ANOMALY_COLUMNS
    certs = pd.read_parquet(audited["data"] / "certifications.parquet")
    granted = certs[(certs["tier"] == TIER) & (certs["event"] == "granted")]
    granted_keys = set(zip(granted["firm_id"], granted["year"]))
    keys = list(zip(anomalies["firm_id"], anomalies["year"]))
    assert len(set(keys)) == len(keys)
    assert set(keys) <= granted_keys
    assert len(keys) >= 0.9 * len(granted_keys)  # the rest lack financials for t-1
    assert anomalies["anomaly_score"].is_monotonic_decreasing
    for flag in ("exceeds_sme_size", "weak_performance", "subsidiary_of_large_group",
                 "fails_rd_or_ip", "low_merit_probability", "non_merit_attribution_share"):
        assert set(anomalies[flag].unique()) <= {0, 1}
    flagged = anomalies[anomalies["subsidiary_of_large_group"] == 1]
    assert flagged["reasons"].str.contains("subsidiary of a large group").all()
    assert anomalies["reasons_against"].fillna("").str.len().gt(0).mean() > 0.9


def test_every_probability_is_out_of_fold(audited):
    audit = audited["result"].tiers[TIER]
    for fold in audit.folds:
        assert fold.test_year not in fold.train_years
        if fold.scheme == WALK_FORWARD:
            assert max(fold.train_years) < fold.test_year
    schemes = audit.certified.groupby("year")["oof_scheme"].unique()
    first = min(schemes.index)
    assert list(schemes[first]) == [LEAVE_ONE_YEAR_OUT]  # no history before the first list
    assert list(schemes[max(schemes.index)]) == [WALK_FORWARD]
    assert audit.candidates["p_merit"].notna().all()


def test_plan_folds_uses_history_where_there_is_enough():
    years = np.repeat([2019, 2020, 2021, 2022], 100)
    labels = np.zeros(len(years))
    labels[[0, 1, 100, 101, 200, *range(300, 340)]] = 1  # 2, 2, 1, 40 selections
    folds = {f.test_year: f for f in plan_folds(years, labels)}
    assert folds[2019].scheme == LEAVE_ONE_YEAR_OUT and 2019 not in folds[2019].train_years
    assert folds[2021].scheme == LEAVE_ONE_YEAR_OUT  # two earlier years but 4 selections
    labels[range(110, 150)] = 1
    folds = {f.test_year: f for f in plan_folds(years, labels)}
    assert folds[2021].scheme == WALK_FORWARD and folds[2021].train_years == (2019, 2020)


def test_training_rows_keep_every_selection_and_cap_the_others_per_year(monkeypatch):
    monkeypatch.setattr(audit_oof, "MIN_NEGATIVES_PER_YEAR", 10)
    monkeypatch.setattr(audit_oof, "MAX_NEGATIVES_PER_YEAR", 300)
    years = np.repeat([2020, 2021, 2022], [400, 2_000, 5_000])
    y = np.zeros(len(years))
    y[:2] = 1             # 2020: 2 selections -> 40 others (20 per selection)
    y[400:420] = 1        # 2021: 20 selections -> 400 wanted, capped at 300
    y[2_400:2_700] = 1    # 2022: 300 selections -> capped at 300, every selection kept
    rows = training_rows(y, years, years < 2023, seed=0)
    assert len(np.unique(rows)) == len(rows)
    kept = pd.DataFrame({"year": years[rows], "y": y[rows]})
    assert kept[kept["y"] == 1].groupby("year").size().to_dict() == {2020: 2, 2021: 20,
                                                                     2022: 300}
    assert kept[kept["y"] == 0].groupby("year").size().to_dict() == {2020: 40, 2021: 300,
                                                                     2022: 300}
    # A year under the cap draws exactly as without one (same rows, same seed).
    monkeypatch.setattr(audit_oof, "MAX_NEGATIVES_PER_YEAR", 10**9)
    uncapped = training_rows(y, years, years == 2020, seed=0)
    assert np.array_equal(uncapped, training_rows(y, years, years == 2020, seed=0))
    assert np.array_equal(uncapped, rows[years[rows] == 2020])


def test_merit_model_sees_no_ownership_or_region(audited):
    merit = set(audited["result"].tiers[TIER].merit_features)
    assert not merit & set(non_merit_features(merit | {"province", "state_share"}))
    for banned in ("province", "macro_region", "state_share", "state_controlled",
                   "is_subsidiary", "parent_employees", "parent_large_group", "listed",
                   "listed_board", "subsidies_to_revenue"):
        assert banned not in merit
    assert {"rd_intensity", "main_share", "class1_ip", "rule_lg22_main_share"} <= merit
    assert merit_columns(["province", "rd_intensity", "years_held_little_giant"]) == [
        "rd_intensity"]


def test_the_merit_model_reads_what_the_criteria_read_in_their_direction():
    columns = ["province", "state_share", "rd_intensity", "debt_ratio", "revenue",
               "export_share", "rule_lg22_main_share", "rule_sp22_rd_intensity",
               "years_held_little_giant"]
    directions = merit_directions(columns, "little_giant", [2021, 2023])
    # Only what a Little Giant criterion reads, and the tier's own rule results; the
    # direction a bar rewards (revenue: bands both from and below, so free).
    assert directions == {"rd_intensity": 1, "debt_ratio": -1, "revenue": 0,
                          "rule_lg22_main_share": 1}


def test_audit_finds_non_merit_selections_better_than_both_baselines(audited):
    evaluation = audited["result"].truth_evaluation.set_index(["tier", "method"])
    ap = evaluation["average_precision"]
    assert ap[(TIER, "audit")] > ap[(TIER, "rule_violations")]
    assert ap[(TIER, "audit")] > ap[(TIER, "low_oof_probability")]
    assert ap[(TIER, "audit")] > evaluation.loc[(TIER, "audit"), "base_rate"] * 1.5


def test_the_non_merit_posterior_is_reported_beside_the_ranking(audited):
    result = audited["result"]
    audit = result.tiers[TIER]
    channels = audit.channels
    assert channels is not None  # enough Little Giant selections to model
    assert set(channels.heldout_loglik) == {"separate", "additive"}
    assert channels.structure == max(channels.heldout_loglik, key=channels.heldout_loglik.get)
    # The kept structure's posterior where the likelihood tells the structures apart, else
    # the mean of both.
    np.testing.assert_array_equal(channels.p_non_merit, posterior_given_choice(
        channels.by_structure, channels.structure, channels.vuong_z))
    rows = result.anomalies[result.anomalies["tier"] == TIER]
    assert rows["p_non_merit"].between(0, 1).all()
    # The ranking is the blend, sorted; the posterior stands beside it.
    assert rows["anomaly_score"].is_monotonic_decreasing
    assert not np.array_equal(rows["anomaly_score"], rows["p_non_merit"])
    # A selection breaking a published eligibility rule was not made on merit.
    breach = (rows["exceeds_sme_size"] == 1) | (rows["subsidiary_of_large_group"] == 1)
    assert (rows.loc[breach, "p_non_merit"] == 1).all()
    for effects in (channels.province_effects, channels.ownership_effects):
        assert (effects["low"] <= effects["high"]).all()
        assert effects["candidates"].gt(0).all()
    assert set(channels.ownership_effects["group"]) <= {"state-controlled", "subsidiary",
                                                        "independent"}
    evaluation = result.truth_evaluation.set_index(["tier", "method"])
    assert evaluation.loc[(TIER, "oracle"), "of_oracle"] == pytest.approx(1.0)
    assert {"audit", "p_non_merit", "oracle"} <= set(evaluation.loc[TIER].index)
    # Both structures' posteriors are evaluated beside p_non_merit.
    ap = evaluation["average_precision"]
    assert {(TIER, column) for column in POSTERIOR_COLUMNS.values()} <= set(ap.index)
    if channels.decided:
        assert ap[(TIER, POSTERIOR_COLUMNS[channels.structure])] == ap[(TIER, "p_non_merit")]
    assert not set(POSTERIOR_COLUMNS.values()) & set(result.anomalies)  # CSV unchanged
    agreement = result.province_agreement.set_index("tier").loc[TIER]
    for name in ("with_true_effect", "with_interference", "ceiling", "size_baseline"):
        assert -1 <= agreement[name] <= 1


def test_channel_section_names_the_structure_and_effects(audited):
    from serving.report import _channel_section

    audit = audited["result"].tiers[TIER]
    text = "".join(_channel_section(audit))
    assert "Held-out log-likelihood" in text and "data:image/png;base64," in text
    assert f"Vuong's z {audit.channels.vuong_z:+.2f}" in text
    assert "selections exceed what merit predicts" in text or "No province" in text


@pytest.mark.parametrize("z", [3.1, -0.4])
def test_channel_section_says_whether_the_data_chose_a_structure(audited, z):
    """Told apart, the kept structure's posterior; within chance, the mean of both, and
    the effects named as the better fit's: the words follow the channel audit's values."""
    from dataclasses import replace

    from serving.report import _channel_section

    audit = audited["result"].tiers[TIER]
    channels = replace(audit.channels, vuong_z=z)
    assert channels.decided == told_apart(z)
    text = "".join(_channel_section(replace(audit, channels=channels)))
    assert f"Vuong's z {z:+.2f}" in text
    if channels.decided:
        assert "The data chose" in text and "mean of the two structures' posteriors" not in text
    else:
        assert "The data chose" not in text
        assert "mean of the two structures' posteriors" in text
        assert f"come from the {channels.structure} structure, the better fit" in text


@pytest.mark.parametrize("against", ["merit", "list share"])
def test_province_sentences_table_and_plot_name_what_the_effect_is_counted_against(audited,
                                                                                  against):
    """A provincial list's effects are counted against the list's average unexplained
    share, a national list's against merit: every province sentence and the province
    table's header say which, from the one value the channel audit carries."""
    import html
    import re
    from dataclasses import replace

    from models.audit_channels import AGAINST_LIST_SHARE, AGAINST_MERIT
    from serving.report import _channel_section
    from serving.report_summary import AGAINST_WORDS

    assert {AGAINST_MERIT, AGAINST_LIST_SHARE} == set(AGAINST_WORDS) and against in AGAINST_WORDS
    audit = audited["result"].tiers[TIER]
    effects = audit.channels.province_effects.copy()
    effects["excess"] = np.linspace(0.3, -0.3, len(effects))  # every interval clear of 0
    effects["low"], effects["high"] = effects["excess"] - 0.05, effects["excess"] + 0.05
    channels = replace(audit.channels, province_effects=effects, province_reference=against)
    text = "".join(_channel_section(replace(audit, channels=channels)))
    sentences = re.findall(r"<li>(In [^<]*)</li>", text)
    assert sentences
    other = next(a for a in AGAINST_WORDS if a != against)
    for sentence in sentences:
        assert html.escape(AGAINST_WORDS[against][0]) in sentence
        assert html.escape(AGAINST_WORDS[other][0]) not in sentence
    assert html.escape(AGAINST_WORDS[against][1]) in text
    assert ("filled province by province" in text) == (against == AGAINST_LIST_SHARE)


def test_overlooked_are_unselected_high_merit_candidates(audited):
    result = audited["result"]
    overlooked = result.overlooked
    assert len(overlooked)
    assert (overlooked["merit_rank"] <= overlooked["quota"]).all()
    selected = set(zip(result.anomalies["firm_id"], result.anomalies["year"]))
    assert not selected & set(zip(overlooked["firm_id"], overlooked["year"]))


def test_the_audit_tables_are_documented(audited):
    from tests.outputs_doc import documented

    result = audited["result"]
    assert set(result.anomalies.columns) == documented("anomalies.csv")
    assert set(result.overlooked.columns) == documented("overlooked.csv")
    assert set(result.renewals.columns) == documented("renewals.csv")


def test_renewals_failing_the_criteria_in_force_are_flagged_in_the_report(audited):
    """Every renewal of the audited tier is judged by the rulebook in force in its year;
    the failing ones are marked, re-evaluated here, and named in the report."""
    from features.domain import due_for_review
    from features.pipeline import build_features
    from features.rules import assess, rulebook_in_force

    result, out = audited["result"], audited["home"] / "out"
    renewals = pd.read_csv(out / "renewals.csv", dtype={"firm_id": str})
    assert list(renewals.columns) == list(result.renewals.columns)
    assert set(renewals["tier"]) == {TIER} and len(renewals) > 10
    certs = pd.read_parquet(audited["data"] / "certifications.parquet")
    renewed = certs[(certs["tier"] == TIER) & (certs["event"] == "renewed")]
    assert set(zip(renewals["firm_id"], renewals["year"])) <= \
        set(zip(renewed["firm_id"], renewed["year"]))
    failing = renewals[renewals["fails_rules_in_force"] == 1]
    assert 0 < len(failing) < len(renewals)
    assert (failing["rule_failures"] > 0).all()
    assert (renewals.loc[renewals["fails_rules_in_force"] == 0, "rule_failures"] == 0).all()
    from features.contract import load_dataset

    dataset = load_dataset(audited["data"])
    for row in failing.head(5).itertuples():
        assert bool(due_for_review(certs, row.year, TIER)[row.firm_id])
        verdict = assess(build_features(dataset, row.year, firm_ids=[row.firm_id]),
                         rulebook_in_force(TIER, row.year))
        assert verdict.rulebook.id == row.rulebook
        assert set(row.failed_criteria.split("; ")) <= set(verdict.failed[0])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="renewals"' in page and "Renewals that fail the criteria in force" in page
    assert f"{len(failing):,} of {len(renewals):,} renewals" in page
    assert failing["firm_id"].iloc[0] in page


def test_run_is_tracked_in_mlflow(audited):
    result = audited["result"]
    client = mlflow.MlflowClient(os.environ.get("MLFLOW_TRACKING_URI")
                                 or f"sqlite:///{audited['home'] / 'mlflow.db'}")
    run = client.get_run(result.run_id)
    assert run.info.run_name == "audit"
    assert run.data.metrics[f"truth.{TIER}.audit.average_precision"] == pytest.approx(
        result.truth_evaluation.query("method == 'audit'")["average_precision"].iloc[0])
    assert run.data.tags[f"{TIER}.channels"] in ("separate", "additive")
    assert f"{TIER}.heldout_loglik.separate" in run.data.metrics
    assert f"{TIER}.heldout_loglik.additive" in run.data.metrics
    channels = result.tiers[TIER].channels
    assert run.data.metrics[f"{TIER}.heldout_vuong_z"] == pytest.approx(channels.vuong_z)
    assert run.data.tags[f"{TIER}.p_non_merit"] == (
        channels.structure if channels.decided else "mean of both structures")
    # The table `giantwatch audit` prints says the same.
    choice = structure_choices(result.tiers).set_index("tier").loc[TIER]
    assert choice["vuong_z"] == pytest.approx(channels.vuong_z)
    assert choice["p_non_merit"] == run.data.tags[f"{TIER}.p_non_merit"]
    assert choice["better"] == channels.structure
    assert choice["loglik_separate"] == channels.heldout_loglik["separate"]
    logged = {a.path for a in client.list_artifacts(result.run_id, "audit")}
    assert logged == {f"audit/{name}" for name in OUTPUT_FILES}


def test_a_failure_leaves_no_partial_output(audited, tmp_path, monkeypatch):
    import training.audit_run

    audit = audited["result"].tiers[TIER]
    monkeypatch.setattr(training.audit_run, "audit_tier", lambda *a, **k: audit)

    def broken(*args, **kwargs):
        (args[4]).write_text("half a report")
        raise RuntimeError("disk full")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(RuntimeError, match="disk full"):
        run_audit(audited["data"], tmp_path / "out", tiers=(TIER,), render_report=broken)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_shortfall_flags_on_hand_made_firms():
    X = pd.DataFrame({
        "employees": [1500, 1500, 200, 200, 200],
        "revenue": [5e8, 3e8, 6e7, 6e7, 6e7],
        "is_subsidiary": [0.0, 0.0, 1.0, 1.0, 0.0],
        "parent_employees": [np.nan, np.nan, 5200, 800, np.nan],
        "parent_revenue": [np.nan, np.nan, 9e8, 9e8, np.nan],
        "revenue_growth_2y_avg": [0.1, 0.1, 0.1, -0.05, 0.1],
        "net_margin": [0.05, 0.05, 0.05, 0.05, -0.02],
    })
    flags = shortfall_flags(X, "little_giant", None)
    assert flags["exceeds_sme_size"].tolist() == [1, 0, 0, 0, 0]
    assert flags["subsidiary_of_large_group"].tolist() == [0, 0, 1, 0, 0]
    assert flags["weak_performance"].tolist() == [0, 0, 0, 1, 1]
    assert shortfall_flags(X, "champion", None)["exceeds_sme_size"].sum() == 0
    from models.audit_flags import assessments_in_force, rd_ip_failures

    X["rd_intensity"], X["rd_intensity_prev"] = [0.01, 0.05, 0.08, 0.08, 0.08], 0.05
    X["rd_institution_level"], X["class1_ip"] = 1.0, [3.0, 3.0, 3.0, 0.0, 3.0]
    # 2024's lists: the 2022 rulebook is in force.
    verdicts = assessments_in_force(X, np.full(len(X), 2024), "little_giant")
    assert {v.rulebook.id for _, v in verdicts.values()} == {"little_giant_2022"}
    rd = shortfall_flags(X, "little_giant", rd_ip_failures(verdicts, len(X)))["fails_rd_or_ip"]
    assert rd.tolist() == [1, 0, 0, 1, 0]


def test_breaches_rank_first_and_parts_are_bounded():
    flags = pd.DataFrame({"exceeds_sme_size": [0, 0, 1], "weak_performance": [1, 0, 0],
                          "subsidiary_of_large_group": [0, 0, 0], "fails_rd_or_ip": [1, 0, 0]})
    parts = anomaly_components(np.array([10.0, 0.5, 0.2]), np.array([0.2, 0.0, 0.0]),
                               np.array([0.6, 0.4, 0.5]), flags)
    score = parts.sum(axis=1)
    assert score.idxmax() == 2 and score[0] > score[1]
    assert parts.drop(columns="disqualifying").sum(axis=1).max() <= 1.0


def test_evaluate_against_truth_and_tie_aware_precision():
    anomalies = pd.DataFrame({
        "firm_id": list("abcd"), "year": 2024, "tier": "little_giant",
        "anomaly_score": [0.9, 0.8, 0.1, 0.0], "rule_failures": [1, 1, 1, 0],
        "full_probability": [0.9, 0.2, 0.5, 0.6]})
    truth = pd.DataFrame({"firm_id": list("abcde"), "tier": "little_giant", "year": 2024,
                          "event": ["granted"] * 4 + ["renewed"],
                          "channel": ["provincial", "subsidiary", "merit", "merit", "lenient"]})
    table = evaluate_against_truth(anomalies, truth).set_index("method")
    assert table.loc["audit", "average_precision"] == pytest.approx(1.0)
    assert table.loc["audit", "precision_at_k"] == pytest.approx(1.0)
    assert table.loc["rule_violations", "precision_at_k"] == pytest.approx(2 / 3)
    assert table.loc["audit", "k"] == 2 and table.loc["audit", "selections"] == 4
    assert precision_at_k_ties([1, 0, 0, 1], [2, 1, 1, 0], 2) == pytest.approx(0.5)
