"""Feature registry: the specs of every feature, collected from the listed builder modules.

Every feature is one small pure function, named after what it measures, whose parameters
name the inputs it needs (raw columns or other nodes). Builders declare features with
:func:`feature`; intermediate nodes that are not model inputs (row-level masks, parsed
codes) with :func:`node`; raw columns exposed unchanged with :func:`passthrough`. These
helpers only attach a :class:`FeatureSpec` to the function (or return one for the module
to keep); nothing is registered as a side effect of importing a builder.

The registry is built on first use by importing the modules of :data:`BUILDER_MODULES` in
order and collecting, per module in definition order, its specs and nodes. The column
order of the feature frame is this order. ``FEATURES`` (name -> FeatureSpec) and ``NODES``
(name -> function) are complete on a bare ``import features.catalogue``.

This module never imports the pipeline; the generated catalogue (docs/FEATURES.md) is
rendered by :mod:`features.docs`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType, ModuleType
from typing import NamedTuple

# The builder modules, in registry (= column) order.
BUILDER_MODULES: tuple[str, ...] = (
    "features.financials",
    "features.history",
    "features.sectors",
    "features.ownership",
    "features.patents",
)

# Explanation pillars (the keys of models.explain.PILLARS): the selection criteria's
# 专 specialization, 精 refinement, 特 distinctiveness, 新 innovation, and the groups outside
# them.
PILLARS: tuple[str, ...] = (
    "specialization", "refinement", "distinctiveness", "innovation", "size", "sector",
    "region", "ownership", "history", "rules",
)
KINDS = ("float", "category")

_SPEC_ATTR = "__feature_spec__"
_NODE_ATTR = "__feature_node__"


@dataclass(frozen=True)
class FeatureSpec:
    """One registered feature.

    pillar: its explanation pillar (one of PILLARS). label_en / label_zh: short noun
    phrases for plot axes and reasons. meaning: the first line of the function's docstring.
    kind is "float" (float64, NaN = unknown) or "category" (pandas category with a fixed
    category list). inputs are the parameter names of the function (for a passthrough: the
    raw input of the same name).
    """

    name: str
    group: str
    pillar: str
    label_en: str
    label_zh: str
    meaning: str
    unit: str
    criterion: str
    kind: str
    function: Callable | None
    inputs: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.pillar not in PILLARS:
            raise ValueError(f"feature {self.name!r}: pillar {self.pillar!r} not in {PILLARS}")
        if self.kind not in KINDS:
            raise ValueError(f"feature {self.name!r}: kind {self.kind!r} not in {KINDS}")
        if not self.label_en.strip() or not self.label_zh.strip():
            raise ValueError(f"feature {self.name!r}: label_en and label_zh are required")


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if doc and doc.strip() else ""


def _params(fn: Callable) -> tuple[str, ...]:
    return tuple(inspect.signature(fn).parameters)


def feature(group: str, unit: str, criterion: str = "", kind: str = "float", *, pillar: str,
            label_en: str, label_zh: str):
    """Mark the decorated function as a feature; its docstring's first line is its meaning.

    Attaches a FeatureSpec to the function (``fn.__feature_spec__``) and returns it
    unchanged; the registry collects it from the builder module.
    """

    def mark(fn: Callable) -> Callable:
        spec = FeatureSpec(fn.__name__, group, pillar, label_en, label_zh,
                           _first_line(fn.__doc__), unit, criterion, kind, fn, _params(fn))
        setattr(fn, _SPEC_ATTR, spec)
        return fn

    return mark


def node(fn: Callable) -> Callable:
    """Mark an intermediate node (computed on demand, not a model input)."""
    setattr(fn, _NODE_ATTR, True)
    return fn


def passthrough(name: str, group: str, meaning: str, unit: str, criterion: str = "", *,
                pillar: str, label_en: str, label_zh: str) -> FeatureSpec:
    """The spec of a raw input (e.g. fiscal year t-1 revenue) exposed unchanged as a
    feature; the builder module keeps it (a module-level FeatureSpec or tuple of them)."""
    return FeatureSpec(name, group, pillar, label_en, label_zh, meaning, unit, criterion,
                       "float", None, (name,))


def feature_spec(fn: Callable) -> FeatureSpec | None:
    """The spec attached to a feature function by :func:`feature` (None for others)."""
    return getattr(fn, _SPEC_ATTR, None)


class Registry(NamedTuple):
    features: Mapping[str, FeatureSpec]
    nodes: Mapping[str, Callable]


def _module_items(module: ModuleType):
    """(kind, name, object) of the module's specs and nodes in definition order."""
    for value in list(vars(module).values()):
        if isinstance(value, FeatureSpec):
            yield "feature", value.name, value
        elif isinstance(value, (tuple, list)) and value and all(
                isinstance(v, FeatureSpec) for v in value):
            for spec in value:
                yield "feature", spec.name, spec
        elif callable(value) and getattr(value, "__module__", None) == module.__name__:
            spec = feature_spec(value)
            if spec is not None:
                yield "feature", spec.name, spec
            elif getattr(value, _NODE_ATTR, False):
                yield "node", value.__name__, value


def collect(module_names: tuple[str, ...] = BUILDER_MODULES) -> Registry:
    """Import ``module_names`` in order and collect their features and nodes."""
    features: dict[str, FeatureSpec] = {}
    nodes: dict[str, Callable] = {}
    for module_name in module_names:
        module = importlib.import_module(module_name)
        if getattr(getattr(module, "__spec__", None), "_initializing", False):
            raise ImportError(f"{module_name} is still being imported: the feature registry "
                              "must not be read while a builder module loads")
        for kind, name, obj in _module_items(module):
            if name in features or name in nodes:
                raise ValueError(f"feature or node {name!r} defined twice ({module_name})")
            if kind == "feature":
                features[name] = obj
            else:
                nodes[name] = obj
    return Registry(MappingProxyType(features), MappingProxyType(nodes))


@cache
def registry() -> Registry:
    """The registry of BUILDER_MODULES (built once)."""
    return collect(BUILDER_MODULES)


def __getattr__(name: str):
    # FEATURES and NODES are built on first access, so importing this module (which every
    # builder does for the decorators) never imports the builders.
    if name == "FEATURES":
        return registry().features
    if name == "NODES":
        return registry().nodes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
