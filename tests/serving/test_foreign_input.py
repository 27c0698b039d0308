"""Broken and foreign variants of a generated dataset, as a new user brings them: for each,
the exit code, the first line of the message, no traceback, no output left behind on
failure, and rejects where promised. One table, one row per variant."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from serving.cli import app

TABLES = ("firms", "financials", "patents", "certifications")
MONEY = ["revenue", "main_revenue", "net_profit", "total_assets", "total_liabilities",
         "rd_expense", "export_revenue", "equity_raised", "subsidies"]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A small generated dataset as CSV: the variants start from a copy of it."""
    from training.synthetic import generate_universe, write_universe

    out = tmp_path_factory.mktemp("foreign") / "base"
    write_universe(generate_universe(n_firms=300, seed=3), out, fmt="csv")
    (out / "truth.parquet").unlink()
    return out


def read(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)


def write(folder: Path, table: str, frame: pd.DataFrame, **kwargs) -> None:
    frame.to_csv(folder / f"{table}.csv", index=False, **kwargs)


def edit(table: str, change: Callable[[pd.DataFrame], pd.DataFrame | None], **kwargs):
    def apply(folder: Path) -> None:
        frame = read(folder, table)
        changed = change(frame)
        write(folder, table, frame if changed is None else changed, **kwargs)
    return apply


def set_cell(table: str, column: str, value, rows=slice(0, 1)):
    def change(frame):
        frame.loc[frame.index[rows], column] = value
    return edit(table, change)


def scale_money(factor: float):
    def change(frame):
        for column in MONEY:
            numbers = pd.to_numeric(frame[column], errors="coerce") / factor
            frame[column] = numbers.map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    return edit("financials", change)


def recode(table: str, encoding: str):
    def apply(folder: Path) -> None:
        path = folder / f"{table}.csv"
        path.write_bytes(path.read_text(encoding="utf-8-sig").encode(encoding))
    return apply


def financials_before_founding(folder: Path) -> None:
    firms, fin = read(folder, "firms"), read(folder, "financials")
    first = fin.groupby("firm_id")["year"].min()
    firm = first.index[0]
    firms.loc[firms["firm_id"] == firm, ["founded_year", "niche_entry_year"]] = \
        str(int(first[firm]) + 2)
    write(folder, "firms", firms)


def numeric_ids_in_parquet(folder: Path) -> None:
    """firm_id "00001" in every CSV, but financials exported to Parquet as integers."""
    ids = {f: f"{i:05d}" for i, f in enumerate(read(folder, "firms")["firm_id"], start=1)}
    for table in TABLES:
        frame = read(folder, table)
        frame["firm_id"] = frame["firm_id"].map(ids)
        write(folder, table, frame)
    fin = read(folder, "financials")
    fin["firm_id"] = fin["firm_id"].astype(int)
    fin.to_parquet(folder / "financials.parquet", index=False)
    (folder / "financials.csv").unlink()


def stale_parquet(folder: Path) -> None:
    firms = read(folder, "firms")
    firms.iloc[: len(firms) // 2].to_parquet(folder / "firms.parquet", index=False)


def as_xlsx(table: str):
    def apply(folder: Path) -> None:
        read(folder, table).to_excel(folder / f"{table}.xlsx", index=False)
        (folder / f"{table}.csv").unlink()
    return apply


def duplicate_column(folder: Path) -> None:
    fin = read(folder, "financials")
    fin.insert(len(fin.columns), "revenue_copy", fin["revenue"])
    write(folder, "financials", fin.rename(columns={"revenue_copy": "revenue"}))


def header_only(table: str):
    return edit(table, lambda frame: frame.iloc[:0])


def all_patents_unknown(folder: Path) -> None:
    edit("patents", lambda f: f.assign(firm_id="X" + f["firm_id"]))(folder)


def write_bytes(table: str, data: bytes, suffix: str = ".csv"):
    def apply(folder: Path) -> None:
        (folder / f"{table}.csv").unlink()
        (folder / f"{table}{suffix}").write_bytes(data)
    return apply


def file_at(name: str):
    def apply(folder: Path) -> None:
        (folder.parent / name).write_text("I am a file")
    return apply


def duplicate_key(folder: Path) -> None:
    fin = read(folder, "financials")
    write(folder, "financials", pd.concat([fin, fin.iloc[:1]]))


@dataclass
class Case:
    name: str
    change: Callable[[Path], None] | None
    exit_code: int
    first_line: str  # expected in the first line of stderr (the message)
    args: tuple[str, ...] = ()  # extra arguments; {data} and {tmp} are filled in
    command: str = "validate"
    also: tuple[str, ...] = ()  # further text expected anywhere in the output
    not_in: tuple[str, ...] = ()  # text that must not appear
    rejects: str | None = None  # a reason expected in the rejects file


CASES = [
    Case("as generated", None, 0, "Read firms.csv: UTF-8, comma-separated"),
    Case("money in wan", scale_money(1e4), 2, "Invalid input data",
         also=("ten-thousand yuan (万元)", "--money-unit wan", "financials.csv, columns revenue")),
    Case("money in thousand", scale_money(1e3), 2, "Invalid input data",
         also=("thousand yuan (千元)", "--money-unit thousand")),
    Case("money in wan, declared", scale_money(1e4), 0, "Read firms.csv",
         args=("--money-unit", "wan"), also=("No problems found",)),
    Case("money in thousand, declared", scale_money(1e3), 0, "Read firms.csv",
         args=("--money-unit", "thousand")),
    Case("unknown money unit", None, 2, "Invalid input data", args=("--money-unit", "yen"),
         also=("money unit 'yen'", "yuan, thousand, wan")),
    Case("revenue 1e300", set_cell("financials", "revenue", "1e300"), 2, "Invalid input data",
         also=("column revenue, row 1: must be below 1e15 CNY",)),
    Case("parent revenue 1e300", set_cell("firms", "parent_revenue", "1e300"), 2,
         "Invalid input data", also=("column parent_revenue", "must be below 1e15")),
    Case("employees 1e20", set_cell("financials", "employees", "1e20"), 2, "Invalid input data",
         also=("column employees, row 1: is too large",)),
    Case("employees 1e8", set_cell("financials", "employees", "100000000"), 2,
         "Invalid input data", also=("must be below 10,000,000",)),
    Case("employees negative", set_cell("financials", "employees", "-3"), 2,
         "Invalid input data", also=("column employees, row 1: must be >= 0",)),
    Case("financials before founding", financials_before_founding, 0, "Read firms.csv",
         also=("row-level problems written",),
         rejects="financials before the firm was founded"),
    Case("header-only firms", header_only("firms"), 2, "Invalid input data",
         also=("firms.csv: has a header but no rows",)),
    Case("header-only financials", header_only("financials"), 2, "Invalid input data",
         also=("financials.csv: has a header but no rows",)),
    Case("int firm_id in parquet", numeric_ids_in_parquet, 2, "Invalid input data",
         also=("financials.parquet: all", "looks numeric", "'00001'", "leading zeros")),
    Case("all patents of unknown firms", all_patents_unknown, 2, "Invalid input data",
         also=("patents.csv: all", "refer to unknown firms")),
    Case("stale parquet beside csv", stale_parquet, 0, "Read firms.parquet",
         also=("Warning: firms: read firms.parquet (150 rows); firms.csv beside it has 300",),
         rejects="financials of an unknown firm"),
    Case("duplicated column", duplicate_column, 2, "Invalid input data",
         also=("financials.csv: a column name appears more than once ('revenue' at columns",)),
    Case("year FY2021", set_cell("financials", "year", "FY2021", slice(0, 3)), 2,
         "Invalid input data", also=("column year, rows 1, 2, 3: must be a year", "'FY2021'"),
         not_in=("unique",)),
    Case("GB18030 firms", recode("firms", "gb18030"), 0, "Read firms.csv: GB18030/GBK"),
    Case("UTF-16 firms", recode("firms", "utf-16"), 0, "Read firms.csv: UTF-16"),
    Case("UTF-8 with BOM", recode("firms", "utf-8-sig"), 0, "Read firms.csv: UTF-8 with BOM"),
    Case("semicolon-separated", edit("firms", lambda f: None, sep=";"), 0,
         "Read firms.csv: UTF-8, semicolon-separated"),
    Case("tab-separated", edit("financials", lambda f: None, sep="\t"), 0, "Read firms.csv",
         also=("financials.csv: UTF-8, tab-separated",)),
    Case("pipe-separated", edit("patents", lambda f: None, sep="|"), 0, "Read firms.csv",
         also=("patents.csv: UTF-8, vertical bar-separated",)),
    Case("colon-separated", edit("firms", lambda f: None, sep=":"), 2, "Invalid input data",
         also=("firms.csv: one column was read ('firm_id:name:province",
               "the delimiter is none of comma, semicolon, tab and vertical bar"),
         not_in=("required column is missing",)),
    Case("excel financials in wan", lambda f: (scale_money(1e4)(f), as_xlsx("financials")(f)),
         2, "Invalid input data", also=("financials.xlsx, columns revenue", "--money-unit wan")),
    Case("Chinese headers", edit("firms", lambda f: f.rename(columns={
        "firm_id": "统一社会信用代码", "name": "企业名称", "province": "所属省份",
        "industry_code": "行业代码", "founded_year": "成立年份", "niche_entry_year": "进入年份",
        "parent_id": "母公司", "parent_employees": "母公司员工", "parent_revenue": "母公司收入",
        "state_share": "国有持股", "listed_board": "上市板块"})), 2, "Invalid input data",
         also=("firms.csv: none of the contract's columns", "'统一社会信用代码'",
               "giantwatch import"), not_in=("required column is missing",)),
    Case("excel workbook", as_xlsx("firms"), 0, "Read firms.xlsx: 300 rows",
         also=("No problems found",)),
    Case("rejects under a file", lambda f: (file_at("afile")(f), financials_before_founding(f)),
         2, "Read firms.csv", args=("--rejects", "{tmp}/afile/rejects.csv"),
         also=("Error: cannot write under", "a file is in the way")),
    Case("data is a file", file_at("afile"), 2, "Usage: giantwatch validate",
         args=("--data", "{tmp}/afile"), also=("Invalid value for '--data'",)),
    Case("missing table", lambda f: (f / "patents.csv").unlink(), 2, "Invalid input data",
         also=("patents: table is missing",)),
    Case("missing required column", edit("firms", lambda f: f.drop(columns="province")), 2,
         "Invalid input data", also=("firms.csv, column province: required column is missing",),
         not_in=("FirmsSchema",)),
    Case("negative revenue", set_cell("financials", "revenue", "-5"), 2, "Invalid input data",
         also=("column revenue, row 1: must be >= 0",)),
    Case("unknown province", set_cell("firms", "province", "99"), 2, "Invalid input data",
         also=("column province, row 1",)),
    Case("bad date", set_cell("patents", "filed", "31/12/2019"), 2, "Invalid input data",
         also=("column filed, row 1: must be a date",)),
    Case("empty file", write_bytes("firms", b""), 2, "Invalid input data",
         also=("firms.csv: the file is empty",)),
    Case("corrupt parquet", write_bytes("firms", b"PAR1 not really", ".parquet"), 2,
         "Invalid input data", also=("firms.parquet: cannot be read as Parquet",)),
    Case("corrupt workbook", write_bytes("firms", b"PK\x03\x04 nope", ".xlsx"), 2,
         "Invalid input data", also=("firms.xlsx: cannot be read as an Excel workbook",)),
    Case("duplicate key", duplicate_key, 2, "Invalid input data",
         also=("columns firm_id and year", "must be unique together")),
    Case("unknown tier", set_cell("certifications", "tier", "gold"), 2, "Invalid input data",
         also=("column tier, row 1: must be one of",)),
    Case("granted before filed", set_cell("patents", "granted", "1990-01-01"), 2,
         "Invalid input data", also=("column granted, row 1: must be >= filed",)),
    Case("state share 1.5", set_cell("firms", "state_share", "1.5"), 2, "Invalid input data",
         also=("column state_share, row 1: must be between 0 and 1",)),
    Case("certification year FY", set_cell("certifications", "year", "FY2020"), 2,
         "Invalid input data", also=("must be a year",), not_in=("unique",)),
    Case("check: out under a file", file_at("afile"), 2, "Error: cannot write under",
         command="check", args=("--year", "2024", "--out", "{tmp}/afile/c.csv")),
    Case("check: missing rulebook file", None, 2, "Error: no rulebook matches",
         command="check", args=("--year", "2024", "--out", "{tmp}/c.csv",
                                "--rulebook", "{tmp}/missing.toml")),
    Case("check: not a rulebook", lambda f: (f.parent / "x.toml").write_text("x = 1"), 2,
         "Error: no rulebook matches", command="check",
         args=("--year", "2024", "--out", "{tmp}/c.csv", "--rulebook", "{tmp}/x.toml")),
    Case("check: broken TOML", lambda f: (f.parent / "x.toml").write_text("[[[ x"), 2,
         "Error: no rulebook matches", command="check",
         args=("--year", "2024", "--out", "{tmp}/c.csv", "--rulebook", "{tmp}/x.toml")),
    Case("check: rulebook is a folder", None, 2, "Error: no rulebook matches",
         command="check", args=("--year", "2024", "--out", "{tmp}/c.csv",
                                "--rulebook", "{tmp}")),
    Case("check: money in wan", scale_money(1e4), 2, "Invalid input data", command="check",
         args=("--year", "2024", "--out", "{tmp}/c.csv"), also=("--money-unit wan",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_variant(case: Case, base: Path, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(base, data)
    if case.change is not None:
        case.change(data)
    before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    args = [a.format(data=data, tmp=tmp_path) for a in case.args]
    if "--data" not in args:
        args = ["--data", str(data), *args]
    result = CliRunner().invoke(app, [case.command, *args])
    output = result.stdout + result.stderr
    assert result.exit_code == case.exit_code, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    first = result.stderr.strip().splitlines()[0] if result.stderr.strip() else ""
    assert case.first_line in first, output
    flat = " ".join(output.split())
    for text in case.also:
        assert " ".join(text.split()) in flat, output
    for text in case.not_in:
        assert text not in output, output
    made = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")} - before
    if case.exit_code != 0:
        assert not made, f"output left behind: {made}"
    if case.rejects is not None:
        rejects = pd.read_csv(data / "rejects.csv", encoding="utf-8-sig")
        assert case.rejects in set(rejects["reason"]), rejects["reason"].unique()
        assert np.all(rejects["row"] >= 1)
    else:
        assert not (data / "rejects.csv").exists()


def test_the_table_has_at_least_forty_variants():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)
