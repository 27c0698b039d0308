"""One measure of a firm in words: its value, the bar of the rulebook in force, and how it
compares with the year's other candidates.

    texts, implied = render("rd_intensity", X, rows, criterion_homes(rulebook)["rd_intensity"],
                            cohort=X)
    texts[0]    # "R&D intensity 2.8%: below the 3% bar, higher than 80% of candidates"
    implied[0]  # FAIL: the criterion's status the words state

Texts come from templates in `reason_templates.toml`, are formatted once per distinct
rounded value and assembled with numpy's vectorised string ops (a million firms per tier).
The words keep three facts apart: the value; whether it clears the bar of the criterion
that reads it (the "home" criterion of the assessed rulebook, the same evaluation as the
eligibility column); and its place among the year's candidates (a models.cohort.Cohort).
`render` returns, beside each text, the criterion status its words state, so the caller
can check it against the evaluation and never print a contradiction.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from features.rules.engine import PASS, UNKNOWN, leaf_codes
from models.cohort import Cohort, as_cohort
from models.values import STRING, column_values, format_values, is_missing

TEMPLATE_FILE = Path(__file__).with_name("reason_templates.toml")
NO_CLAIM = np.int8(-1)  # implied status of a text that states no criterion's outcome
# Below this many known values among the rows explained, a rank among them says nothing.
MIN_COHORT = 10
_STANDARD_FIELDS = {"label", "value", "bar", "relation", "bar_word", "bar_note", "s"}
_DEFAULT_TEXT = "{label} {value}"
_DEFAULT_BAR_TEXT = "{label} {value}: {relation} the {bar} {bar_word}{bar_note}"
_RANK_BAR_TEXT = "{label} {value}: {relation} the top {bar}"
_DEFAULT_MISSING = "{label} not reported"
_UNIT_FORMAT = {"fraction": "percent", "CNY": "money", "count": "count", "persons": "count",
                "years": "years", "rank": "rank", "1/0": "flag", "category": "category"}


@cache
def _template_file() -> tuple[dict, dict]:
    data = tomllib.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    return data.get("features", {}), data.get("names", {})


@cache
def _catalogue_units() -> dict[str, str]:
    from features.labels import feature_catalogue

    table = feature_catalogue()
    return dict(zip(table["name"], table["unit"]))


@cache
def template(feature: str) -> dict:
    """The template of one feature: from the file, else made from the catalogue's label and
    unit."""
    features, _ = _template_file()
    spec = dict(features.get(feature, {}))
    if "label" not in spec:
        from features.labels import feature_catalogue, feature_label

        known = feature in set(feature_catalogue()["name"])
        spec["label"] = feature_label(feature, "en") if known else feature.replace("_", " ")
    if "format" in spec:
        return spec
    unit = _catalogue_units().get(feature, "")
    fmt = _UNIT_FORMAT.get(unit, "number")
    if fmt == "flag":
        spec.update(yes=f"{spec['label']}: yes", no=f"{spec['label']}: no")
    return {**spec, "format": fmt}


@cache
def display_names(kind: str) -> dict[str, str]:
    """Display names of coded values (kind: province, macro_region, listed_board, ...);
    provinces by their English name in the one province table (features.regions)."""
    if kind == "province":
        from features.regions import PROVINCE_TABLE

        return dict(PROVINCE_TABLE["name_en"])
    return dict(_template_file()[1].get(kind, {}))


def criterion_name(criterion) -> str:
    """A criterion's English name as it reads inside a sentence: "R&D input by revenue band
    (>= 100M: ...)" reads "R&D input by revenue band"; "Debt ratio ..." reads "debt ratio ..."."""
    name = criterion.name_en.split(" (")[0]
    keep_case = name[1:2].isupper() or name[1:2] == "&"
    return name if keep_case else name[:1].lower() + name[1:]


@cache
def criterion_names(rulebook_id: str) -> dict[str, str]:
    """criterion id -> `criterion_name` for the rulebook file `rulebook_id`."""
    from features.rules import load_rulebook

    return {c.id: criterion_name(c) for c in load_rulebook(rulebook_id).criteria}


# ---------------------------------------------------------------------------------------
# Where a measure meets the rulebook: its home criterion

@dataclass(frozen=True)
class Home:
    """The criterion of a rulebook that judges one measure.

    entries: ((when node or None, case label, leaf), ...), the leaves comparing the measure
    alone with a threshold (a case's `when` chooses the case and is no bar); single: the
    criterion reads no other measure, so the measure's comparison is the criterion's outcome
    (checked per firm by the caller all the same).
    """

    criterion: object
    entries: tuple
    single: bool


@cache
def criterion_homes(rulebook) -> dict[str, Home]:
    """measure -> its Home in ``rulebook`` (a features.rules.Rulebook): the first criterion
    that reads it alone, else the first that reads it among others."""
    from features.rules.types import AllOf, AnyOf, Cases, Leaf

    def collect(node, when, label, found):
        if isinstance(node, Leaf):
            found.append((when, label, node))
        elif isinstance(node, (AllOf, AnyOf)):
            for child in node.children:
                collect(child, when, label, found)
        elif isinstance(node, Cases):
            for case in node.cases:
                collect(case.then, case.when, case.label, found)

    homes: dict[str, Home] = {}
    for criterion in rulebook.criteria:
        found: list = []
        collect(criterion.node, None, "", found)
        measures = list(dict.fromkeys(f for _, _, leaf in found for f in leaf.features))
        single = len(measures) == 1 and all(len(leaf.features) == 1 for _, _, leaf in found)
        for measure in measures:
            if measure in homes and (homes[measure].single or not single):
                continue
            entries: list = []
            for when, label, leaf in found:
                # One unconditioned bar per measure; cases each add theirs.
                if leaf.features == (measure,) and (
                        when is not None or not any(e[0] is None for e in entries)):
                    entries.append((when, label, leaf))
            homes[measure] = Home(criterion, tuple(entries), single)
    return homes


def rulebook_thresholds(rulebook, feature: str) -> list[tuple[float, str, str]]:
    """(threshold, comparison op, case label or "") of `feature` in `rulebook` (a Rulebook),
    e.g. [(0.03, ">=", "revenue >= 100M CNY"), (0.06, ">=", "revenue 50M-100M CNY")]."""
    home = criterion_homes(rulebook).get(feature)
    entries = home.entries if home is not None else ()
    return [(leaf.threshold, leaf.op, label) for _, label, leaf in entries if leaf.unit != "flag"]


def _bars(X: pd.DataFrame, rows: np.ndarray, entries: tuple):
    """Per row: the threshold of the case that applies (NaN: none applies or it is
    unknown), its leaf's index in `entries` (-1) and the case label."""
    from features.rules.engine import Columns, NodeEvaluator

    n = len(rows)
    bars, which = np.full(n, np.nan), np.full(n, -1)
    labels = np.full(n, "", dtype=object)
    evaluator = None
    for i, (when, label, leaf) in enumerate(entries):
        if when is None:
            hit = np.ones(n, dtype=bool)
        else:
            if evaluator is None:
                evaluator = NodeEvaluator(Columns(X.iloc[rows]), None)
            hit = evaluator.codes(when) == PASS
        hit &= which < 0
        bars[hit], which[hit], labels[hit] = leaf.threshold, i, label
    return bars, which, labels


# ---------------------------------------------------------------------------------------
# Rendering

@cache
def _pieces(text: str) -> tuple[tuple[str, str | None], ...]:
    """A template's (literal, field or None) pieces, parsed once per template."""
    return tuple((literal, field or None)
                 for literal, field, _, _ in string.Formatter().parse(text))


def _fields_of(text: str) -> list[str]:
    return [f for _, f in _pieces(text) if f]


def _fill(text: str, fields: dict, n: int) -> np.ndarray:
    """Vectorised str.format: each field is a scalar str or a StringDType array of length n.
    Scalars and literals next to each other are joined first, so each array field costs one
    vectorised addition (a literal is broadcast by the addition, not written n times)."""
    parts: list = []
    for literal, field in _pieces(text):
        for part in (literal, fields[field] if field else ""):
            if isinstance(part, str) and parts and isinstance(parts[-1], str):
                parts[-1] += part
            elif not isinstance(part, str) or part:
                parts.append(part)
    if len(parts) < 2:
        out = np.zeros(n, dtype=STRING)  # empty strings
        out[:] = parts[0] if parts else ""
        return out
    out = np.strings.add(parts[0], parts[1])
    for part in parts[2:]:
        out = np.strings.add(out, part)
    return out


def _referenced(X: pd.DataFrame, rows: np.ndarray, text: str, fields: dict):
    """Fields quoting other features: their formatted values and the rows where all known."""
    known = np.ones(len(rows), dtype=bool)
    extra = {}
    for name in _fields_of(text):
        if name in _STANDARD_FIELDS or name in fields:
            continue
        spec = template(name)
        values = column_values(X, name, rows)
        missing = is_missing(values)
        known &= ~missing
        formatted = np.full(len(rows), "unknown", dtype=STRING)
        if (~missing).any():
            formatted[~missing] = format_values(values[~missing], spec["format"],
                                                spec.get("decimals", 1), display_names(name))
        extra[name] = formatted
    return extra, known


def _put(out: np.ndarray, mask: np.ndarray, text: str, fallback: str | None, X, rows, fields):
    """Write `text` (or `fallback` where a quoted feature is unknown) into out[mask]."""
    if not mask.any():
        return
    at = np.flatnonzero(mask)
    every = len(at) == len(mask)
    # Only the fields the two texts quote are cut down to these rows.
    used = {*_fields_of(text), *(_fields_of(fallback) if fallback is not None else ())}
    local = {k: (v[at] if isinstance(v, np.ndarray) and not every else v)
             for k, v in fields.items() if k in used}
    extra, known = _referenced(X, rows[at], text, local)
    rendered = _fill(text, {**local, **extra}, len(at))
    if fallback is not None and not known.all():
        rendered[~known] = _fill(fallback, local, int((~known).sum()))
    out[at] = rendered


def _relations(values, bars, leaf_status, op: str, fmt: str):
    """The words placing each value against its bar, from the leaf's own verdict: a bar is
    cleared ("above" / "at") or not ("below"); a ceiling kept ("under" / "at") or not
    ("above"); a rank "within" or "outside" the top N."""
    passed = leaf_status == PASS
    if fmt == "rank":
        return np.where(passed, "within", "outside"), "top"
    if op in (">=", ">"):
        return np.where(passed, np.where(values > bars, "above", "at"), "below"), "bar"
    if op in ("<=", "<"):
        return np.where(passed, np.where(values < bars, "under", "at"), "above"), "ceiling"
    return np.where(passed, "at", "not at"), "required value"


def ranks_measure(feature: str) -> bool:
    """Whether reasons place `feature` among candidates: a flag has no place, a rank's
    "higher" would read as better, categories have no order."""
    return template(feature)["format"] not in ("category", "rank", "flag")


def cohort_ranks(cohort: Cohort | pd.DataFrame, feature: str, values: np.ndarray) -> np.ndarray:
    """", higher than 80% of candidates" (or "lower than ...") for each of `values`, against
    the known values of `feature` among the year's candidates (a models.cohort.Cohort, or
    their feature frame); "" where fewer than MIN_COHORT are known or the value is unknown.
    "higher" where at least as many candidates lie below the value as above; the percent is
    floor(100 * count / N) of that side, in integers (a float floor read 28% for 29/100)."""
    cohort = as_cohort(cohort, [feature])
    out = np.full(len(values), "", dtype=STRING)
    if cohort.n(feature) < MIN_COHORT:
        return out
    ok = ~np.isnan(values)
    higher, share = cohort.place(feature, values[ok])
    words = np.where(higher, ", higher than ", ", lower than ")
    uniq, inverse = np.unique(share, return_inverse=True)
    percents = np.array([f"{u}% of candidates" for u in uniq], dtype=STRING)[inverse]
    out[ok] = np.strings.add(words.astype(STRING), percents)
    return out


def render(feature: str, X: pd.DataFrame, rows: np.ndarray, home: Home | None = None,
           cohort: Cohort | pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reason texts of `feature` for the firms at positional `rows` of X, and the status
    (FAIL / UNKNOWN / PASS, or NO_CLAIM) of `home`'s criterion that each text states.

    home: the measure's criterion in the assessed rulebook (None: no bar is quoted);
    cohort: the year's candidates the firm is placed among, a models.cohort.Cohort or their
    feature frame (None: no placing). Returns (StringDType texts, int8).
    """
    spec = template(feature)
    n = len(rows)
    out = np.full(n, "", dtype=STRING)
    implied = np.full(n, NO_CLAIM, dtype=np.int8)
    values = column_values(X, feature, rows)
    missing = is_missing(values)
    fields: dict = {"label": spec["label"]}
    _put(out, missing, spec.get("missing", _DEFAULT_MISSING), None, X, rows, fields)
    if home is not None:
        implied[missing] = UNKNOWN
    entries = home.entries if home is not None else ()
    if spec["format"] == "flag":
        v = np.where(missing, np.nan, values).astype(float)
        for key, mask in (("yes", v >= 0.5), ("no", v < 0.5)):
            _put(out, mask, spec.get(key, f"{spec['label']}: {key}"), spec.get(f"{key}_fallback"),
                 X, rows, fields)
        flag_leaves = [leaf for when, _, leaf in entries if when is None]
        if flag_leaves:
            implied[~missing] = leaf_codes(flag_leaves[0], v[~missing])
        return out, implied
    known = ~missing
    formatted = np.full(n, "", dtype=STRING)
    if known.any():
        formatted[known] = format_values(values[known], spec["format"], spec.get("decimals", 1),
                                         display_names(feature))
    fields["value"] = formatted
    # {s}: the plural ending, "" where the value reads as exactly 1 ("1 year", "2 years").
    fields["s"] = np.where(formatted == "1", "", "s").astype(STRING)
    numeric = values.dtype != object
    ranks = (cohort_ranks(cohort, feature, values.astype(float))
             if cohort is not None and numeric and ranks_measure(feature)
             else np.full(n, "", dtype=STRING))
    fields["rank"] = ranks
    rest = known.copy()
    quotes_bar = (numeric and spec["format"] != "category" and spec.get("bar", True) is not False
                  and entries)
    if quotes_bar and rest.any():
        bars, which, case = _bars(X, rows, entries)
        with_bar = rest & ~np.isnan(bars)
        if with_bar.any():
            v = values.astype(float)
            status = np.full(n, UNKNOWN, dtype=np.int8)
            for i, (_, _, leaf) in enumerate(entries):
                at = with_bar & (which == i)
                status[at] = leaf_codes(leaf, v[at])
            op = entries[0][2].op
            relation, bar_word = _relations(v, np.where(np.isnan(bars), 0.0, bars), status, op,
                                            spec["format"])
            bar_text = np.full(n, "", dtype=STRING)
            bar_text[with_bar] = format_values(bars[with_bar], spec["format"], bar=True)
            note = spec.get("bar_note")
            # A note such as "for its revenue band" only fits a bar that depends on a case.
            notes = np.where(case != "", f" {note}" if note else " (" + case.astype(str) + ")",
                             "").astype(STRING)
            fields.update(bar=bar_text, bar_note=notes, relation=relation.astype(STRING),
                          bar_word=bar_word)
            default = _RANK_BAR_TEXT if spec["format"] == "rank" else _DEFAULT_BAR_TEXT
            _put(out, with_bar, spec.get("bar_text", default) + "{rank}", None, X, rows, fields)
            implied[with_bar] = status[with_bar]
            rest &= ~with_bar
    # "no valid invention patents" reads better than "0 ..." where no bar is quoted; the
    # share of candidates below nothing says nothing, so no rank either.
    zero = rest & (values == 0) if numeric and "zero" in spec else np.zeros(n, dtype=bool)
    _put(out, zero, spec.get("zero", ""), None, X, rows, fields)
    rest &= ~zero
    _put(out, rest, spec.get("text", _DEFAULT_TEXT) + "{rank}", None, X, rows, fields)
    return out, implied
