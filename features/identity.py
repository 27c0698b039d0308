"""Who a firm is, for people reading an output: its name, province and industry beside the id."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.regions import province_names

IDENTITY_COLUMNS = ["name", "province", "province_en", "province_zh", "industry_code"]


def firm_identity(firms: pd.DataFrame, firm_ids) -> pd.DataFrame:
    """One row per id of ``firm_ids`` (in that order, RangeIndex): the firm's ``name``,
    ``province`` code with its English and Chinese names, and ``industry_code``, from the
    firms table (empty where the table lacks the firm or the optional column)."""
    # firm_id is unique in the firms table (the contract), so an index lookup will do.
    source = pd.Index(firms["firm_id"].astype(object)).get_indexer(
        np.asarray(firm_ids, dtype=object))

    def column(name: str) -> np.ndarray:
        if name not in firms.columns:
            return np.full(len(firm_ids), None, dtype=object)
        # Missing -> None on the object array itself (no Series: a one-firm answer would
        # pay pandas' fixed costs three times per column).
        values = np.asarray(firms[name].array.take(source, allow_fill=True), dtype=object)
        values[pd.isna(values)] = None
        return values

    province = column("province")
    return pd.DataFrame({
        "name": column("name"),
        "province": province,
        "province_en": province_names(province, "en"),
        "province_zh": province_names(province, "zh"),
        "industry_code": column("industry_code"),
    }, columns=IDENTITY_COLUMNS)
