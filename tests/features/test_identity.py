"""A firm's identity (name, province and its names, industry) is looked up alike in a
short firms table (an API request: a dict of its ids) and a long one (an index)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.domain import FEW_ROWS
from features.identity import IDENTITY_COLUMNS, firm_identity


def _firms(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "firm_id": pd.array([f"F{i:04d}" for i in range(n)], dtype="str"),
        "name": pd.array([f"企业{i}" if i % 5 else None for i in range(n)], dtype="str"),
        "province": pd.array([["33", "44", "99", None][i % 4] for i in range(n)], dtype="str"),
    })


def test_a_short_and_a_long_firms_table_give_the_same_identities():
    long = _firms(3 * FEW_ROWS)
    wanted = np.array(["F0007", "nobody", "F0000", "F0010", "F0001"], dtype=object)
    short = long[long["firm_id"].isin(wanted)].reset_index(drop=True)
    assert len(short) <= FEW_ROWS < len(long)
    for ids in (wanted, list(wanted), pd.Index(wanted), wanted.astype(str)):
        got = firm_identity(short, ids)
        pd.testing.assert_frame_equal(got, firm_identity(long, ids))
        assert list(got.columns) == IDENTITY_COLUMNS
    got = firm_identity(short, wanted)
    names = [None if pd.isna(v) else v for v in got["name"]]
    assert names == ["企业7", None, None, None, "企业1"]  # unknown firm, names left empty
    provinces = [None if pd.isna(v) else v for v in got["province_zh"]]
    assert provinces == [None, None, "浙江省", None, "广东省"]  # 99 is no province
    assert got["industry_code"].isna().all()  # the column is optional
