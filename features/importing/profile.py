"""Import profiles: which headers of an export are which contract columns, which file is
which table, and the money unit of each table (see profiles/default.toml).

A user's profile has the same layout as the shipped one and is merged in front of it:
its headers, file names and units win.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from features.plausibility import MONEY_UNITS

DEFAULT_PROFILE = Path(__file__).parent / "profiles" / "default.toml"
# A unit written in a header: "营业收入(万元)", "营业收入（千元）", "Revenue [CNY 10k]".
_HEADER_UNIT = re.compile(r"\s*[(（\[【]\s*([^)）\]】]*)\s*[)）\]】]\s*$")
_UNIT_WORDS = {"万元": "wan", "万": "wan", "cny 10k": "wan", "10k cny": "wan",
               "千元": "thousand", "千": "thousand", "cny 1000": "thousand",
               "cny thousand": "thousand", "thousand cny": "thousand",
               "元": "yuan", "cny": "yuan", "yuan": "yuan", "rmb": "yuan"}


class ImportProblem(ValueError):
    """A problem with the exports, the profile or the lists that the user can fix."""


@dataclass
class Profile:
    """Aliases per table (header -> contract column), file names per table, money unit per
    table, and the header aliases of a name-only list."""

    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)
    money_unit: dict[str, str] = field(default_factory=dict)
    list_columns: dict[str, str] = field(default_factory=dict)


def load_profile(path: str | Path | None = None, money_unit: str | None = None) -> Profile:
    """The shipped profile with the user's `path` merged in front; `money_unit` (the
    command's --money-unit) replaces the unit of every table."""
    layers = [_read(DEFAULT_PROFILE)]
    if path is not None:
        layers.insert(0, _read(Path(path)))
    profile = Profile()
    for layer in reversed(layers):  # the shipped one first, then the user's on top
        for table, spec in layer.get("tables", {}).items():
            aliases = profile.columns.setdefault(table, {})
            for column, names in spec.get("columns", {}).items():
                aliases.update({header_key(n)[0]: column for n in _names(names, path)})
            files = [f.lower() for f in _names(spec.get("files", []), path)]
            profile.files[table] = files + [f for f in profile.files.get(table, [])
                                            if f not in files]
            if "money_unit" in spec:
                profile.money_unit[table] = str(spec["money_unit"])
        for column, names in layer.get("list", {}).get("columns", {}).items():
            profile.list_columns.update({header_key(n)[0]: column for n in _names(names, path)})
    if money_unit is not None:  # the command's option is the last word, for every table
        profile.money_unit = dict.fromkeys(profile.money_unit, money_unit)
    for table, unit in profile.money_unit.items():
        if unit not in MONEY_UNITS:
            raise ImportProblem(f"money unit {unit!r} of {table} is not one of "
                                f"{', '.join(MONEY_UNITS)}")
    return profile


def header_key(header: str) -> tuple[str, str | None]:
    """(header trimmed, lower case, without a bracketed unit; the unit: yuan, thousand, wan
    or None). "营业收入（万元）" -> ("营业收入", "wan")."""
    text = str(header).strip().lstrip("\ufeff")
    unit = None
    if found := _HEADER_UNIT.search(text):
        unit = _UNIT_WORDS.get(found[1].strip().lower())
        if unit is not None:
            text = text[: found.start()]
    return " ".join(text.lower().split()), unit


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImportProblem(f"profile {path}: cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ImportProblem(f"profile {path}: not valid TOML ({exc})") from None


def _names(value, path) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImportProblem(f"profile {path or DEFAULT_PROFILE}: header and file names must "
                            f"be lists of text, got {value!r}")
    return value
