"""Importing real exports (registries, Wind/CSMAR/Orbis, CNIPA, the MIIT lists) into a
contract dataset: `import_exports` (exports.py), profiles of headers and units
(profile.py, profiles/default.toml), firm-name matching and USCC checks (names.py)."""

from features.importing.exports import ImportSummary, import_exports
from features.importing.profile import ImportProblem

__all__ = ["ImportProblem", "ImportSummary", "import_exports"]
