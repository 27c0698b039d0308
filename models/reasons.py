"""Reason codes: the few features that pushed each firm's score up or down, in plain words.

    reasons = reason_codes(X, model.contributions(X), n=3, assessment=assess(X, rulebook))
    reasons.loc[firm, "reasons_for"]     # "R&D intensity 7.2%, above the 6% bar for its
                                         #  revenue band; subsidiary of a large group (5,200
                                         #  employees); 3 Class I IP rights, ..."

Built for batch scoring (a million firms per tier): the strongest contributions are picked
with one `np.argpartition` over the whole contribution matrix, and texts are rendered per
feature (not per firm) from templates in `reason_templates.toml`. Values are formatted once
per distinct rounded value, and strings are assembled with numpy's vectorised string ops.
Thresholds quoted in a reason ("the 70% bar") and the rulebook verdict come from the
rulebook the caller assesses the firms with (the one in force), the same evaluation as the
eligibility and gaps shown beside them. The models' rule-result features are a fixed lens
(features.domain.LENS_RULEBOOK_YEAR); their contributions are folded onto the measure a
criterion reads (``rule_lg22_main_share`` onto ``main_share``) or, for criteria of several
measures and overall outcomes, gathered into one "rulebook verdict" reason that states the
assessed rulebook's verdict. No reason quotes the lens rulebook's bars.
"""

from __future__ import annotations

import itertools
import string
import tomllib
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from models.values import STRING, column_values, format_values, is_missing

TEMPLATE_FILE = Path(__file__).with_name("reason_templates.toml")
VERDICT = "rulebook_verdict"  # the gathered contribution of the lens's overall rule results
SEPARATOR = "; "
_STANDARD_FIELDS = {"label", "value", "bar", "relation", "bar_word", "bar_note", "s"}
_DEFAULT_TEXT = "{label} {value}"
_DEFAULT_BAR_TEXT = "{label} {value}, {relation} the {bar} {bar_word}{bar_note}"
_DEFAULT_MISSING = "{label} not reported"
_UNIT_FORMAT = {"fraction": "percent", "CNY": "money", "count": "count", "persons": "count",
                "years": "years", "rank": "rank", "1/0": "flag", "category": "category"}


@cache
def _template_file() -> tuple[dict, dict]:
    data = tomllib.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    return data.get("features", {}), data.get("names", {})


@cache
def _catalogue_units() -> dict[str, str]:
    try:
        from features.pipeline import feature_catalogue
    except ImportError:  # pragma: no cover - the pipeline is part of the package
        return {}
    table = feature_catalogue()
    return dict(zip(table["name"], table["unit"]))


@cache
def _criteria_names() -> dict[str, str]:
    from features.rules import available_rulebooks, load_rulebook

    names: dict[str, str] = {}
    for path in available_rulebooks()["path"]:
        for c in load_rulebook(path).criteria:
            # "R&D input by revenue band (>= 100M: ...)" reads as "R&D input by revenue band".
            name = c.name_en.split(" (")[0]
            keep_case = name[1:2].isupper() or name[1:2] == "&"
            names[c.id] = name if keep_case else name[:1].lower() + name[1:]
    return names


@cache
def template(feature: str) -> dict:
    """The template of one feature: from the file, else made from the rule or catalogue."""
    features, _ = _template_file()
    spec = dict(features.get(feature, {}))
    spec.setdefault("label", feature.replace("_", " "))
    if "format" in spec:
        return spec
    unit = _catalogue_units().get(feature, "")
    fmt = _UNIT_FORMAT.get(unit, "number")
    if fmt == "flag":
        spec.update(yes=f"{spec['label']}: yes", no=f"{spec['label']}: no")
    return {**spec, "format": fmt}


# ---------------------------------------------------------------------------------------
# Thresholds from the assessed rulebook

@cache
def _bar_specs(rb) -> dict[str, tuple]:
    """feature -> ((when node or None, case label, leaf), ...) of rulebook ``rb``.

    Only threshold leaves on a single non-flag feature count; the leaves of a case's `when`
    choose the case and are not bars. The first criterion naming a feature wins.
    """
    from features.rules.types import AllOf, AnyOf, Cases, Leaf

    def collect(node, when, label, found):
        if isinstance(node, Leaf):
            if len(node.features) == 1 and node.unit != "flag":
                entries = found.setdefault(node.features[0], [])
                if when is not None or not any(e[0] is None for e in entries):
                    entries.append((when, label, node))
        elif isinstance(node, (AllOf, AnyOf)):
            for child in node.children:
                collect(child, when, label, found)
        elif isinstance(node, Cases):
            for case in node.cases:
                collect(case.then, case.when, case.label, found)

    specs: dict[str, tuple] = {}
    for criterion in rb.criteria:
        found: dict[str, list] = {}
        collect(criterion.node, None, "", found)
        for feature, entries in found.items():
            specs.setdefault(feature, tuple(entries))
    return specs


def rulebook_thresholds(rulebook, feature: str) -> list[tuple[float, str, str]]:
    """(threshold, comparison op, case label or "") of `feature` in `rulebook` (a Rulebook),
    e.g. [(0.03, ">=", "revenue >= 100M CNY"), (0.06, ">=", "revenue 50M-100M CNY")]."""
    entries = _bar_specs(rulebook).get(feature, ())
    return [(leaf.threshold, leaf.op, label) for _, label, leaf in entries]


@cache
def display_names(kind: str) -> dict[str, str]:
    """Display names of coded values (kind: province, macro_region, listed_board, ...);
    provinces by their English name in the one province table (features.regions)."""
    if kind == "province":
        from features.regions import PROVINCE_TABLE

        return dict(PROVINCE_TABLE["name_en"])
    return dict(_template_file()[1].get(kind, {}))


def rulebook_bars(X: pd.DataFrame, rows: np.ndarray, feature: str, rulebook):
    """(threshold per row or NaN, comparison op, case label per row) for `feature` under
    `rulebook` (None: no bars)."""
    n = len(rows)
    bars, labels = np.full(n, np.nan), np.full(n, "", dtype=object)
    entries = _bar_specs(rulebook).get(feature, ()) if rulebook is not None else ()
    if not entries:
        return bars, None, labels
    from features.rules.engine import PASS, Columns, NodeEvaluator

    evaluator = None
    for when, label, leaf in entries:
        if when is None:
            hit = np.ones(n, dtype=bool)
        else:
            if evaluator is None:
                evaluator = NodeEvaluator(Columns(X.iloc[rows]), None)
            hit = evaluator.codes(when) == PASS
        hit &= np.isnan(bars)
        bars[hit] = leaf.threshold
        labels[hit] = label
    return bars, entries[0][2].op, labels


# ---------------------------------------------------------------------------------------
# Rendering

def _fields_of(text: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(text) if f]


def _fill(text: str, fields: dict, n: int) -> np.ndarray:
    """Vectorised str.format: each field is a scalar str or a StringDType array of length n."""
    out = np.full(n, "", dtype=STRING)
    for literal, field, _, _ in string.Formatter().parse(text):
        if literal:
            out = np.strings.add(out, literal)
        if field:
            out = np.strings.add(out, fields[field])
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
    local = {k: (v[at] if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
    extra, known = _referenced(X, rows[at], text, local)
    rendered = _fill(text, {**local, **extra}, len(at))
    if fallback is not None and not known.all():
        rendered[~known] = _fill(fallback, local, int((~known).sum()))
    out[at] = rendered


def render(feature: str, X: pd.DataFrame, rows: np.ndarray, rulebook=None) -> np.ndarray:
    """Reason text of `feature` for the firms at positional `rows` of X (StringDType array),
    quoting the bars of `rulebook` (a Rulebook, or None for none)."""
    spec = template(feature)
    n = len(rows)
    out = np.full(n, "", dtype=STRING)
    values = column_values(X, feature, rows)
    missing = is_missing(values)
    fields: dict = {"label": spec["label"]}
    _put(out, missing, spec.get("missing", _DEFAULT_MISSING), None, X, rows, fields)
    if spec["format"] == "flag":
        v = np.where(missing, np.nan, values).astype(float)
        for key, mask in (("yes", v >= 0.5), ("no", v < 0.5)):
            _put(out, mask, spec.get(key, f"{spec['label']}: {key}"), spec.get(f"{key}_fallback"),
                 X, rows, fields)
        return out
    known = ~missing
    formatted = np.full(n, "", dtype=STRING)
    if known.any():
        formatted[known] = format_values(values[known], spec["format"], spec.get("decimals", 1),
                                         display_names(feature))
    fields["value"] = formatted
    # {s}: the plural ending, "" where the value reads as exactly 1 ("1 year", "2 years").
    fields["s"] = np.where(formatted == "1", "", "s").astype(STRING)
    numeric = values.dtype != object
    zero = known & (values == 0) if numeric and "zero" in spec else np.zeros(n, dtype=bool)
    _put(out, zero, spec.get("zero", ""), None, X, rows, fields)
    rest = known & ~zero
    quotes_bar = numeric and spec["format"] != "category" and spec.get("bar", True) is not False
    if quotes_bar and rest.any():
        bars, op, case = rulebook_bars(X, rows, feature, rulebook)
        with_bar = rest & ~np.isnan(bars)
        if with_bar.any():
            v, b = values.astype(float), np.where(np.isnan(bars), 0.0, bars)
            bar_text = np.full(n, "", dtype=STRING)
            bar_text[with_bar] = format_values(bars[with_bar], spec["format"], bar=True)
            note = spec.get("bar_note")
            # A note such as "for its revenue band" only fits a bar that depends on a case.
            from_case = case != ""
            notes = np.where(from_case, f" {note}" if note else
                             " (" + case.astype(str) + ")", "").astype(STRING)
            fields.update(
                bar=bar_text, bar_note=notes,
                relation=np.where(v > b, "above", np.where(v < b, "below", "at")).astype(STRING),
                bar_word="bar" if op in (">=", ">") else "ceiling",
            )
            _put(out, with_bar, spec.get("bar_text", _DEFAULT_BAR_TEXT), None, X, rows, fields)
            rest &= ~with_bar
    _put(out, rest, spec.get("text", _DEFAULT_TEXT), None, X, rows, fields)
    return out


# ---------------------------------------------------------------------------------------
# Ranking and assembly

def _strongest(C: np.ndarray, n: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the n largest (or smallest) entries per row, strongest first, and
    whether each is a real push (strictly positive, or strictly negative)."""
    n_features = C.shape[1]
    k = min(n, n_features)
    if k == 0:
        return np.zeros((len(C), 0), dtype=np.intp), np.zeros((len(C), 0), dtype=bool)
    if k < n_features:
        if largest:
            idx = np.argpartition(C, n_features - k, axis=1)[:, n_features - k:]
        else:
            idx = np.argpartition(C, k - 1, axis=1)[:, :k]
    else:
        idx = np.broadcast_to(np.arange(n_features), C.shape).copy()
    values = np.take_along_axis(C, idx, axis=1)
    order = np.argsort(-values if largest else values, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    return idx, (values > 0) if largest else (values < 0)


def _join(slots: np.ndarray) -> np.ndarray:
    out = slots[:, 0].copy() if slots.shape[1] else np.full(len(slots), "", dtype=STRING)
    for j in range(1, slots.shape[1]):
        column = slots[:, j]
        both = (out != "") & (column != "")
        out = np.strings.add(np.strings.add(out, np.where(both, SEPARATOR, "").astype(STRING)), column)
    return out


def verdict_texts(assessment, rows: np.ndarray) -> np.ndarray:
    """The assessed rulebook's verdict on the firms at positional `rows`, in words: the
    same evaluation as the eligibility and failed criteria shown beside the reasons."""
    out = np.full(len(rows), "", dtype=STRING)
    if assessment is None:
        out[:] = "overall rule outcome"
        return out
    name = assessment.rulebook.name_en
    status = assessment.eligible.to_numpy(dtype=object)[rows]
    names = _criteria_names()
    for i, (verdict, row) in enumerate(zip(status, rows)):
        if verdict == "pass":
            out[i] = f"meets every criterion of the {name} that its data decides"
        elif verdict == "fail":
            failed = [names.get(c, c) for c in assessment.failed[row]]
            shown = ", ".join(failed[:2]) + (f" and {len(failed) - 2} more" if len(failed) > 2
                                             else "")
            out[i] = f"fails the {name}: {shown}"
        else:
            out[i] = f"{name}: undecided on its data"
    return out


def _gather_rule_columns(values: pd.DataFrame) -> pd.DataFrame:
    """Rule-result contributions folded onto the measure each single-measure criterion
    reads; the rest (criteria of several measures, scores, eligibility) summed into
    VERDICT. SHAP values are additive, so every sum is the exact joint effect."""
    from models.explain import fold_rule_columns

    folded = fold_rule_columns(values)
    rest = [c for c in folded.columns if c.startswith("rule_")]
    if not rest:
        return folded
    verdict = folded[rest].sum(axis=1)
    return folded.drop(columns=rest).assign(**{VERDICT: verdict})


def reason_codes(X: pd.DataFrame, contributions: pd.DataFrame, n: int = 3,
                 assessment=None) -> pd.DataFrame:
    """The n features pushing each firm's score up and the n pushing it down, as text.

    X: feature frame (rows x features); contributions: SHAP values of the same rows (same
    index; a ``bias`` column is ignored), e.g. `TierModel.contributions(X)`. assessment: the
    `features.rules.Assessment` of the same rows under the rulebook shown to the user;
    its bars and verdict are quoted (None: no bars, a neutral verdict label). Returns a
    frame indexed like X with str columns ``reasons_for`` and ``reasons_against``:
    "; "-joined reasons, strongest first, empty when nothing pushes that way.
    """
    rulebook = assessment.rulebook if assessment is not None else None
    values = _gather_rule_columns(contributions.drop(columns=["bias"], errors="ignore"))
    if not values.index.equals(X.index):
        values = values.reindex(X.index)
    features = np.asarray(values.columns, dtype=object)
    C = values.to_numpy(dtype=np.float64, copy=True)
    C[np.isnan(C)] = 0.0
    n_rows = len(C)
    up, up_real = _strongest(C, n, largest=True)
    down, down_real = _strongest(C, n, largest=False)
    k = up.shape[1]
    slots = np.full((n_rows, 2 * k), "", dtype=STRING)
    feature_idx = np.concatenate([up, down], axis=1)
    real = np.concatenate([up_real, down_real], axis=1)
    rows, slot = np.nonzero(real)
    chosen = feature_idx[rows, slot]
    order = np.argsort(chosen, kind="stable")
    rows, slot, chosen = rows[order], slot[order], chosen[order]
    starts = np.flatnonzero(np.r_[True, chosen[1:] != chosen[:-1]]) if len(chosen) else []
    bounds = list(starts) + [len(chosen)]
    for a, b in itertools.pairwise(bounds):
        # A feature pushes a firm one way only, so its rows within a group are distinct.
        name, at = str(features[chosen[a]]), rows[a:b]
        slots[at, slot[a:b]] = (verdict_texts(assessment, at) if name == VERDICT
                                else render(name, X, at, rulebook))
    return pd.DataFrame({
        "reasons_for": pd.array(_join(slots[:, :k]).astype(object), dtype="str"),
        "reasons_against": pd.array(_join(slots[:, k:]).astype(object), dtype="str"),
    }, index=X.index)
