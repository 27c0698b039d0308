"""Each domain definition pinned by a test; the rulebooks' coverage of the feature frame."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from features import domain
from features.rules import (
    available_rulebooks,
    in_force_note,
    list_date,
    load_rulebook,
    resolve_rulebooks,
    rulebook_in_force,
)
from features.rules.types import Qualitative, iter_nodes


def certs(*rows):
    return pd.DataFrame(rows, columns=["firm_id", "tier", "year", "event"])


# ------------------------------------------------------------------ tiers and titles

def test_tiers_are_the_ladder_and_the_modelled_tiers():
    assert domain.TIER_ORDER == ("innovative", "specialized", "little_giant", "champion")
    assert domain.TIERS == domain.TIER_ORDER[1:]
    assert set(domain.TIER_NAMES) == set(domain.TIER_ORDER)
    assert domain.EVENTS == ("granted", "renewed", "revoked")
    with pytest.raises(ValueError, match="unknown tier"):
        domain.check_tier("giant")


@pytest.mark.parametrize("rows, year, held", [
    ([("a", "little_giant", 2022, "granted")], 2024, True),   # valid in 2022, 2023, 2024
    ([("a", "little_giant", 2022, "granted")], 2025, False),  # expired after three years
    ([("a", "little_giant", 2024, "granted")], 2024, False),  # announced in t: not yet known
    ([("a", "little_giant", 2021, "granted"), ("a", "little_giant", 2024, "renewed")], 2025, True),
    ([("a", "little_giant", 2022, "granted"), ("a", "little_giant", 2023, "revoked")], 2024, False),
    ([("a", "little_giant", 2022, "granted"), ("a", "little_giant", 2022, "revoked")], 2023, False),
    ([("a", "specialized", 2023, "granted")], 2024, False),    # another tier's title
])
def test_title_validity(rows, year, held):
    assert bool(domain.holds_valid_title(certs(*rows), year, "little_giant")["a"]) is held


def test_labelled_years_are_years_with_a_grant_of_the_tier():
    table = certs(("a", "little_giant", 2021, "granted"), ("a", "little_giant", 2024, "renewed"),
                  ("b", "little_giant", 2023, "granted"), ("c", "champion", 2022, "granted"))
    assert domain.labelled_years(table, "little_giant") == [2021, 2023]
    assert domain.labelled_years(table, "specialized") == []


@pytest.mark.parametrize("rows, year, due", [
    ([("a", "little_giant", 2022, "granted")], 2025, True),    # three years end with 2024
    ([("a", "little_giant", 2022, "granted")], 2024, False),   # still valid in 2024
    ([("a", "little_giant", 2022, "granted")], 2026, False),   # lapsed a year ago
    ([("a", "little_giant", 2019, "granted"), ("a", "little_giant", 2022, "renewed")], 2025,
     True),                                                    # the renewal restarts the term
    ([("a", "little_giant", 2019, "granted"), ("a", "little_giant", 2022, "renewed")], 2022,
     True),                                                    # its 2022 renewal is the outcome
    ([("a", "little_giant", 2022, "granted"), ("a", "little_giant", 2023, "revoked")], 2025,
     False),                                                   # struck off mid-term
    ([("a", "little_giant", 2022, "granted"), ("a", "little_giant", 2022, "revoked")], 2025,
     False),
    ([("a", "specialized", 2022, "granted")], 2025, False),    # another tier's title
])
def test_due_for_review(rows, year, due):
    assert bool(domain.due_for_review(certs(*rows), year, "little_giant")["a"]) is due


def test_review_outcome_and_reviewed_years():
    table = certs(("a", "little_giant", 2021, "granted"), ("a", "little_giant", 2024, "renewed"),
                  ("b", "little_giant", 2021, "granted"), ("b", "little_giant", 2024, "revoked"),
                  ("c", "little_giant", 2021, "granted"),             # left to lapse
                  ("d", "specialized", 2021, "granted"), ("d", "specialized", 2024, "renewed"))
    due = domain.due_for_review(table, 2024, "little_giant")
    assert sorted(due.index[due.to_numpy()]) == ["a", "b", "c"]
    assert domain.review_outcome(table, 2024, "little_giant", ["a", "b", "c"]).tolist() == \
        [1.0, 0.0, 0.0]
    assert domain.reviewed_years(table, "little_giant") == [2024]
    assert domain.reviewed_years(table, "champion") == []


def test_candidacy_founding_and_excluding_titles():
    founded = np.array([2010, 2024, 2025, np.nan, 2010, 2010])
    holds = {"specialized": np.array([0, 0, 0, 0, 1, 0]),
             "little_giant": np.array([0, 0, 0, 0, 0, 1.0]),
             "champion": np.array([0, 0, 0, 0, 0, np.nan])}
    spec = domain.candidate_mask(founded, holds, 2025, "specialized")
    lg = domain.candidate_mask(founded, holds, 2025, "little_giant")
    champion = domain.candidate_mask(founded, holds, 2025, "champion")
    # Founded before t only; an unknown founding year is no candidate.
    assert spec.tolist() == [True, True, False, False, False, False]
    # A Specialized SME is a Little Giant candidate; a Little Giant is not.
    assert lg.tolist() == [True, True, False, False, True, False]
    # An unknown title (NaN) does not exclude.
    assert champion.tolist() == [True, True, False, False, True, True]


def test_the_panel_and_the_scorer_share_candidacy(small_dataset):
    """The panel (raw tables) and the scoring core (feature frame) pick the same firms."""
    from features.panel import candidate_panel
    from features.pipeline import build_features

    year = 2024
    X = build_features(small_dataset, year)
    founded = year - X["firm_age"].to_numpy()
    holds = {t: X[f"holds_{t}"].to_numpy() for t in domain.TIER_ORDER}
    for tier in domain.TIERS:
        keys, _ = candidate_panel(small_dataset, year, tier)
        from_features = X.index[domain.candidate_mask(founded, holds, year, tier)]
        assert sorted(from_features) == sorted(keys["firm_id"])


# ------------------------------------------------------------------ size

def test_large_firm_and_group_need_both_limits():
    employees = [1200, 1200, 999, 1000, np.nan, np.nan, 1500]
    revenue = [100e6, 400e6, 900e6, 400e6, 500e6, 100e6, np.nan]
    large = domain.is_large(employees, revenue)
    np.testing.assert_array_equal(large, [0, 1, 0, 1, np.nan, 0, np.nan])
    np.testing.assert_array_equal(domain.is_sme(employees, revenue), 1 - large)


def test_the_features_and_the_audit_use_the_one_large_group():
    """A parent of 1,200 employees and 100M revenue is not a large group anywhere."""
    from features.ownership import parent_large_group
    from models.audit_flags import large_group

    parent_emp = pd.Series([1200.0, 1200.0, 5000.0])
    parent_rev = pd.Series([100e6, 500e6, np.nan])
    subsidiary = pd.Series([1.0, 1.0, 1.0])
    feature = parent_large_group(subsidiary, parent_emp, parent_rev)
    np.testing.assert_array_equal(feature.to_numpy(), [0.0, 1.0, np.nan])
    frame = pd.DataFrame({"parent_employees": parent_emp, "parent_revenue": parent_rev})
    assert large_group(frame).tolist() == [False, True, False]


# ------------------------------------------------------------------ rejects

def test_no_financials_reject_is_one_shape():
    rejects = domain.no_financials_rejects(["91330100MA2B3C4D5E", 'x"y'], 2025, "little_giant")
    assert rejects.columns.tolist() == ["table", "row", "column", "rule", "reason", "record",
                                        "firm_id", "year", "tier"]
    assert set(rejects["table"]) == {"financials"} and set(rejects["column"]) == {"year"}
    assert set(rejects["rule"]) == {domain.NO_FINANCIALS_RULE}
    assert set(rejects["reason"]) == {"no financials for fiscal year 2024"}
    assert rejects["row"].isna().all()
    records = [json.loads(r) for r in rejects["record"]]
    assert records[1] == {"firm_id": 'x"y', "year": 2025, "tier": "little_giant"}
    untiered = domain.no_financials_rejects(["a"], 2025)
    assert json.loads(untiered["record"][0]) == {"firm_id": "a", "year": 2025}


# ------------------------------------------------------------------ rulebook in force

@pytest.mark.parametrize("tier, year, expected", [
    ("little_giant", 2021, "little_giant_2018"),
    ("little_giant", 2022, "little_giant_2022"),   # in force from 2022-08-01
    ("little_giant", 2025, "little_giant_2022"),
    ("little_giant", 2026, "little_giant_2026"),   # in force from 2026-04-01
    ("specialized", 2019, "specialized_2022"),     # nothing older on file
    ("specialized", 2026, "specialized_2026"),
    ("champion", 2021, "champion_2016"),
    ("champion", 2022, "champion_2022"),
    ("champion", 2026, "champion_2023"),
])
def test_rulebook_in_force(tier, year, expected):
    assert rulebook_in_force(tier, year).id == expected


def test_rulebook_in_force_follows_the_toml_dates():
    for row in available_rulebooks().itertuples():
        rb = load_rulebook(row.path)
        if rb.in_force_from is None or rb.tier == "innovative":
            continue
        year = rb.in_force_from.year + (list_date(rb.in_force_from.year) < rb.in_force_from)
        assert rulebook_in_force(rb.tier, year).id == rb.id
        assert dt.date.fromisoformat(rb.in_force_from.isoformat()).isoformat() in \
            in_force_note(rb, year)


def test_resolve_rulebooks_defaults_and_overrides():
    assert {t: rb.id for t, rb in resolve_rulebooks(None, 2026).items()} == {
        "specialized": "specialized_2026", "little_giant": "little_giant_2026",
        "champion": "champion_2023"}
    assert resolve_rulebooks("2022", 2026)["little_giant"].id == "little_giant_2022"
    mixed = resolve_rulebooks("lg22", 2026)
    assert mixed["little_giant"].id == "little_giant_2022"
    assert mixed["specialized"].id == "specialized_2026"
    with pytest.raises(KeyError, match="available"):
        resolve_rulebooks("little_giant_2031", 2026)


def test_rulebook_files_are_refused_cleanly(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("x = [", encoding="utf-8")
    for spec in (str(broken), str(tmp_path / "missing.toml")):
        with pytest.raises(KeyError, match="no rulebook matches"):
            resolve_rulebooks(spec, 2026)
    # Where files may not be named (the HTTP API), no path is even opened.
    shipped = str(load_rulebook("lg22").path)
    with pytest.raises(KeyError, match="cannot be named"):
        resolve_rulebooks(shipped, 2026, files=False)


# ------------------------------------------------------------------ rulebook coverage

def test_every_criterion_is_computed_or_marked_unobservable():
    """Each condition of every shipped rulebook reads features the pipeline builds, or is
    marked in its TOML as data outside the contract (then it is unknown, never skipped)."""
    from features.pipeline import feature_names

    built = set(feature_names())
    missing = []
    for path in available_rulebooks()["path"]:
        rb = load_rulebook(path)
        for c in rb.criteria:
            for node in iter_nodes(c.node):
                if isinstance(node, Qualitative):
                    assert node.data.strip(), f"{c.id}: a qualitative condition names its data"
            missing += [f"{c.id}: {f}" for f in c.features if f not in built]
        for item in rb.score.items if rb.score else ():
            missing += [f"{rb.id} score {item.id}: {t.feature}" for t in item.inputs
                        if t.feature is not None and t.feature not in built]
    assert not missing, f"criteria read features the pipeline does not build: {missing}"


def test_no_champion_passes_while_a_computable_criterion_fails(small_dataset):
    from features.pipeline import build_features
    from features.rules import evaluate

    X = build_features(small_dataset, 2025)
    for rb_id in ("champion_2016", "champion_2022", "champion_2023"):
        result = evaluate(X, load_rulebook(rb_id))
        for status in (result.eligible, result.eligible_on_data):
            criteria = result.criteria_on_data if status is result.eligible_on_data \
                else result.criteria
            passing = (status == "pass").to_numpy()
            failing_any = (criteria.astype(str) == "fail").any(axis=1).to_numpy()
            assert not (passing & failing_any).any(), rb_id
    # The 2023 revenue bar is computed: a pass averages at least 400M of main revenue.
    result = evaluate(X, load_rulebook("champion_2023"))
    passed = (result.eligible_on_data == "pass").to_numpy()
    assert (X.loc[passed, "main_revenue_3y_avg"] >= 400e6).all()
    revenue = result.criteria["ch23_main_revenue_3y"].astype(str)
    assert (revenue != "unknown").mean() > 0.5


@pytest.fixture(scope="module")
def small_dataset(small_universe):
    from features.contract import load_dataset

    return load_dataset(small_universe)


def test_province_names_and_regions_have_one_table():
    """Validation aliases, the region features, the reasons and the simulator all read
    features/data/provinces.csv."""
    from features import ownership, regions, schemas
    from models.reasons import display_names
    from training.synthetic.firms import load_reference

    table = regions.PROVINCE_TABLE
    assert set(schemas.PROVINCES) == set(table["code"]) == set(regions.PROVINCES)
    assert ownership.PROVINCES is regions.PROVINCES
    assert schemas.PROVINCES["33"][0] == "浙江" and table.loc["33", "name_zh"] == "浙江省"
    assert display_names("province")["44"] == "Guangdong"
    simulated = load_reference().provinces.set_index("province")
    assert (simulated["name_zh"] == table.loc[simulated.index, "name_zh"]).all()
    assert (simulated["macro_region"] == table.loc[simulated.index, "macro_region"]).all()
    assert regions.province_names(["32", "99", None], "zh").tolist() == ["江苏省", None, None]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_province_names_few_and_many_codes_read_alike(lang):
    # A few codes are looked up one by one, many through pandas: the same names for text
    # with blanks, integers, missing cells of every kind and codes that are no province.
    from features import regions

    codes = ["33", " 33", 33, None, float("nan"), pd.NA, "99", "11 ", "", "abc", 33.0,
             np.int64(44)]
    few = regions.province_names(codes, lang)
    many = regions.province_names(codes * (domain.FEW_ROWS // len(codes) + 1), lang)
    assert len(codes) <= domain.FEW_ROWS < len(codes) * (domain.FEW_ROWS // len(codes) + 1)
    assert few.tolist() == many[:len(codes)].tolist()
    assert few.tolist()[:4] == [regions.PROVINCE_TABLE.loc["33", f"name_{lang}"]] * 3 + [None]
    assert few[-1] == regions.PROVINCE_TABLE.loc["44", f"name_{lang}"] and few[-2] is None


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "string[python]", object, "category"])
@pytest.mark.parametrize("rows", [3, domain.FEW_ROWS + 5])
def test_is_one_of_agrees_with_isin_missing_cells_included(dtype, rows):
    # Both routes (Python strings on a few rows, pandas isin on many) give the same answer,
    # and a missing cell is never one of the values.
    cells = (["granted", None, "revoked", "renewed"] * rows)[:rows]
    column = pd.Series(cells, dtype=dtype)
    got = domain.is_one_of(column, ("granted", "renewed"))
    expected = np.array([c in ("granted", "renewed") for c in cells])
    assert got.dtype == bool and np.array_equal(got, expected)
