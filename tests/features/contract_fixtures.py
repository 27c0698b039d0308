"""A tiny valid dataset in the raw contract format, and a writer for CSV or Parquet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

NA = None


def contract_tables() -> dict[str, pd.DataFrame]:
    """Three firms, six fiscal years, five patents, four certification decisions.

    Values are as a user would export them: ids and codes as text, money in yuan,
    dates as "YYYY-MM-DD" text, empty optional cells as None/NaN.
    """
    firms = pd.DataFrame(
        {
            "firm_id": ["0001", "0002", "0003"],
            "name": ["浙江精工机器人有限公司", "Shenzhen Soft Co", NA],
            "province": ["33", "44", "32"],
            "industry_code": ["C3491", "I65", "C39"],
            "founded_year": [2005, 2010, 1998],
            "niche_entry_year": [2008, NA, 2001],
            "parent_id": [NA, "P-1", NA],
            "parent_employees": [NA, 12000, NA],
            "parent_revenue": [NA, 5.0e9, NA],
            "state_share": [0.1, NA, 0.0],
            "listed_board": ["none", NA, "neeq"],
        }
    )
    financials = pd.DataFrame(
        {
            "firm_id": ["0001", "0001", "0002", "0002", "0003", "0003"],
            "year": [2020, 2021, 2020, 2021, 2020, 2021],
            "revenue": [8.0e7, 9.5e7, 3.0e7, 3.3e7, 2.1e8, 2.4e8],
            "main_revenue": [7.5e7, 9.0e7, NA, 3.0e7, 2.0e8, 2.2e8],
            "net_profit": [6.0e6, 7.0e6, -1.0e6, 5.0e5, 2.0e7, 2.2e7],
            "total_assets": [1.2e8, 1.3e8, 4.0e7, 4.2e7, 3.0e8, 3.1e8],
            "total_liabilities": [5.0e7, 5.5e7, 2.0e7, 2.1e7, 1.0e8, 1.1e8],
            "rd_expense": [4.0e6, 5.0e6, 3.0e6, 3.2e6, 1.0e7, 1.1e7],
            "employees": [150, 160, 80, 85, 420, 430],
            "rd_staff": [30, 32, NA, 20, 60, 62],
            "export_revenue": [1.0e7, NA, NA, 0.0, 5.0e7, 6.0e7],
            "equity_raised": [NA, 2.0e7, NA, NA, 0.0, 0.0],
            "subsidies": [5.0e5, 6.0e5, NA, 1.0e5, 2.0e6, 2.0e6],
            "domestic_rank": [3, 2, NA, NA, 1, 1],
            "domestic_share": [0.12, 0.15, NA, NA, 0.31, 0.33],
            "global_rank": [NA, NA, NA, NA, 8, 7],
            "rd_institution": ["provincial", "provincial", NA, "city", "national", "national"],
            "high_tech": [True, True, NA, False, True, True],
            "quality_cert": [True, True, False, False, True, NA],
            "own_brand": [NA, True, True, True, False, False],
        }
    )
    patents = pd.DataFrame(
        {
            "patent_id": [
                "CN201910000001",
                "CN201920000002",
                "CN202030000003",
                "2020SR000004",
                "CN201810000005",
            ],
            "firm_id": ["0001", "0001", "0002", "0002", "0003"],
            "kind": ["invention", "utility", "design", "software", "invention"],
            "filed": ["2019-03-01", "2019-05-10", "2020-01-15", "2020-02-01", "2018-06-30"],
            "granted": ["2021-04-02", "2019-11-20", "2020-06-01", "2020-03-01", NA],
            "lapsed": [NA, "2021-12-31", NA, NA, NA],
            "ipc": ["B25J", "B25J", NA, NA, "G06F"],
        }
    )
    certifications = pd.DataFrame(
        {
            "firm_id": ["0001", "0001", "0003", "0003"],
            "tier": ["specialized", "little_giant", "little_giant", "champion"],
            "year": [2019, 2021, 2020, 2021],
            "batch": [NA, 3, 2, 6],
            "event": ["granted", "granted", NA, "granted"],
        }
    )
    return {
        "firms": firms,
        "financials": financials,
        "patents": patents,
        "certifications": certifications,
    }


def write_tables(tables: dict[str, pd.DataFrame], folder: str | Path, fmt: str = "csv") -> Path:
    """Write each table as `folder/NAME.csv` or `folder/NAME.parquet`; returns `folder`.

    For Parquet the date columns of patents are written as real dates (date32), as a
    user's Parquet export would have them.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        elif fmt == "parquet":
            frame = frame.copy()
            for column in ("filed", "granted", "lapsed"):
                if name == "patents" and column in frame and frame[column].dtype != object:
                    continue
                if name == "patents" and column in frame:
                    frame[column] = [
                        dt.date.fromisoformat(v) if isinstance(v, str) else None
                        for v in frame[column]
                    ]
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            raise ValueError(f"unknown format {fmt!r}")
    return folder
