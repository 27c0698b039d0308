"""Batch scoring on the small generated universe, with models trained into a throwaway store.

`trained_store` trains every tier once per test session (the other serving test modules
import it); the fixtures point MLFLOW_TRACKING_URI at that store while a module runs.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.contract import ContractError, load_dataset
from features.panel import candidate_panel
from features.pipeline import build_features
from models.lgbm import TierModel
from models.pyfunc import signature_frame
from serving.output import output_columns
from serving.score import TIERS, ScoringProblem, load_models, score_firms
from serving.score_file import rejects_path, score_to_file
from tests.conftest import tracking_env
from training import train as train_module

SCORE_YEAR = 2025
# Fewer labelled years and a single walk-forward fold keep training short; the models are
# still the registered production models that `giantwatch train` makes.
TRAIN_UNTIL = 2020
QUICK_ROUNDS = 60
_STORE: dict[str, str] = {}


# `giantwatch train` with boosters capped at QUICK_ROUNDS trees: the serving tests need
# registered production models of every tier, not good ones, and full boosting would
# dominate the suite's time.
QUICK_MODEL = functools.partial(TierModel, num_boost_round=QUICK_ROUNDS, early_stopping_rounds=10)


def trained_store(universe: Path, tmp_path_factory) -> str:
    """Tracking URI of a store with production models of every tier trained on `universe`,
    trained once per test session."""
    if "uri" not in _STORE:
        home = tmp_path_factory.mktemp("serving-mlflow")
        uri = f"sqlite:///{home / 'mlflow.db'}"
        with tracking_env(uri, cwd=home):
            mlflow.set_tracking_uri(uri)
            # Absolute artifact location: the models load from any working folder later.
            mlflow.create_experiment(f"giantwatch-{Path(universe).resolve().name}",
                                     artifact_location=(home / "artifacts").as_uri())
            # Forced into production: these quick models need not beat the baselines.
            train_module.train(universe, n_folds=1, until_year=TRAIN_UNTIL, seed=0,
                               model_factory=QUICK_MODEL, force_promote=True)
        _STORE["uri"] = uri
    return _STORE["uri"]


@pytest.fixture(scope="module")
def registry(small_universe, tmp_path_factory):
    with tracking_env(trained_store(small_universe, tmp_path_factory)) as uri:
        yield uri


@pytest.fixture(scope="module")
def models(registry):
    return load_models()


@pytest.fixture(scope="module")
def dataset(small_universe):
    return load_dataset(small_universe)


@pytest.fixture(scope="module")
def scored(small_universe, models, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores") / "scores.parquet"
    summary = score_to_file(small_universe, SCORE_YEAR, out, models=models, chunk_size=1_500)
    return summary, pd.read_parquet(out)


def test_one_row_per_firm_with_financials_for_the_year_before(scored, dataset):
    summary, frame = scored
    fin = dataset.financials
    expected = sorted(fin.loc[fin["year"] == SCORE_YEAR - 1, "firm_id"].unique())
    # No re-review model is trained on years up to TRAIN_UNTIL: no renewal columns.
    assert list(frame.columns) == output_columns(reviews=())
    assert frame["firm_id"].tolist() == expected
    assert (frame["year"] == SCORE_YEAR).all()
    assert summary.firms_scored == len(expected)
    for tier in TIERS:
        p = frame[f"p_{tier}"]
        assert p.dropna().between(0, 1).all()
        assert summary.candidates[tier] == p.notna().sum()


def test_only_candidates_get_a_score_and_it_is_the_registered_models_probability(
        scored, dataset, models):
    _, frame = scored
    frame = frame.set_index("firm_id")
    for tier in TIERS:
        keys, _ = candidate_panel(dataset, SCORE_YEAR, tier)
        assert set(frame.index[frame[f"p_{tier}"].notna()]) == set(keys["firm_id"])
        # the pyfunc the registry serves gives the same probabilities
        X = build_features(dataset, SCORE_YEAR, firm_ids=keys["firm_id"][:300])
        pyfunc = mlflow.pyfunc.load_model(f"models:/giantwatch-{tier}@production")
        expected = pyfunc.predict(signature_frame(X, models[tier].model))["probability"]
        np.testing.assert_allclose(frame.loc[X.index, f"p_{tier}"], expected, rtol=1e-9,
                                   atol=1e-12)


def test_candidates_have_reasons_and_eligibility(scored):
    _, frame = scored
    for tier in TIERS:
        candidate = frame[f"p_{tier}"].notna()
        eligible = frame.loc[candidate, f"eligible_{tier}"]
        assert set(eligible) <= {"pass", "fail", "unknown"}
        assert frame.loc[~candidate, f"eligible_{tier}"].isna().all()
        assert frame.loc[~candidate, f"reasons_{tier}_for"].isna().all()
        reasons = frame.loc[candidate, [f"reasons_{tier}_for", f"reasons_{tier}_against"]]
        assert (reasons.fillna("").map(len).sum(axis=1) > 0).mean() > 0.99
        failing = frame.loc[candidate & (frame[f"eligible_{tier}"] == "fail")]
        assert (failing[f"failed_{tier}"].str.len() > 0).all()
        assert (failing[f"gaps_{tier}"].str.len() > 0).any()


def test_rejects_list_firms_without_financials(scored, dataset):
    summary, frame = scored
    rejects = pd.read_csv(summary.rejects_file)
    assert summary.rejects_file == rejects_path(summary.out_file)
    missing = rejects[rejects["rule"] == "financials_for_asof_year"]
    firms = dataset.firms
    founded = firms[firms["founded_year"] < SCORE_YEAR]
    expected = set(founded["firm_id"]) - set(frame["firm_id"])
    assert len(missing) == len(expected) > 0
    assert missing["reason"].str.contains(f"fiscal year {SCORE_YEAR - 1}").all()
    assert summary.rejected == len(rejects)
    assert "Scored" in str(summary) and "rejected" in str(summary)


def test_the_summary_counts_what_the_file_holds(scored):
    summary, frame = scored
    text = str(summary)
    for tier in TIERS:
        p = frame[f"p_{tier}"]
        assert summary.expected[tier] == pytest.approx(p.sum())
        assert summary.eligible[tier] == frame[f"eligible_{tier}"].value_counts().to_dict()
        assert (f"{tier}: {p.notna().sum():,} candidates, about {p.sum():,.0f} expected "
                "selections") in text


def test_chunking_and_csv_do_not_change_the_scores(scored, dataset, models, tmp_path):
    _, frame = scored
    whole, _ = score_firms(dataset, SCORE_YEAR, models=models, chunk_size=100_000)
    assert len(frame) > 3 * 1_500, "the file is scored in more than three chunks"
    # Reasons place a firm among the year's candidates, however the firms are chunked: the
    # words are identical to the letter, shares ("higher than 80% of candidates") included.
    share = r", (?:higher|lower) than \d+% of candidates"
    for column in [c for c in frame.columns if c.startswith("reasons_")]:
        assert whole[column].fillna("").tolist() == frame[column].fillna("").tolist(), column
    assert frame["reasons_specialized_for"].str.contains(share, regex=True).any()
    pd.testing.assert_frame_equal(whole, frame, check_dtype=False, check_exact=True)
    on_file = pd.read_parquet(scored[0].out_file)
    for tier in TIERS:
        pd.testing.assert_series_equal(on_file[f"rank_{tier}"].astype("Int64"),
                                       whole[f"rank_{tier}"].astype("Int64"))
        expected = whole[f"p_{tier}"].rank(ascending=False, method="min")
        assert (whole[f"rank_{tier}"].astype(float) == expected)[expected.notna()].all()
    csv = score_to_file(dataset, SCORE_YEAR, tmp_path / "scores.csv", models=models,
                        chunk_size=4_000)
    assert csv.out_file.read_bytes().startswith("\ufeff".encode())  # Excel reads it as UTF-8
    back = pd.read_csv(csv.out_file, dtype={"firm_id": str})
    assert back["firm_id"].tolist() == frame["firm_id"].tolist()
    for tier in TIERS:
        np.testing.assert_allclose(back[f"p_{tier}"], frame[f"p_{tier}"], rtol=1e-12)
        assert back[f"eligible_{tier}"].fillna("").tolist() == \
            frame[f"eligible_{tier}"].fillna("").tolist()


def test_a_failed_run_leaves_no_partial_output(small_universe, models, tmp_path, monkeypatch):
    from serving import score

    out = tmp_path / "scores.parquet"
    out.write_bytes(b"previous run")
    calls = {"n": 0}
    real = score.score_chunk

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(score, "score_chunk", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        score_to_file(small_universe, SCORE_YEAR, out, models=models, chunk_size=1_500)
    assert out.read_bytes() == b"previous run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet"]


def test_invalid_data_is_fatal_before_anything_is_written(small_universe, models, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(small_universe, bad)
    fin = pd.read_parquet(bad / "financials.parquet")
    fin.loc[3, "revenue"] = -1.0
    fin.to_parquet(bad / "financials.parquet")
    out = tmp_path / "scores.parquet"
    with pytest.raises(ContractError, match="financials.parquet, column revenue, row 4"):
        score_to_file(bad, SCORE_YEAR, out, models=models)
    assert not out.exists() and not rejects_path(out).exists()


def test_nothing_to_score_and_bad_output_names_are_clear(dataset, models, tmp_path):
    with pytest.raises(ScoringProblem, match="no firm has financials for fiscal year 1999"):
        score_firms(dataset, 2000, models=models)
    with pytest.raises(ScoringProblem, match=r"\.parquet or \.csv"):
        score_to_file(dataset, SCORE_YEAR, tmp_path / "scores.xlsx", models=models)


def test_models_of_another_feature_pipeline_are_refused(registry, monkeypatch):
    monkeypatch.setattr("features.pipeline.FEATURE_PIPELINE_VERSION", "99.0.0")
    with pytest.raises(ScoringProblem, match=r"trained with feature pipeline .* 99\.0\.0"):
        load_models()


def test_a_missing_alias_is_a_clear_problem(registry):
    with pytest.raises(ScoringProblem, match="no model giantwatch-specialized@staging"):
        load_models("staging")


def test_a_tier_without_a_production_model_is_left_out_and_said(registry, caplog):
    """A tier whose versions all stayed out of production is not scored; a warning names it
    and why (the latest version's gate decision); the other tiers are scored."""
    from mlflow import MlflowClient

    from training.tracking import PRODUCTION, registered_name

    client = MlflowClient()
    name = registered_name("champion")
    version = client.get_model_version_by_alias(name, PRODUCTION).version
    client.delete_registered_model_alias(name, PRODUCTION)
    client.set_model_version_tag(name, version, "gate_decision",
                                 "held: PR-AUC 0.100 does not beat logistic 0.200")
    try:
        with caplog.at_level("WARNING", logger="serving.registry"):
            loaded = load_models()
    finally:
        client.set_registered_model_alias(name, PRODUCTION, version)
    assert set(loaded) == {"specialized", "little_giant"}
    assert (f"champion is left out: no model {name}@production (the latest version "
            f"v{version} was held: PR-AUC 0.100 does not beat logistic 0.200)") in caplog.text


@pytest.fixture(scope="module")
def scored_2026(dataset, models):
    """Scores as of 2026, when the rulebooks in force (2026 Measures) differ from the lens
    (2022) that the models' rule features read."""
    frame, _ = score_firms(dataset, 2026, models=models, chunk_size=2_500)
    return frame


def _allowed_bars(rulebook) -> set[str]:
    """Every threshold of `rulebook` as a reason may print it."""
    from features.rules.types import Leaf, iter_nodes
    from models.reasons import format_values

    thresholds = {leaf.threshold for c in rulebook.criteria for leaf in iter_nodes(c.node)
                  if isinstance(leaf, Leaf)}
    allowed = set()
    for fmt in ("percent", "money", "count", "years", "rank", "number"):
        allowed |= {str(t) for t in format_values(np.array(sorted(thresholds)), fmt, bar=True)}
    return allowed


def test_eligibility_gaps_and_reasons_of_a_row_come_from_the_named_rulebook(scored_2026, dataset):
    """Property over every candidate row and tier: the rulebook named in rulebook_<tier> is
    the one in force; re-evaluating it on the row's features gives eligible_<tier>; failed
    criteria and gaps are its criteria; every bar a reason quotes is one of its thresholds;
    the verdict a reason states is the eligibility beside it."""
    import re

    from features.rules import available_rulebooks, evaluate, load_rulebook, resolve_rulebooks

    frame = scored_2026.set_index("firm_id")
    X = build_features(dataset, 2026, firm_ids=frame.index)
    in_force = resolve_rulebooks(None, 2026)
    names = "|".join(re.escape(n) for n in sorted(  # longest first: the alternation is greedy
        {load_rulebook(p).name_en for p in available_rulebooks()["path"]}, key=len, reverse=True))
    verdict = re.compile(rf"(?:fails the|meets every criterion of the) ({names})|({names}): "
                         "undecided")
    bar = re.compile(r"the (\S+(?: CNY)?) (?:bar|ceiling)|minimum of ([^\s;,]+)|the top ([^\s;,)]+)")
    for tier in TIERS:
        candidate = frame[f"p_{tier}"].notna()
        rows = frame[candidate]
        rb = in_force[tier]
        assert set(rows[f"rulebook_{tier}"]) == {rb.id}
        assert frame.loc[~candidate, f"rulebook_{tier}"].isna().all()
        again = evaluate(X.loc[rows.index], rb).eligible_on_data.astype(str)
        assert again.tolist() == rows[f"eligible_{tier}"].tolist()
        failed = rows[f"failed_{tier}"].fillna("").str.split("; ").explode()
        assert failed[failed != ""].str.startswith(rb.code + "_").all()
        gaps = rows[f"gaps_{tier}"].fillna("").str.split(" | ", regex=False).explode()
        assert gaps[gaps != ""].str.startswith(rb.code + "_").all()
        allowed = _allowed_bars(rb)
        reasons = (rows[f"reasons_{tier}_for"].fillna("") + "; "
                   + rows[f"reasons_{tier}_against"].fillna(""))
        quoted = {b for text in reasons for m in bar.finditer(text) for b in m.groups() if b}
        assert quoted <= allowed, f"{tier}: bars not in {rb.id}: {quoted - allowed}"
        named = {m for text in reasons for m in verdict.findall(text)}
        assert {n for pair in named for n in pair if n} == {rb.name_en}
        says_fail = reasons.str.contains(f"fails the {rb.name_en}", regex=False)
        says_pass = reasons.str.contains(f"meets every criterion of the {rb.name_en}",
                                         regex=False)
        assert (rows.loc[says_fail, f"eligible_{tier}"] == "fail").all()
        assert (rows.loc[says_pass, f"eligible_{tier}"] == "pass").all()
        assert says_fail.any() or says_pass.any()


def test_the_summary_names_the_rulebooks(scored):
    summary, _ = scored
    text = str(summary)
    for tier, rulebook_id in {"specialized": "specialized_2022", "little_giant":
                              "little_giant_2022", "champion": "champion_2023"}.items():
        assert f"{tier}: {rulebook_id} (in force on {SCORE_YEAR}-09-01" in text


def test_check_and_score_write_the_same_eligibility_columns(scored_2026, dataset):
    """`giantwatch check` and `giantwatch score` share the scoring core's assessment: for a
    candidate the eligibility columns are the same values under the same names."""
    from features.rules import resolve_rulebooks
    from serving.check import check_firms

    frame = scored_2026.set_index("firm_id")
    X = build_features(dataset, 2026, firm_ids=frame.index)
    checked = check_firms(X, resolve_rulebooks(None, 2026))
    for tier in TIERS:
        candidate = frame.index[frame[f"p_{tier}"].notna()]
        for column in (f"rulebook_{tier}", f"eligible_{tier}", f"failed_{tier}",
                       f"gaps_{tier}"):
            assert checked.loc[candidate, column].tolist() == \
                frame.loc[candidate, column].tolist(), column


def test_rows_carry_the_firms_name_province_and_industry(scored, dataset):
    _, frame = scored
    firms = dataset.firms.set_index("firm_id")
    rows = frame.set_index("firm_id")
    assert (rows["name"] == firms.loc[rows.index, "name"]).all()
    assert (rows["industry_code"] == firms.loc[rows.index, "industry_code"]).all()
    assert rows["name"].str.contains("有限公司").mean() > 0.9
    zhejiang = rows["province"] == "33"
    assert zhejiang.any()
    assert set(rows.loc[zhejiang, "province_en"]) == {"Zhejiang"}
    assert set(rows.loc[zhejiang, "province_zh"]) == {"浙江省"}


REVIEWED = "specialized"


@pytest.fixture(scope="module")
def scored_renewals(small_universe, dataset, models, tmp_path_factory):
    """Scores with a re-review model of REVIEWED fitted on its re-reviews before SCORE_YEAR."""
    from features.domain import reviewed_years
    from features.pipeline import stack_panels
    from serving.registry import RegisteredModel

    years = [y for y in reviewed_years(dataset.certifications, REVIEWED) if y < SCORE_YEAR]
    panel = stack_panels(dataset, years, REVIEWED, review=True)
    model = QUICK_MODEL(seed=0).fit(panel.X, panel.y, years=panel.keys["year"].to_numpy())
    reviews = {REVIEWED: RegisteredModel(REVIEWED, "giantwatch-specialized-review", "1", [], {},
                                         model)}
    out = tmp_path_factory.mktemp("renewals") / "scores.parquet"
    summary = score_to_file(small_universe, SCORE_YEAR, out, models=models, reviews=reviews,
                            chunk_size=1_500)
    return summary, pd.read_parquet(out), model


def test_renewal_is_scored_for_titles_up_for_re_review_only(scored_renewals, dataset):
    from features.domain import due_for_review
    from features.pipeline import asof_panel

    summary, frame, model = scored_renewals
    assert list(frame.columns) == output_columns(reviews=(REVIEWED,))
    frame = frame.set_index("firm_id")
    p = frame[f"p_renewal_{REVIEWED}"]
    due = due_for_review(dataset.certifications, SCORE_YEAR, REVIEWED)
    up = set(due.index[due.to_numpy(dtype=bool)]) & set(frame.index)
    assert len(up) > 20 and set(p.index[p.notna()]) == up
    assert p.dropna().between(0, 1).all()
    # The probability is the re-review model's on the firm's as-of features...
    panel = asof_panel(dataset, SCORE_YEAR, REVIEWED, review=True)
    np.testing.assert_allclose(p.loc[panel.keys["firm_id"]],
                               model.predict_proba(panel.X)[:, 1], rtol=1e-9, atol=1e-12)
    # ... with reasons beside it, and nothing where no title is up for re-review.
    reasons = frame[f"reasons_renewal_{REVIEWED}_for"].fillna("") + \
        frame[f"reasons_renewal_{REVIEWED}_against"].fillna("")
    assert (reasons[p.notna()] != "").all() and (reasons[p.isna()] == "").all()
    assert "of candidates" not in " ".join(reasons), "re-reviewed holders are not candidates"
    assert summary.renewals[REVIEWED][0] == len(up)
    assert summary.models[f"{REVIEWED}-review"] == "1"
    assert f"{REVIEWED} re-reviews: {len(up):,} titles up for re-review" in str(summary)
