"""The columns docs/OUTPUTS.md documents, per section, for the tests that hold outputs to it."""

from __future__ import annotations

import re
from pathlib import Path

from features.domain import TIERS

OUTPUTS = Path(__file__).resolve().parents[1] / "docs" / "OUTPUTS.md"


def documented(heading: str) -> set[str]:
    """Backticked names in the first column of the tables under the `## ...` heading that
    contains `heading`."""
    sections = re.split(r"^## ", OUTPUTS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    [section] = [s for s in sections if heading in s.splitlines()[0]]
    return set(re.findall(r"^\| `([^`]+)` \|", section, re.MULTILINE))


def generic(columns) -> set[str]:
    """Column names with each tier replaced by `<tier>`."""
    pattern = re.compile("|".join(sorted(TIERS, key=len, reverse=True)))
    return {pattern.sub("<tier>", str(c)) for c in columns}
