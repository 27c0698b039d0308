"""Reading one table file as people save them: CSV in any common encoding and delimiter,
Excel workbooks and Parquet, with what was detected named for the summary.

`find_table(folder, name)` picks `name.parquet`, `name.csv` or `name.xlsx` (in that order:
the contract says Parquet wins) and warns when a lower-priority file beside it holds a
different number of rows; `read_table(path)` returns a `TableFile` (all CSV and Excel cells
as text, nothing guessed) or raises `TableFileError` with one sentence.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

FORMATS = (".parquet", ".csv", ".xlsx")
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
_SAMPLE_BYTES = 1 << 20  # enough bytes to tell an encoding and to read the header line
_CHINESE_CODECS = {"gb2312", "gbk", "gb18030", "hz"}


class TableFileError(ValueError):
    """A table file that cannot be read; the message is one sentence naming the file."""


@dataclass
class TableFile:
    """A table read from `path`: raw columns (CSV/Excel cells as text), the encoding and
    delimiter detected (CSV only) and the header as written."""

    frame: pd.DataFrame
    path: Path
    encoding: str | None = None
    delimiter: str | None = None

    def describe(self) -> str:
        """e.g. "firms.csv: GB18030, semicolon-separated, 2,000 rows"."""
        parts = [p for p in (self.encoding, self.delimiter and
                             f"{DELIMITERS[self.delimiter]}-separated") if p]
        return f"{self.path.name}: {', '.join(parts + [f'{len(self.frame):,} rows'])}"


def find_table(folder: Path, name: str) -> tuple[Path | None, list[str]]:
    """The file of table `name` in `folder` (Parquet, else CSV, else Excel) and warnings
    about files of the same table that are ignored and hold a different number of rows."""
    present = [folder / f"{name}{suffix}" for suffix in FORMATS
               if (folder / f"{name}{suffix}").is_file()]
    if not present:
        return None, []
    chosen, warnings = present[0], []
    for other in present[1:]:
        counts = (_row_count(chosen), _row_count(other))
        if None not in counts and counts[0] != counts[1]:
            warnings.append(f"{name}: read {chosen.name} ({counts[0]:,} rows); {other.name} "
                            f"beside it has {counts[1]:,} rows and is ignored (Parquet wins, "
                            f"then CSV): remove the stale file")
    return chosen, warnings


def read_table(path: Path, categories: tuple[str, ...] = ()) -> TableFile:
    """The table in `path`; `categories`: columns of few distinct values (enums) read from
    Parquet as pandas categoricals, decoded once per value instead of once per row."""
    if path.suffix == ".parquet":
        return TableFile(_read_parquet(path, categories), path)
    if path.suffix == ".xlsx":
        return _read_xlsx(path)
    return _read_csv(path)


def _row_count(path: Path) -> int | None:
    try:
        if path.suffix == ".parquet":
            return pq.ParquetFile(path).metadata.num_rows
        if path.suffix == ".xlsx":
            return None  # counting needs the whole workbook read: not worth it for a warning
        lines, last = 0, b"\n"
        with open(path, "rb") as handle:  # quoted line breaks are rare in exports
            while chunk := handle.read(1 << 24):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        return max(lines + (last != b"\n") - 1, 0)
    except (OSError, ValueError):
        return None


def _read_parquet(path: Path, categories: tuple[str, ...] = ()) -> pd.DataFrame:
    try:
        present = set(pq.read_schema(path).names) if categories else set()
        table = pq.read_table(path, read_dictionary=[c for c in categories if c in present])
    except (OSError, ValueError) as exc:
        raise TableFileError(f"{path.name}: cannot be read as Parquet ({exc})") from None
    names = [str(n) for n in table.column_names]
    _refuse_duplicates(path, names)
    frame = table.to_pandas(date_as_object=False)
    if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0:
        return frame
    named = any(name is not None for name in frame.index.names)
    return frame.reset_index(drop=not named)


def detect_encoding(sample: bytes) -> tuple[str, str]:
    """(Python codec, name for people) of a file starting with `sample`: a BOM decides;
    else UTF-8 if it decodes; else charset-normalizer's best guess, with the Chinese GB
    family read as GB18030 (a superset of GB2312 and GBK)."""
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", "UTF-8 with BOM"
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", "UTF-16"
    try:
        sample.decode("utf-8")
        return "utf-8", "UTF-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4:  # a character cut at the end of the sample
            return "utf-8", "UTF-8"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None:
        raise TableFileError("encoding not recognised")
    codec = best.encoding.lower().replace("_", "")
    if codec in _CHINESE_CODECS or codec.startswith("gb"):
        return "gb18030", "GB18030/GBK"
    if codec.startswith("utf16"):
        return "utf-16", "UTF-16"
    return best.encoding, best.encoding.upper()


def _read_csv(path: Path) -> TableFile:
    try:
        with open(path, "rb") as handle:
            sample = handle.read(_SAMPLE_BYTES)
    except OSError as exc:
        raise TableFileError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if not sample.strip():
        raise TableFileError(f"{path.name}: the file is empty (not even a header line)")
    try:
        codec, encoding = detect_encoding(sample)
    except TableFileError:
        raise TableFileError(f"{path.name}: the text encoding is not recognised; save it as "
                             "UTF-8 (or GB18030/GBK, UTF-16)") from None
    head = sample.decode(codec, errors="replace").lstrip("\ufeff")
    first_line = head.splitlines()[0] if head.splitlines() else ""
    delimiter = _sniff_delimiter(first_line)
    header = next(csv.reader([first_line], delimiter=delimiter), [])
    _refuse_duplicates(path, header)
    try:
        # All text, nothing guessed: "01", "007" and "NA" stay as written; empty = missing.
        # Arrow transcodes other encodings as it streams (no second copy of the file).
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, engine="pyarrow",
                            encoding=codec, sep=delimiter)
    except (ValueError, OSError, UnicodeError) as exc:
        raise TableFileError(f"{path.name}: cannot be read as {encoding} "
                             f"{DELIMITERS[delimiter]}-separated text ({exc})") from None
    frame.columns = [str(c).lstrip("\ufeff") for c in frame.columns]
    return TableFile(frame, path, encoding, delimiter)


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header line into the most fields (comma on a tie).
    Headers never hold these characters inside a name, so counting is safer than
    csv.Sniffer, which guesses from the data rows and can pick a character of a value."""
    counts = {d: len(next(csv.reader([header_line], delimiter=d), [])) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: (counts[d], d == ","))


def _read_xlsx(path: Path) -> TableFile:
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=object,
                               engine="openpyxl")
    except (ValueError, OSError, KeyError) as exc:
        raise TableFileError(f"{path.name}: cannot be read as an Excel workbook ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - openpyxl raises zipfile/XML errors of its own
        raise TableFileError(f"{path.name}: cannot be read as an Excel workbook "
                             f"({type(exc).__name__}: {exc})") from None
    sheet = next(iter(sheets.values()), pd.DataFrame())
    sheet = sheet.dropna(how="all")
    if sheet.empty:
        raise TableFileError(f"{path.name}: the first sheet is empty (not even a header row)")
    header = ["" if pd.isna(v) else str(v).strip() for v in sheet.iloc[0]]
    _refuse_duplicates(path, header)
    frame = sheet.iloc[1:].reset_index(drop=True)
    frame.columns = header
    # Cells as text, like a CSV: whole numbers without ".0", dates as ISO, empty as "".
    return TableFile(frame.apply(_excel_text), path)


def _excel_text(column: pd.Series) -> pd.Series:
    def one(value):
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        if isinstance(value, dt.datetime):
            return value.isoformat(sep=" ") if value.time() != dt.time() else \
                value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value)

    return column.map(one).astype(str)


def _refuse_duplicates(path: Path, header: list[str]) -> None:
    """A column named twice is fatal: which of the two holds the data is a guess."""
    names = [str(h).strip().lower() for h in header]
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        seen.setdefault(name, []).append(position)
    twice = {n: p for n, p in seen.items() if len(p) > 1 and n}
    if twice:
        listed = "; ".join(f"{n!r} at columns {', '.join(map(str, p))}" for n, p in twice.items())
        raise TableFileError(f"{path.name}: a column name appears more than once ({listed}); "
                             "each column must have a name of its own")

