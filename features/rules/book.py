"""Rulebooks: the official certification criteria, read from TOML files in features/rules/rulebooks/.

One file holds one rulebook for one tier (e.g. ``little_giant_2022.toml``). Layout:

- ``[rulebook]``: id, code (short prefix of criterion ids, e.g. "lg22"), year, tier, name_zh,
  name_en, source, confirmed, note, in_force_from / in_force_to (dates).
- ``[defaults]``: keys copied into every criterion that does not set them (source, confirmed, note).
- ``[conditions.NAME]``: named conditions that criteria reuse with ``ref = "NAME"`` or
  ``unless = "NAME"`` (the criterion also passes when the named condition holds).
- ``[[criteria]]``: id, pillar (English key) + pillar_zh, name_zh, name_en, source, confirmed,
  note, required (default true), and one condition, written inline:
  * threshold: ``feature`` (a name, or a list whose values are summed), ``op`` (>=, >, <=, <,
    ==, !=), ``threshold``, ``unit`` (fraction, CNY, count, years, flag, rank), ``label`` (the
    measure's name in gap texts), ``decimals`` (percentages), ``fail_text`` (flags), ``gap``
    (``{numerator, denominator, noun, unit}``: express a ratio gap in the denominator's unit);
  * ``data = "..."``: qualitative, the data is not in the feature contract -> always unknown;
  * ``score = true``: the rulebook's score reaches its threshold;
  * ``all_of`` / ``any_of``: lists of conditions; ``cases``: list of ``{label, when, all_of}``
    (e.g. revenue bands), read as "any case whose ``when`` holds and whose conditions hold".
- ``[score]`` (optional): id, name_zh, name_en, max, threshold, threshold_by_province,
  pillar_min, source; ``[[score.items]]`` with id, pillar, pillar_zh, name_zh, name_en, max,
  combine ("max" or "sum" of its inputs), cap; ``[[score.items.inputs]]`` a banded point table
  ``{feature, op, bands = [{at, points}], else}`` or a qualitative ``{data, points = [lo, hi]}``.
  Points may be a number or a ``[lo, hi]`` range when the data cannot tell them apart.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from features.rules.types import (
    OPS,
    PILLARS,
    TIERS,
    UNITS,
    AllOf,
    AnyOf,
    BandTable,
    Case,
    Cases,
    Criterion,
    Gap,
    Leaf,
    Qualitative,
    Rulebook,
    Score,
    ScoreItem,
    ScorePass,
    iter_nodes,
)


class RulebookError(ValueError):
    pass


_LEAF_KEYS = {"feature", "op", "threshold", "unit", "label", "decimals", "gap", "fail_text"}
_NODE_KEYS = {
    "ref": {"ref"},
    "all_of": {"all_of"},
    "any_of": {"any_of"},
    "cases": {"cases"},
    "data": {"data", "label"},
    "score": {"score", "label"},
    "feature": _LEAF_KEYS,
}
_GAP_KEYS = {"numerator", "denominator", "noun", "unit"}


def _points(value, where: str) -> tuple[float, float]:
    if isinstance(value, list):
        if len(value) != 2 or value[0] > value[1]:
            raise RulebookError(f"{where}: points range must be [lo, hi], got {value}")
        return float(value[0]), float(value[1])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RulebookError(f"{where}: points must be a number or [lo, hi], got {value!r}")
    return float(value), float(value)


def _require(d: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if d.get(k) in (None, "")]
    if missing:
        raise RulebookError(f"{where}: missing {', '.join(missing)}")


def _pillar(d: dict, where: str) -> tuple[str, str]:
    _require(d, ("pillar", "pillar_zh"), where)
    if PILLARS.get(d["pillar"]) != d["pillar_zh"]:
        raise RulebookError(f"{where}: pillar {d['pillar']!r}/{d['pillar_zh']!r} not in {PILLARS}")
    return d["pillar"], d["pillar_zh"]


class _Parser:
    def __init__(self, raw: dict, path: Path):
        self.path = path
        self.raw_conditions = raw.get("conditions", {})
        self.conditions: dict[str, Any] = {}

    def ref(self, name: str, where: str):
        if name not in self.raw_conditions:
            raise RulebookError(f"{where}: unknown condition {name!r}")
        if name not in self.conditions:
            self.conditions[name] = self.node(self.raw_conditions[name], f"conditions.{name}")
        return self.conditions[name]

    def node(self, d: dict, where: str):
        kinds = [
            k for k in ("ref", "all_of", "any_of", "cases", "data", "score", "feature") if k in d
        ]
        if len(kinds) != 1:
            raise RulebookError(f"{where}: exactly one condition kind expected, got {kinds}")
        kind = kinds[0]
        unexpected = set(d) - _NODE_KEYS[kind]
        if unexpected:
            raise RulebookError(
                f"{where}: unexpected keys {sorted(unexpected)} for a {kind} condition"
            )
        if kind == "ref":
            return self.ref(d["ref"], where)
        if kind in ("all_of", "any_of"):
            children = tuple(self.node(c, f"{where}.{kind}[{i}]") for i, c in enumerate(d[kind]))
            if not children:
                raise RulebookError(f"{where}: empty {kind}")
            return AllOf(children) if kind == "all_of" else AnyOf(children)
        if kind == "cases":
            cases = []
            for i, c in enumerate(d["cases"]):
                w = f"{where}.cases[{i}]"
                _require(c, ("label", "when"), w)
                then = {k: v for k, v in c.items() if k not in ("label", "when")}
                cases.append(
                    Case(c["label"], self.node(c["when"], w + ".when"), self.node(then, w))
                )
            return Cases(tuple(cases))
        if kind == "data":
            return Qualitative(label=d.get("label", d["data"]), data=d["data"])
        if kind == "score":
            return ScorePass(label=d.get("label", "score"))
        return self.leaf(d, where)

    def leaf(self, d: dict, where: str) -> Leaf:
        _require(d, ("feature", "op", "threshold", "unit"), where)
        features = (d["feature"],) if isinstance(d["feature"], str) else tuple(d["feature"])
        if d["op"] not in OPS:
            raise RulebookError(f"{where}: op {d['op']!r} not in {OPS}")
        if d["unit"] not in UNITS:
            raise RulebookError(f"{where}: unit {d['unit']!r} not in {UNITS}")
        thr = d["threshold"]
        if isinstance(thr, bool) or not isinstance(thr, (int, float)):
            raise RulebookError(f"{where}: threshold must be a number, got {thr!r}")
        if "gap" in d and set(d["gap"]) - _GAP_KEYS:
            raise RulebookError(f"{where}: gap takes {sorted(_GAP_KEYS)}")
        gap = Gap(**d["gap"]) if "gap" in d else None
        if gap is not None and gap.unit not in ("CNY", "count"):
            raise RulebookError(f"{where}: gap unit must be CNY or count")
        return Leaf(
            features=features,
            op=d["op"],
            threshold=float(thr),
            unit=d["unit"],
            label=d.get("label", " + ".join(features).replace("_", " ")),
            decimals=int(d.get("decimals", 1)),
            gap=gap,
            fail_text=d.get("fail_text"),
        )

    def band_table(self, d: dict, where: str) -> BandTable:
        if "data" in d:
            lo, hi = _points(d.get("points"), where)
            return BandTable(None, ">=", (), (lo,), (hi,), data=d["data"])
        _require(d, ("feature", "op", "bands"), where)
        if d["op"] not in OPS[:4]:
            raise RulebookError(f"{where}: band op must be one of {OPS[:4]}")
        bands = sorted(d["bands"], key=lambda b: b["at"])
        pts = [_points(b["points"], where) for b in bands] + [_points(d.get("else", 0), where)]
        return BandTable(
            feature=d["feature"],
            op=d["op"],
            bounds=tuple(float(b["at"]) for b in bands),
            lo=tuple(p[0] for p in pts),
            hi=tuple(p[1] for p in pts),
        )

    def score(self, d: dict, defaults: dict) -> Score:
        _require(d, ("id", "name_zh", "name_en", "max", "threshold"), "score")
        items = []
        for i, it in enumerate(d.get("items", [])):
            w = f"score.items[{i}] {it.get('id', '?')}"
            _require(it, ("id", "name_zh", "name_en", "max", "inputs"), w)
            pillar, pillar_zh = _pillar(it, w)
            combine = it.get("combine", "max")
            if combine not in ("max", "sum"):
                raise RulebookError(f"{w}: combine must be max or sum")
            inputs = tuple(self.band_table(x, f"{w}.inputs") for x in it["inputs"])
            item = ScoreItem(
                it["id"],
                pillar,
                pillar_zh,
                it["name_zh"],
                it["name_en"],
                float(it["max"]),
                combine,
                it.get("cap"),
                inputs,
            )
            top = (
                max(max(t.hi) for t in inputs)
                if combine == "max"
                else sum(max(t.hi) for t in inputs)
            )
            if min(top, item.cap or top) != item.max:
                raise RulebookError(f"{w}: bands reach {top} points, max says {item.max}")
            items.append(item)
        total = sum(it.max for it in items)
        if total != float(d["max"]):
            raise RulebookError(f"score: items add up to {total}, max says {d['max']}")
        unknown_pillars = set(d.get("pillar_min", {})) - {it.pillar for it in items}
        if unknown_pillars:
            raise RulebookError(f"score.pillar_min: no items for {unknown_pillars}")
        return Score(
            id=d["id"],
            name_zh=d["name_zh"],
            name_en=d["name_en"],
            max=float(d["max"]),
            threshold=float(d["threshold"]),
            threshold_by_province={
                str(k): float(v) for k, v in d.get("threshold_by_province", {}).items()
            },
            pillar_min={k: float(v) for k, v in d.get("pillar_min", {}).items()},
            items=tuple(items),
            source=d.get("source", defaults.get("source", "")),
            confirmed=bool(d.get("confirmed", defaults.get("confirmed", True))),
            note=d.get("note", ""),
        )


def parse_rulebook(raw: dict, path: Path) -> Rulebook:
    """Build a validated Rulebook from a parsed TOML document; raises RulebookError."""
    meta = raw.get("rulebook", {})
    _require(
        meta, ("id", "code", "year", "tier", "name_zh", "name_en", "source"), f"{path}: [rulebook]"
    )
    if meta["tier"] not in TIERS:
        raise RulebookError(f"{path}: tier {meta['tier']!r} not in {TIERS}")
    defaults = raw.get("defaults", {})
    parser = _Parser(raw, path)
    criteria, seen = [], set()
    for i, c in enumerate(raw.get("criteria", [])):
        c = {**defaults, **c}
        where = f"{path.name}: criteria[{i}] {c.get('id', '?')}"
        _require(c, ("id", "name_zh", "name_en", "source"), where)
        if c["id"] in seen:
            raise RulebookError(f"{where}: duplicate id")
        if not c["id"].startswith(meta["code"] + "_"):
            raise RulebookError(f"{where}: id must start with {meta['code']}_")
        seen.add(c["id"])
        pillar, pillar_zh = _pillar(c, where)
        confirmed = bool(c.get("confirmed", True))
        if not confirmed and not c.get("note"):
            raise RulebookError(f"{where}: unconfirmed criteria need a note")
        node_keys = {k: v for k, v in c.items() if k not in _CRITERION_META}
        node = parser.node(node_keys, where)
        unless = c.get("unless", [])
        for name in [unless] if isinstance(unless, str) else unless:
            node = AnyOf((node, parser.ref(name, where)))
        criteria.append(
            Criterion(
                id=c["id"],
                tier=meta["tier"],
                pillar=pillar,
                pillar_zh=pillar_zh,
                name_zh=c["name_zh"],
                name_en=c["name_en"],
                node=node,
                source=c["source"],
                confirmed=confirmed,
                note=c.get("note", ""),
                required=bool(c.get("required", True)),
            )
        )
    score = parser.score(raw["score"], defaults) if "score" in raw else None
    uses_score = any(isinstance(n, ScorePass) for c in criteria for n in iter_nodes(c.node))
    if uses_score and score is None:
        raise RulebookError(f"{path}: a criterion uses score = true but there is no [score]")
    return Rulebook(
        id=meta["id"],
        code=meta["code"],
        year=str(meta["year"]),
        tier=meta["tier"],
        name_zh=meta["name_zh"],
        name_en=meta["name_en"],
        source=meta["source"],
        confirmed=bool(meta.get("confirmed", True)),
        note=meta.get("note", ""),
        in_force_from=meta.get("in_force_from"),
        in_force_to=meta.get("in_force_to"),
        criteria=tuple(criteria),
        score=score,
        path=path,
    )


_CRITERION_META = {
    "id",
    "tier",
    "pillar",
    "pillar_zh",
    "name_zh",
    "name_en",
    "source",
    "confirmed",
    "note",
    "required",
    "unless",
}


def read_rulebook(path: str | Path) -> Rulebook:
    path = Path(path)
    with path.open("rb") as fh:
        return parse_rulebook(tomllib.load(fh), path)
