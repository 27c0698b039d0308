"""The README's architecture diagram is the import graph: every arrow an import, every
import between two boxes an arrow."""

from __future__ import annotations

import re
from pathlib import Path

import grimp

README = Path(__file__).resolve().parents[1] / "README.md"
PACKAGES = ("features", "models", "training", "serving")
# The README's boxes and the modules (or subpackages) each one stands for.
BOXES = {
    "contract": ["features.contract", "features.contract_messages", "features.schemas",
                 "features.parsers", "features.atomic", "features.files", "features.rejects",
                 "features.plausibility", "features.fast_validation", "features.string_hash"],
    "importing": ["features.importing"],
    "domain": ["features.domain", "features.regions", "features.identity"],
    "rules": ["features.rules"],
    "builders": ["features.catalogue", "features.financials", "features.history",
                 "features.ownership", "features.patents", "features.sectors"],
    "panel": ["features.panel"],
    "pipeline": ["features.pipeline", "features.labels", "features.rule_features", "features.docs",
                 "features.version"],
    "lgbm": ["models.lgbm", "models.boosting_rounds", "models.lgbm_dask", "models.calibration",
             "models.treeshap", "models.treeshap_kernels", "models.pyfunc",
             "models.pyfunc_model", "models.baselines", "models.metrics"],
    "explain": ["models.explain", "models.reasons", "models.reason_text", "models.values",
                "models.cohort"],
    "scoring": ["models.scoring"],
    "whatif": ["models.whatif"],
    "audit": ["models.audit", "models.audit_flags", "models.audit_oof", "models.audit_channels",
              "models.selection_channels", "models.channel_glm", "models.audit_renewals"],
    "synthetic": ["training.synthetic"],
    "train": ["training.train", "training.evaluate", "training.splits", "training.plots",
              "training.oracle",
              "training.tracking", "training.model_card", "training.settings",
              "training.review", "training.registration", "training.run_artifacts",
              "training.sampling",
              "training.cluster"],
    "audit_run": ["training.audit_run"],
    "score": ["serving.score", "serving.score_file", "serving.output", "serving.partitions",
              "serving.executors", "serving.registry",
              "serving.writer"],
    "check": ["serving.check"],
    "api": ["serving.api", "serving.api_schema"],
    "report": ["serving.report", "serving.report_plots", "serving.report_summary",
               "serving.page", "serving.firm_page", "serving.whatif_run"],
    "bench": ["serving.bench"],
    "cli": ["serving.cli", "serving.cli_base", "serving.cli_data", "serving.cli_training",
            "serving.cli_scoring", "serving.cli_reports", "serving.logs"],
}


def _box(module: str) -> str | None:
    for box, members in BOXES.items():
        if any(module == m or module.startswith(m + ".") for m in members):
            return box
    return None


def _diagram() -> tuple[set[str], set[tuple[str, str]]]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```mermaid\n(.*?)```", text, re.DOTALL).group(1)
    edges = set(re.findall(r"^\s*(\w+) --> (\w+)\s*$", block, re.MULTILINE))
    nodes = {n for line in re.findall(r"^\s{8}(\w+(?:; \w+)*)\s*$", block, re.MULTILINE)
             for n in line.split("; ")}
    return nodes, edges


def test_every_module_is_in_a_box_and_every_box_is_drawn():
    graph = grimp.build_graph(*PACKAGES)
    unboxed = sorted(m for m in graph.modules if m not in PACKAGES and _box(m) is None)
    assert not unboxed, f"modules the README diagram does not place: {unboxed}"
    nodes, _ = _diagram()
    assert nodes == set(BOXES)


def test_the_arrows_are_the_imports():
    graph = grimp.build_graph(*PACKAGES)
    imports = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = _box(module), _box(imported)
            if a and b and a != b:
                imports.add((a, b))
    _, drawn = _diagram()
    assert drawn - imports == set(), "arrows without an import"
    assert imports - drawn == set(), "imports without an arrow"
