"""Which rulebooks exist, and which one is in force for a tier and an as-of year.

The in-force dates (and their source) are data in each TOML file; this module reads them,
so check, score, the API, the audit, the reasons and the report all name the same rulebook.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import pandas as pd

from features.domain import TIERS, check_tier
from features.rules.book import read_rulebook
from features.rules.types import RULEBOOK_DIR, Rulebook

# National lists are announced in the summer (the fourth Little Giant batch in August 2022,
# already under the Interim Measures in force from 1 August), so a year's lists are judged
# by the rulebook in force on this day of the year.
LIST_DAY = (9, 1)


@cache
def _read_cached(path: Path, mtime: float) -> Rulebook:
    return read_rulebook(path)


def _read(path: Path) -> Rulebook:
    return _read_cached(path.resolve(), path.stat().st_mtime)


def available_rulebooks() -> pd.DataFrame:
    """One row per rulebook file: id, code, year, tier, in force from/to, confirmed, counts, path."""
    rows = []
    for path in sorted(RULEBOOK_DIR.glob("*.toml")):
        rb = _read(path)
        rows.append(
            {
                "id": rb.id,
                "code": rb.code,
                "year": rb.year,
                "tier": rb.tier,
                "name_en": rb.name_en,
                "in_force_from": rb.in_force_from,
                "in_force_to": rb.in_force_to,
                "confirmed": rb.confirmed,
                "n_criteria": len(rb.criteria),
                "n_unconfirmed": sum(not c.confirmed for c in rb.criteria),
                "scored": rb.score is not None,
                "path": str(path),
            }
        )
    return pd.DataFrame(rows)


def load_rulebook(name: str | Path, tier: str | None = None) -> Rulebook:
    """A rulebook by path to a TOML file, by id ("little_giant_2022"), code ("lg22") or year
    plus tier ("2022", tier="little_giant"). Raises KeyError if none or several match."""
    path = Path(name)
    if path.suffix == ".toml":
        return _read(path)
    table = available_rulebooks()
    hit = table[
        (table["id"] == str(name)) | (table["code"] == str(name)) | (table["year"] == str(name))
    ]
    if tier is not None:
        hit = hit[hit["tier"] == tier]
    if len(hit) != 1:
        options = ", ".join(f"{r.year}/{r.tier} ({r.id})" for r in table.itertuples())
        raise KeyError(f"{len(hit)} rulebooks match {name!r} tier={tier!r}; available: {options}")
    return _read(Path(hit["path"].iloc[0]))


def list_date(year: int) -> dt.date:
    """The day a year's lists are taken to be decided (LIST_DAY of ``year``)."""
    return dt.date(int(year), *LIST_DAY)


def rulebook_in_force(tier: str, year: int) -> Rulebook:
    """The rulebook of ``tier`` in force for the lists of as-of year ``year``.

    The one whose ``in_force_from`` .. ``in_force_to`` (TOML dates, each with the rulebook's
    ``source``) contains :func:`list_date` of the year; before the oldest rulebook on file,
    the oldest one (the earliest criteria known); several in force: the newest. Raises
    KeyError when the tier has no rulebook at all.
    """
    check_tier(tier)
    day = list_date(year)
    books = [_read(Path(p)) for p in available_rulebooks().query("tier == @tier")["path"]]
    if not books:
        raise KeyError(f"no rulebook of tier {tier!r}")
    books.sort(key=_start)
    in_force = [rb for rb in books if _start(rb) <= day <= (rb.in_force_to or dt.date.max)]
    if in_force:
        return in_force[-1]
    started = [rb for rb in books if _start(rb) <= day]
    return started[-1] if started else books[0]


def _start(rb: Rulebook) -> dt.date:
    return rb.in_force_from or dt.date.min


def in_force_note(rulebook: Rulebook, year: int) -> str:
    """Why ``rulebook`` applies to as-of ``year``: its in-force dates and their source."""
    start = rulebook.in_force_from.isoformat() if rulebook.in_force_from else "its issue"
    end = rulebook.in_force_to.isoformat() if rulebook.in_force_to else "today"
    day = list_date(year)
    if (rulebook.in_force_from or dt.date.min) <= day <= (rulebook.in_force_to or dt.date.max):
        when = f"in force on {day.isoformat()}"
    else:
        when = f"the nearest on file to {day.isoformat()}"
    return f"{rulebook.id} ({when}: {start} to {end}; {rulebook.source})"


def resolve_rulebooks(spec: str | None, year: int, tiers: tuple[str, ...] = TIERS, *,
                      files: bool = True) -> dict[str, Rulebook]:
    """The rulebook of each tier for as-of ``year``: the one in force (``spec`` None), or
    what ``spec`` names, a comma-separated list of rulebook years ("2022": per tier the
    newest rulebook of that year or before, else its oldest) and rulebook ids, codes or
    TOML paths (each for its own tier; the other tiers keep the one in force). With
    ``files=False`` only the shipped rulebooks can be named (no path is opened).

    Raises KeyError naming what is available when a part of ``spec`` matches nothing.
    """
    books = {tier: rulebook_in_force(tier, year) for tier in tiers}
    if spec is None or not str(spec).strip():
        return books
    table = available_rulebooks()
    for part in (p.strip() for p in str(spec).split(",") if p.strip()):
        if part.isdigit():
            for tier in tiers:
                of_tier = table[table["tier"] == tier].sort_values("year")
                older = of_tier[of_tier["year"].astype(int) <= int(part)]
                chosen = older if len(older) else of_tier
                books[tier] = _read(Path(chosen["path"].iloc[-1 if len(older) else 0]))
            continue
        try:
            if not files and (part.endswith(".toml") or "/" in part or "\\" in part):
                raise KeyError("rulebook files cannot be named here")
            rb = load_rulebook(part)
        except (KeyError, OSError, ValueError) as exc:  # ValueError: TOML or rulebook errors
            options = ", ".join(table["id"])
            raise KeyError(f"no rulebook matches {part!r} ({exc}); available: {options}, "
                           f"or a year such as 2022") from None
        if rb.tier in tiers:
            books[rb.tier] = rb
    return books
