"""The feature pipeline's memo of label nodes on a few firms: a firm's features are the same
whether its nodes were computed, remembered, or computed in a batch of many firms."""

from __future__ import annotations

import pandas as pd
import pytest

from features import pipeline

SCORE_YEAR = 2025  # as-of year with financials for every generated firm


@pytest.fixture(scope="module")
def dataset(small_universe):
    from features.contract import load_dataset

    return load_dataset(small_universe)


def test_few_firm_features_equal_the_batch_whether_remembered_or_not(dataset, monkeypatch):
    monkeypatch.setattr(pipeline, "_NODE_MEMO", {})
    batch = pipeline.build_features(dataset, SCORE_YEAR)  # many firms: never memoised
    assert len(batch) > pipeline.FEW_FIRMS and not pipeline._NODE_MEMO
    # Firms sharing provinces, industries and (no) titles: later ones hit the memo.
    firms = batch.index[:: max(1, len(batch) // 40)][:40]
    for firm in [*firms, *firms]:  # the second round is answered from the memo
        one = pipeline.build_features(dataset, SCORE_YEAR, firm_ids=[firm])
        pd.testing.assert_frame_equal(one, batch.loc[[firm]], check_exact=True)
    remembered = {key[0] for key in pipeline._NODE_MEMO}
    assert {"province", "macro_region", "listed_board", "holds_specialized",
            "industry_section"} <= remembered
    assert not remembered & {"rd_intensity", "log_revenue"}  # numbers are not memoised
    pair = pipeline.build_features(dataset, SCORE_YEAR, firm_ids=list(firms[:2]))
    pd.testing.assert_frame_equal(pair, batch.loc[list(firms[:2])], check_exact=True)


def test_a_remembered_node_is_handed_out_as_a_copy(monkeypatch):
    monkeypatch.setattr(pipeline, "_NODE_MEMO", {})
    calls = []

    def province_flag(firm_province):
        calls.append(1)
        return (firm_province == "33").astype(float)

    resolver = pipeline._Resolver({}, financial=None, n_firms=1)
    first = resolver._memoised("flag", province_flag, {"firm_province": pd.Series(["33"])})
    first.iloc[0] = -1.0  # a caller writing into what it got
    again = pipeline._Resolver({}, financial=None, n_firms=1)._memoised(
        "flag", province_flag, {"firm_province": pd.Series(["33"])})
    assert again.tolist() == [1.0] and len(calls) == 1  # remembered, and intact
    other = resolver._memoised("flag", province_flag, {"firm_province": pd.Series(["44"])})
    assert other.tolist() == [0.0] and len(calls) == 2
    numbers = resolver._memoised("flag", lambda firm_province: firm_province * 2,
                                 {"firm_province": pd.Series([1.5])})
    assert numbers.tolist() == [3.0] and len(pipeline._NODE_MEMO) == 2  # not remembered
