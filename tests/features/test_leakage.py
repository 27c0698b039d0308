"""No feature of as-of year t may depend on anything first known in year t or later.

Property-based: a random small universe, a random as-of year t, and random edits of the
future (financials of years >= t, patent dates >= t-01-01, certifications of years >= t)
must leave every feature unchanged; edits of the past must change them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.pipeline import asof_panel, build_features
from tests.features.test_feature_builders import make_dataset

FIRST_YEAR, LAST_YEAR = 2012, 2025
KINDS = ["invention", "utility", "design", "software"]
TIERS = ["innovative", "specialized", "little_giant", "champion"]
EVENTS = ["granted", "granted", "renewed", "revoked"]
IPCS = ["B25J", "G06F", "H01L", "A01B", "C08L", None]
FIN_COLS = ["revenue", "main_revenue", "net_profit", "total_assets", "total_liabilities",
            "rd_expense", "export_revenue", "equity_raised", "subsidies", "domestic_share",
            "rd_staff", "domestic_rank", "global_rank"]
# Derandomised and without an example database: the same examples on every machine and CI
# run, and no .hypothesis folder in the work tree.
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _date(rng: np.random.Generator) -> pd.Timestamp:
    # Plenty of dates right at the as-of boundaries (Jan 1 / Dec 31 of some year).
    year = int(rng.integers(2010, LAST_YEAR + 1))
    pick = rng.integers(3)
    if pick == 0:
        return pd.Timestamp(f"{year}-01-01")
    if pick == 1:
        return pd.Timestamp(f"{year}-12-31")
    return pd.Timestamp(f"{year}-01-01") + pd.Timedelta(days=int(rng.integers(0, 365)))


def _fin(rng, firm_id, year):
    row = {"firm_id": firm_id, "year": year, "employees": int(rng.integers(0, 1500)),
           "rd_institution": str(rng.choice(["none", "city", "provincial", "national"])),
           "high_tech": [True, False, None][rng.integers(3)]}
    for col in FIN_COLS:
        row[col] = np.nan if rng.random() < 0.15 else float(rng.integers(0, 4) * rng.random()
                                                             * 1e8)
    row["domestic_share"] = np.nan if rng.random() < 0.3 else float(rng.random())
    return row


def _patent(rng, firm_id, filed=None):
    filed = filed if filed is not None else _date(rng)
    granted = filed + pd.Timedelta(days=int(rng.integers(0, 1500))) if rng.random() < 0.7 else None
    lapsed = (granted + pd.Timedelta(days=int(rng.integers(0, 2500)))
              if granted is not None and rng.random() < 0.3 else None)
    return {"firm_id": firm_id, "kind": str(rng.choice(KINDS)), "filed": filed,
            "granted": granted, "lapsed": lapsed, "ipc": IPCS[rng.integers(len(IPCS))]}


def _cert(rng, firm_id, year=None):
    return {"firm_id": firm_id, "tier": str(rng.choice(TIERS)),
            "year": int(year if year is not None else rng.integers(2015, LAST_YEAR + 1)),
            "event": str(rng.choice(EVENTS))}


def random_universe(seed: int, n_firms: int = 6):
    rng = np.random.default_rng(seed)
    ids = [f"F{i}" for i in range(n_firms)]
    firms = [{"firm_id": f, "founded_year": int(rng.integers(2000, 2020)),
              "industry_code": str(rng.choice(["C3491", "I6511", "C13", "C3973"])),
              "province": str(rng.choice(["33", "51", "21", "42"]))} for f in ids]
    fin = [_fin(rng, f, y) for f in ids for y in range(FIRST_YEAR, LAST_YEAR + 1)
           if rng.random() < 0.8]
    pats = [_patent(rng, str(rng.choice(ids))) for _ in range(5 * n_firms)]
    certs = [_cert(rng, str(rng.choice(ids))) for _ in range(3 * n_firms)]
    return {"firms": firms, "financials": fin, "patents": pats, "certifications": certs}


def mutate_future(rows: dict, year: int, seed: int, tables: set[str]) -> dict:
    """Change, delete and add rows that are first known in ``year`` or later."""
    rng = np.random.default_rng(seed)
    cut = pd.Timestamp(f"{year}-01-01")
    ids = [f["firm_id"] for f in rows["firms"]]
    out = {k: [dict(r) for r in v] for k, v in rows.items()}

    def future_date():
        return cut + pd.Timedelta(days=int(rng.integers(0, 1500)))

    if "financials" in tables:
        fin = []
        for r in out["financials"]:
            if r["year"] >= year:
                if rng.random() < 0.3:
                    continue
                r = {**_fin(rng, r["firm_id"], r["year"])}
            fin.append(r)
        present = {(r["firm_id"], r["year"]) for r in fin}
        fin += [_fin(rng, f, y) for f in ids for y in range(year, LAST_YEAR + 2)
                if (f, y) not in present and rng.random() < 0.3]
        out["financials"] = fin
    if "patents" in tables:
        pats = []
        for r in out["patents"]:
            if r["filed"] >= cut:
                if rng.random() < 0.4:
                    continue
                r = _patent(rng, r["firm_id"], filed=future_date())
            else:
                if r["granted"] is not None and r["granted"] >= cut:
                    r["granted"] = future_date() if rng.random() < 0.5 else None
                    if r["granted"] is None:
                        r["lapsed"] = None
                if r["lapsed"] is not None and r["lapsed"] >= cut:
                    r["lapsed"] = future_date() if rng.random() < 0.5 else None
                if r["granted"] is not None and r["granted"] >= cut and rng.random() < 0.5:
                    r["lapsed"] = r["granted"] + pd.Timedelta(days=30)
            pats.append(r)
        pats += [_patent(rng, str(rng.choice(ids)), filed=future_date()) for _ in range(3)]
        out["patents"] = pats
    if "certifications" in tables:
        certs = [r if r["year"] < year else _cert(rng, r["firm_id"], year + rng.integers(3))
                 for r in out["certifications"] if r["year"] < year or rng.random() < 0.6]
        certs += [_cert(rng, str(rng.choice(ids)), year + rng.integers(3)) for _ in range(3)]
        out["certifications"] = certs
    return out


def _build(rows):
    return make_dataset(**rows)


def _all_ids(rows):
    return [f["firm_id"] for f in rows["firms"]]


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), year=st.integers(2016, 2024),
       edit_seed=st.integers(0, 2**31 - 1),
       tables=st.sets(st.sampled_from(["financials", "patents", "certifications"]), min_size=1))
def test_future_edits_leave_features_unchanged(seed, year, edit_seed, tables):
    rows = random_universe(seed)
    edited = mutate_future(rows, year, edit_seed, tables)
    before = build_features(_build(rows), year, firm_ids=_all_ids(rows))
    after = build_features(_build(edited), year, firm_ids=_all_ids(rows))
    pd.testing.assert_frame_equal(before, after)


@settings(SETTINGS, max_examples=8)
@given(seed=st.integers(0, 2**31 - 1), year=st.integers(2016, 2024),
       edit_seed=st.integers(0, 2**31 - 1))
def test_future_edits_leave_panel_candidates_and_features_unchanged(seed, year, edit_seed):
    rows = random_universe(seed)
    edited = mutate_future(rows, year, edit_seed, {"financials", "patents", "certifications"})
    for tier in ("specialized", "little_giant", "champion"):
        a, b = asof_panel(_build(rows), year, tier), asof_panel(_build(edited), year, tier)
        pd.testing.assert_frame_equal(a.keys, b.keys)
        pd.testing.assert_frame_equal(a.X, b.X)
        pd.testing.assert_frame_equal(a.rejects, b.rejects)


@settings(SETTINGS, max_examples=25)
@given(seed=st.integers(0, 2**31 - 1), year=st.integers(2016, 2024), firm=st.integers(0, 5),
       day=st.integers(0, 364), lag=st.integers(1, 4), back=st.integers(1, 2))
def test_past_rows_change_features(seed, year, firm, day, lag, back):
    """A t-1 invention grant, a financials row of t-lag and a Little Giant grant of t-back
    each show up in the features of t."""
    rows = random_universe(seed)
    firm_id, fy = f"F{firm}", year - lag
    granted = pd.Timestamp(f"{year - 1}-01-01") + pd.Timedelta(days=day)
    invention = {"firm_id": firm_id, "kind": "invention", "ipc": "G06F", "lapsed": None,
                 "filed": granted - pd.Timedelta(days=400), "granted": granted}
    fin_row = {**_fin(np.random.default_rng(seed), firm_id, fy), "revenue": 5e7}
    grant = {"firm_id": firm_id, "tier": "little_giant", "year": year - back, "event": "granted"}
    base = {
        **rows,
        "financials": [r for r in rows["financials"] if (r["firm_id"], r["year"]) != (firm_id, fy)],
        "certifications": [r for r in rows["certifications"]
                           if not (r["firm_id"] == firm_id and r["tier"] == "little_giant")],
    }
    added = {**base, "patents": base["patents"] + [invention],
             "financials": base["financials"] + [fin_row],
             "certifications": base["certifications"] + [grant]}
    before = build_features(_build(base), year, firm_ids=_all_ids(rows)).loc[firm_id]
    after = build_features(_build(added), year, firm_ids=_all_ids(rows)).loc[firm_id]
    assert after["valid_invention_patents"] == before["valid_invention_patents"] + 1
    assert after["new_grants_1y"] == before["new_grants_1y"] + 1
    assert after["financial_years_known"] == before["financial_years_known"] + 1
    assert (before["holds_little_giant"], after["holds_little_giant"]) == (0.0, 1.0)
    assert after["years_held_little_giant"] == back
