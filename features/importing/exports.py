"""`import_exports`: a folder of real exports (Chinese or English headers, money in 元, 千元
or 万元, any encoding, CSV or Excel) plus name-only MIIT lists -> a contract dataset.

1. each table's file is found by its name (profile `files`), read by `features.files`;
2. headers are mapped to contract columns (profile `columns`; a unit written in a header
   wins over the table's `money_unit`), money is converted to yuan, a founding date gives
   founded_year;
3. each list row's firm name is matched to `firms.name` (`names.match_names`); matched rows
   become certifications, the others go to the rejects;
4. the tables are validated by the contract (`from_frames`, every rule) and written as
   Parquet with rejects.csv and match_report.csv, all or nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.atomic import move_folder_into_place, write_csv
from features.contract import (
    REJECT_COLUMNS,
    REQUIRED_ROWS,
    TABLES,
    ContractError,
    from_frames,
)
from features.files import FORMATS, TableFileError, read_table
from features.importing.names import MATCH_KINDS, match_names, uscc_is_valid
from features.importing.profile import ImportProblem, Profile, header_key, load_profile
from features.parsers import parse_number, parse_province
from features.plausibility import MONEY_UNITS
from features.schemas import MONEY_COLUMNS

OUTPUTS = [f"{t}.parquet" for t in TABLES] + ["rejects.csv", "match_report.csv"]
UNMATCHED_RULE = "name must match exactly one firm of firms"
_TIER_WORDS = (("小巨人", "little_giant"), ("单项冠军", "champion"), ("冠军", "champion"),
               ("专精特新", "specialized"), ("创新型", "innovative"))
_CHINESE_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九十")}


@dataclass
class ImportSummary:
    """What `import_exports` read and wrote."""

    out_dir: Path
    rows: dict[str, int]
    read: list[str] = field(default_factory=list)  # "firms <- 企业名录.xlsx: 2,000 rows"
    mapped: dict[str, dict[str, str]] = field(default_factory=dict)  # header -> column
    units: dict[str, str] = field(default_factory=dict)  # "financials.revenue" -> "wan"
    matches: pd.DataFrame | None = None  # counts per list and kind
    rejected: int = 0
    warnings: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        """What was read, how headers were mapped and which columns were converted."""
        lines = [f"Read {line}" for line in self.read]
        lines += [f"{table}: " + ", ".join(f"{h} -> {c}" for h, c in mapped.items())
                  for table, mapped in self.mapped.items() if mapped]
        if self.units:
            lines.append("Converted to yuan: " + ", ".join(f"{c} ({u})" for c, u in
                                                          self.units.items()))
        return lines


def import_exports(src: str | Path, out_dir: str | Path, profile: str | Path | None = None,
                   lists: list[str | Path] | tuple = (), money_unit: str | None = None
                   ) -> ImportSummary:
    """Turn the exports in `src` into a contract dataset in `out_dir` (new or empty).
    Raises ImportProblem or ContractError; nothing is written then."""
    src, out_dir = Path(src), Path(out_dir)
    if not src.is_dir():
        raise ImportProblem(f"{src}: {'is a file, not' if src.exists() else 'no such'} folder")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ImportProblem(f"{out_dir}: must be a new or empty folder (it "
                            f"{'is a file' if not out_dir.is_dir() else 'holds files'})")
    spec = load_profile(profile, money_unit)
    for path in map(Path, lists):
        if not path.is_file():
            raise ImportProblem(f"list {path}: no such file")
    summary = ImportSummary(out_dir, rows={})
    raw = {}
    for table in TABLES:
        file = _find(src, spec.files.get(table, [table]), summary)
        if file is None:
            if table in REQUIRED_ROWS:
                names = ", ".join(spec.files.get(table, [table])[:4])
                raise ImportProblem(f"{table}: no file for it in {src} (looked for {names}, "
                                    f"... with {', '.join(FORMATS)})")
            continue
        raw[table] = _mapped(table, _read(file, summary), spec, summary, file.name)
    certifications, list_rejects, report = _lists(lists, raw["firms"], spec, summary)
    if len(certifications):
        raw["certifications"] = pd.concat([raw.get("certifications"), certifications],
                                          ignore_index=True)
    for table in ("patents", "certifications"):
        raw.setdefault(table, pd.DataFrame())
    dataset = from_frames(raw, source=str(src), row_base=1, required=REQUIRED_ROWS)
    summary.warnings += _uscc_warnings(dataset.firms["firm_id"])
    rejects = pd.concat([dataset.rejects, list_rejects], ignore_index=True)
    summary.rows = {t: len(getattr(dataset, t)) for t in TABLES}
    summary.rejected = len(rejects)
    _write(out_dir, {t: getattr(dataset, t) for t in TABLES}, rejects, report)
    return summary


def _find(src: Path, stems: list[str], summary: ImportSummary) -> Path | None:
    """The first file of `src` whose name (any case, any of FORMATS) is in `stems`."""
    files = {f.stem.lower(): f for f in sorted(src.iterdir())
             if f.is_file() and f.suffix.lower() in FORMATS}
    found = [files[s] for s in stems if s in files]
    if len(found) > 1:
        summary.warnings.append(f"{found[0].name} used; {', '.join(f.name for f in found[1:])} "
                                f"also look like the same table and are ignored")
    return found[0] if found else None


def _read(file: Path, summary: ImportSummary) -> pd.DataFrame:
    try:
        read = read_table(file)
    except TableFileError as exc:
        raise ImportProblem(str(exc)) from None
    summary.read.append(read.describe())
    return read.frame


def _mapped(table: str, frame: pd.DataFrame, spec: Profile, summary: ImportSummary,
            label: str) -> pd.DataFrame:
    """Contract column names and yuan; unknown columns are kept as they are."""
    aliases, renamed, units = spec.columns.get(table, {}), {}, {}
    for header in frame.columns:
        key, unit = header_key(header)
        column = aliases.get(key, key)
        if column in renamed.values():
            raise ImportProblem(f"{label}: columns {header!r} and "
                                f"{next(h for h, c in renamed.items() if c == column)!r} "
                                f"both map to {column}; keep one or name it in a profile")
        renamed[header] = column
        if unit:
            units[column] = unit
    frame = frame.rename(columns=renamed)
    summary.mapped[table] = {h: c for h, c in renamed.items() if str(h) != c}
    for column in MONEY_COLUMNS.get(table, ()):
        unit = units.get(column, spec.money_unit.get(table, "yuan"))
        if column not in frame or unit == "yuan":
            continue
        values, bad = parse_number(frame[column])
        if bad.any():  # left as written: the contract reports the cells that are no number
            continue
        frame[column] = values * MONEY_UNITS[unit]
        summary.units[f"{table}.{column}"] = unit
    if table == "firms" and "founded_year" not in frame and "founded_date" in frame:
        frame["founded_year"] = frame["founded_date"].astype(str).str.extract(
            r"((?:19|20)\d\d)", expand=False)
    return frame


def _lists(lists, firms: pd.DataFrame, spec: Profile, summary: ImportSummary):
    """(certification rows of matched list rows, rejects of the others, match report)."""
    rows, rejects, reports = [], [], []
    known = firms.copy()
    known["province"] = parse_province(known["province"])[0] if "province" in known else None
    for path in map(Path, lists):
        frame = _read(path, summary)
        frame = frame.rename(columns={h: spec.list_columns.get(header_key(h)[0],
                                                               header_key(h)[0])
                                      for h in frame.columns})
        missing = [c for c in ("name", "tier", "year") if c not in frame]
        if missing:
            raise ImportProblem(f"list {path.name}: column {missing[0]} is missing (a list "
                                f"has name, tier, year and optionally batch and province)")
        if "name" not in known:
            raise ImportProblem("firms: no name column, so a list cannot be matched to it")
        provinces = parse_province(frame["province"])[0] if "province" in frame else None
        matched = match_names(frame["name"], provinces, known)
        report = pd.DataFrame({"list": path.name, "row": frame.index + 1,
                               "name": frame["name"], "province": provinces,
                               "kind": matched["kind"], "score": matched["score"],
                               "firm_id": matched["firm_id"],
                               "matched_name": matched["matched_name"]})
        reports.append(report)
        ok = matched["firm_id"].notna()
        rows.append(pd.DataFrame({
            "firm_id": matched.loc[ok, "firm_id"], "tier": frame.loc[ok, "tier"].map(_tier),
            "year": frame.loc[ok, "year"],
            "batch": frame.loc[ok, "batch"].map(_batch) if "batch" in frame else None,
            "event": "granted"}))
        bad = report[~ok]
        rejects.append(pd.DataFrame({
            "table": f"list {path.name}", "row": bad["row"], "column": "name",
            "rule": UNMATCHED_RULE, "reason": "name " + bad["kind"],
            "record": [json.dumps(r, ensure_ascii=False, default=str)
                       for r in frame.loc[~ok].to_dict(orient="records")]}))
    report = pd.concat(reports, ignore_index=True) if reports else None
    if report is not None:
        summary.matches = (report.groupby(["list", "kind"]).size().unstack(fill_value=0)
                           .reindex(columns=list(MATCH_KINDS), fill_value=0))
    certifications = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    list_rejects = pd.concat(rejects, ignore_index=True) if rejects else \
        pd.DataFrame(columns=REJECT_COLUMNS)
    return certifications, list_rejects, report


def _tier(value) -> str:
    text = str(value)
    return next((tier for word, tier in _TIER_WORDS if word in text), text)


def _batch(value):
    """"3", "第三批", "第3批" -> 3; anything else unchanged (the contract judges it)."""
    text = re.sub(r"^第|批$", "", str(value).strip())
    if text in _CHINESE_DIGITS:
        return _CHINESE_DIGITS[text]
    return text


def _uscc_warnings(firm_ids: pd.Series) -> list[str]:
    """Codes of 18 characters with a wrong check character (kept: a warning only)."""
    codes = firm_ids[firm_ids.str.len() == 18]
    wrong = codes[~codes.map(uscc_is_valid).astype(bool)]
    if not len(wrong):
        return []
    shown = ", ".join(repr(v) for v in wrong.head(3))
    return [(f"firms: {len(wrong):,} firm_id values of 18 characters fail the check character "
             f"of a Unified Social Credit Code (GB 32100-2015), e.g. {shown}; kept as given")]


def _write(out_dir: Path, tables: dict[str, pd.DataFrame], rejects: pd.DataFrame,
           report: pd.DataFrame | None) -> None:
    """All files into a temporary folder beside `out_dir`, then moved in."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        names = []
        for table, frame in tables.items():
            frame.to_parquet(tmp / f"{table}.parquet", index=False)
            names.append(f"{table}.parquet")
        if len(rejects):
            write_csv(rejects, tmp / "rejects.csv")
            names.append("rejects.csv")
        if report is not None:
            write_csv(report, tmp / "match_report.csv")
            names.append("match_report.csv")
        move_folder_into_place(tmp, out_dir, names)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["ContractError", "ImportProblem", "ImportSummary", "import_exports"]
