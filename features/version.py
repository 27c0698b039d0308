"""The feature pipeline's version: a hash of every source that decides a feature's value.

A registered model records the version it was trained with and scoring refuses another
one, so a changed feature, rule or domain definition can never be scored with a model
trained on the old one.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Mapping
from importlib import resources

from features.catalogue import BUILDER_MODULES
from features.domain import LENS_RULEBOOK_YEAR

# Modules whose source decides the feature values: the builders, this pipeline, the rule
# features with the rules engine, and the domain definitions. Data files: the lens
# rulebooks and the sector crosswalk.
VERSION_MODULES: tuple[str, ...] = (
    *BUILDER_MODULES, "features.pipeline", "features.rule_features", "features.domain",
    "features.regions",
    "features.rules.evaluation", "features.rules.book", "features.rules.engine", "features.rules.types",
)
VERSION_MAJOR = "2"


def version_sources() -> dict[str, bytes]:
    """The sources the feature pipeline version is computed from: module name -> source,
    data file path (relative to the package ``features``) -> bytes, in a fixed order."""
    sources = {name: inspect.getsource(importlib.import_module(name)).encode("utf-8")
               for name in VERSION_MODULES}
    root = resources.files("features")
    books = root / "rules" / "rulebooks"
    for path in sorted(books.iterdir(), key=lambda p: p.name):
        if path.name.endswith(f"_{LENS_RULEBOOK_YEAR}.toml"):
            sources[f"rules/rulebooks/{path.name}"] = path.read_bytes()
    for table in ("sector_crosswalk.csv", "provinces.csv"):
        sources[f"data/{table}"] = (root / "data" / table).read_bytes()
    return sources


def pipeline_version(sources: Mapping[str, bytes]) -> str:
    """``"2."`` + the first 12 hex characters of the SHA-256 over ``sources`` (names and
    contents, in order): a changed feature, rule or domain definition changes the version,
    so a model can never be scored with features it was not trained on."""
    digest = hashlib.sha256()
    for name, content in sources.items():
        for part in (name.encode("utf-8"), content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return f"{VERSION_MAJOR}.{digest.hexdigest()[:12]}"
