"""As-of candidate panel: title validity, candidate sets, labels, rejects."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from features.domain import TIERS, holds_valid_title
from features.panel import candidate_panel
from features.pipeline import Panel, asof_panel, build_features, stack_panels
from tests.features.test_feature_builders import fin_row, make_dataset

T = 2023


def certs(*rows):
    return make_dataset(certifications=[
        {"firm_id": f, "tier": tier, "year": y, "event": e} for f, tier, y, e in rows
    ]).certifications


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([("A", "little_giant", T - 1, "granted")], True),
        ([("A", "little_giant", T - 2, "granted")], True),
        ([("A", "little_giant", T - 3, "granted")], False),          # expired
        ([("A", "little_giant", T, "granted")], False),              # not yet announced
        ([("A", "little_giant", T - 2, "granted"),
          ("A", "little_giant", T - 1, "revoked")], False),          # revoked after grant
        ([("A", "little_giant", T - 2, "granted"),
          ("A", "little_giant", T - 2, "revoked")], False),          # revoked the same year
        ([("A", "little_giant", T - 2, "granted"),
          ("A", "little_giant", T, "revoked")], True),               # revocation not yet known
        ([("A", "little_giant", T - 4, "granted"),
          ("A", "little_giant", T - 1, "renewed")], True),           # renewal extends
        ([("A", "little_giant", T - 4, "granted"),
          ("A", "little_giant", T - 3, "revoked"),
          ("A", "little_giant", T - 1, "granted")], True),           # re-granted after revocation
        ([("A", "specialized", T - 1, "granted")], False),           # other tier
        ([("A", "little_giant", T - 6, "granted"),
          ("A", "little_giant", T - 3, "renewed")], False),          # renewal expired too
    ],
)
def test_holds_valid_title(rows, expected):
    held = holds_valid_title(certs(*rows), T, "little_giant")
    assert held.dtype == bool
    assert bool(held.loc["A"]) is expected


def test_holds_valid_title_covers_all_certified_firms():
    c = certs(("A", "little_giant", T - 1, "granted"), ("B", "specialized", T - 1, "granted"))
    held = holds_valid_title(c, T, "little_giant")
    assert held.to_dict() == {"A": True, "B": False}
    assert held.index.name == "firm_id"


@pytest.fixture(scope="module")
def universe():
    firms = ["none", "spec", "lg", "champ", "new", "nofin", "won_spec", "won_lg", "expired"]
    cert_rows = [
        ("spec", "specialized", T - 1, "granted"),
        ("lg", "little_giant", T - 2, "granted"),
        ("lg", "specialized", T - 3, "granted"),
        ("champ", "champion", T - 1, "granted"),
        ("won_spec", "specialized", T, "granted"),
        ("won_lg", "specialized", T - 1, "granted"),
        ("won_lg", "little_giant", T, "granted"),
        ("spec", "little_giant", T, "renewed"),   # not a grant: no label
        ("expired", "little_giant", T - 3, "granted"),
        ("expired", "champion", T, "granted"),
    ]
    return make_dataset(
        firms=[{"firm_id": f, "founded_year": T if f == "new" else 2000} for f in firms],
        financials=[fin_row(f, T - 1) for f in firms if f != "nofin"]
        + [fin_row("nofin", T - 2)],
        certifications=[{"firm_id": f, "tier": t, "year": y, "event": e}
                        for f, t, y, e in cert_rows],
    )


def labels(keys):
    return dict(zip(keys["firm_id"], keys["label"]))


def test_candidates_specialized(universe):
    keys, rejects = candidate_panel(universe, T, "specialized")
    assert labels(keys) == {"expired": 0.0, "none": 0.0, "won_spec": 1.0}
    assert list(keys.columns) == ["firm_id", "year", "label"]
    assert keys["year"].dtype == np.int64 and (keys["year"] == T).all()
    assert list(rejects["firm_id"]) == ["nofin"]


def test_candidates_little_giant(universe):
    keys, _ = candidate_panel(universe, T, "little_giant")
    # "spec" holds only a Specialized title; "champ" no Little Giant title; "lg" is excluded
    assert labels(keys) == {"champ": 0.0, "expired": 0.0, "none": 0.0, "spec": 0.0,
                            "won_lg": 1.0, "won_spec": 0.0}


def test_candidates_champion(universe):
    keys, _ = candidate_panel(universe, T, "champion")
    assert "champ" not in set(keys["firm_id"]) and "lg" in set(keys["firm_id"])
    assert labels(keys)["expired"] == 1.0
    assert "new" not in set(keys["firm_id"])  # founded in t


def test_rejects_for_missing_t1_financials(universe):
    _, rejects = candidate_panel(universe, T, "little_giant")
    assert len(rejects) == 1
    r = rejects.iloc[0]
    assert r["reason"] == f"no financials for fiscal year {T - 1}"
    assert (r["table"], r["firm_id"], r["year"], r["tier"]) == ("financials", "nofin", T,
                                                                "little_giant")
    assert json.loads(r["record"])["firm_id"] == "nofin"
    assert {"table", "row", "column", "rule", "reason", "record"} <= set(rejects.columns)


def test_unlabelled_year_has_nan_labels(universe):
    keys, _ = candidate_panel(universe, T + 1, "little_giant")
    assert len(keys) == 0 or keys["label"].isna().all()
    keys, _ = candidate_panel(universe, T - 1, "little_giant")  # no grants in t-1
    assert list(keys["firm_id"]) == ["nofin"] and keys["label"].isna().all()


def test_unknown_tier_raises(universe):
    with pytest.raises(ValueError, match="unknown tier"):
        candidate_panel(universe, T, "giant")
    assert TIERS == ("specialized", "little_giant", "champion")


def test_asof_panel_aligns_features_with_keys(universe):
    panel = asof_panel(universe, T, "little_giant")
    assert isinstance(panel, Panel)
    assert list(panel.keys.columns) == ["firm_id", "year"]
    assert panel.X.index.equals(panel.keys.index) and panel.y.index.equals(panel.keys.index)
    assert panel.y.dtype == np.int64 and panel.y.sum() == 1
    full = build_features(universe, T)
    for i, firm in zip(panel.keys.index, panel.keys["firm_id"]):
        pd.testing.assert_series_equal(panel.X.loc[i], full.loc[firm], check_names=False)
    assert panel.X.loc[panel.keys["firm_id"] == "spec", "holds_specialized"].item() == 1.0


def test_stack_panels(universe):
    seen = []
    panel = stack_panels(universe, [T - 1, T], "little_giant",
                         progress=lambda y, n: seen.append((y, n)))
    assert [y for y, _ in seen] == [T - 1, T]
    assert len(panel.X) == len(panel.keys) == sum(n for _, n in seen)
    assert panel.X.index.equals(pd.RangeIndex(len(panel.X)))
    # t-1 has no little_giant grants: unlabelled rows stay NaN beside the labelled year
    assert panel.y.isna().sum() == seen[0][1]
    assert panel.y.dropna().sum() == 1
    assert str(panel.X["province"].dtype) == "category"
    only_unlabelled = stack_panels(universe, [T - 1], "little_giant")
    assert only_unlabelled.y is None


def test_panel_on_generated_universe_is_leak_free(small_universe):
    """End to end on the generated universe read through the contract loader: the as-of
    panel equals the one built after deleting everything first known in t or later."""
    from features.contract import load_dataset

    ds = load_dataset(small_universe)
    certs = ds.certifications
    year = int(certs.loc[(certs["tier"] == "little_giant") & (certs["event"] == "granted"),
                         "year"].max())
    panel = asof_panel(ds, year, "little_giant")
    assert len(panel.X) == len(panel.keys) > 0 and panel.y.sum() > 0
    assert set(panel.rejects["reason"]) <= {f"no financials for fiscal year {year - 1}"}

    cut = pd.Timestamp(f"{year}-01-01")
    pat = ds.patents[ds.patents["filed"] < cut].copy()
    for col in ("granted", "lapsed"):
        pat[col] = pat[col].where(pat[col] < cut)
    past = SimpleNamespace(firms=ds.firms, patents=pat,
                           financials=ds.financials[ds.financials["year"] < year],
                           certifications=certs[certs["year"] < year])
    pd.testing.assert_frame_equal(build_features(ds, year, panel.keys["firm_id"]),
                                  build_features(past, year, panel.keys["firm_id"]))


def test_review_panel_lists_titles_up_for_re_review_with_their_outcome():
    from features.panel import review_panel

    rows = [("kept", T - 3, "granted"), ("kept", T, "renewed"),
            ("dropped", T - 3, "granted"), ("dropped", T, "revoked"),
            ("lapsed", T - 3, "granted"),
            ("struck", T - 3, "granted"), ("struck", T - 2, "revoked"),
            ("recent", T - 2, "granted"),
            ("silent", T - 3, "granted")]
    firms = sorted({f for f, _, _ in rows})
    data = make_dataset(
        firms=[{"firm_id": f, "founded_year": 2000} for f in firms],
        financials=[fin_row(f, T - 1) for f in firms if f != "silent"] + [fin_row("kept", T + 2)],
        certifications=[{"firm_id": f, "tier": "little_giant", "year": y, "event": e}
                        for f, y, e in rows])
    keys, rejects = review_panel(data, T, "little_giant")
    assert labels(keys) == {"dropped": 0.0, "kept": 1.0, "lapsed": 0.0}
    assert list(rejects["firm_id"]) == ["silent"]
    assert (rejects["tier"] == "little_giant").all()
    # The renewed title comes up again three years later, its outcome not yet known.
    keys, _ = review_panel(data, T + 3, "little_giant")
    assert list(keys["firm_id"]) == ["kept"] and keys["label"].isna().all()


@pytest.mark.parametrize("few", [True, False])
def test_ids_are_found_alike_in_a_dict_and_by_arrow(monkeypatch, few):
    """A few ids are looked up in Python, many by Arrow: the same positions and hits,
    missing ids matching missing ones as Arrow matches nulls."""
    from features import panel

    universe = pd.Series(["A", "B", None, "C", "企业"], dtype="str")
    values = pd.Series(["C", "Z", None, "A", "企业", "B", "C"], dtype="str")
    if not few:
        monkeypatch.setattr(panel, "FEW_ROWS", 0)
    for wanted in (values, values.tolist(), pd.Index(values), values.to_numpy(dtype=object)):
        np.testing.assert_array_equal(panel.positions_in(wanted, universe),
                                      [3, -1, 2, 0, 4, 1, 3])
        np.testing.assert_array_equal(panel.is_in(wanted, universe),
                                      [True, False, True, True, True, True, True])
    assert panel.positions_in(values[:0], universe).dtype == np.int64
    assert len(panel.is_in([], universe)) == 0
