"""The production models of each tier, from the MLflow model registry, checked before use.

    models = load_models("production")          # {tier: RegisteredModel}
    models["little_giant"].model.predict_proba(X)

A registered version is refused when it was trained with another feature pipeline than this
code builds (its features would mean something else).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from features.domain import TIERS
from models.lgbm import TierModel

log = logging.getLogger(__name__)


class ScoringProblem(Exception):
    """Scoring cannot start: no registered model, a feature pipeline mismatch, nothing to score."""


@dataclass
class RegisteredModel:
    """One tier's registered model version and the TierModel inside its pyfunc."""

    tier: str
    name: str
    version: str
    aliases: list[str]
    tags: dict[str, str]
    model: TierModel

    def info(self) -> dict:
        """Registry facts for display: name, version, aliases, data, cv metrics, pipeline."""
        return {
            "tier": self.tier, "registered_name": self.name, "version": self.version,
            "aliases": sorted(self.aliases),
            "data_fingerprint": self.tags.get("data_fingerprint"),
            "feature_pipeline_version": self.tags.get("feature_pipeline_version"),
            "trained_until": self.tags.get("trained_until"),
            "cv_metrics": {k.removeprefix("cv_"): float(v) for k, v in self.tags.items()
                           if k.startswith("cv_")},
        }


def registered_versions(alias: str = "production", tiers: tuple[str, ...] = TIERS,
                        review: bool = False) -> dict:
    """The registry's ModelVersion with `alias` of each tier (``giantwatch-<tier>``), checked.

    A tier with no such version (e.g. every version stayed out of production, losing to a
    baseline) is left out with a logged warning saying why; ScoringProblem when no tier has
    one, or when a version was trained with another feature pipeline than this code's
    FEATURE_PIPELINE_VERSION (its features would mean something else). With ``review``, the
    re-review models ``giantwatch-<tier>-review`` instead, none of them required.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from features.pipeline import FEATURE_PIPELINE_VERSION
    from training.review import review_key
    from training.tracking import registered_name, setup_tracking

    uri = setup_tracking()
    client = MlflowClient()
    versions, missing = {}, {}
    for tier in tiers:
        name = registered_name(review_key(tier) if review else tier)
        try:
            version = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            missing[tier] = f"no model {name}@{alias}" + _why_not(client, name)
            continue
        trained_with = version.tags.get("feature_pipeline_version")
        if trained_with != FEATURE_PIPELINE_VERSION:
            raise ScoringProblem(
                f"model {name} version {version.version} (@{alias}) was trained with feature "
                f"pipeline {trained_with}, but this code builds features with pipeline "
                f"{FEATURE_PIPELINE_VERSION}; retrain with `giantwatch train` or install the "
                f"giantwatch version that trained it")
        versions[tier] = version
    if review:
        # Re-review models are an addition: a tier without one is scored without renewals.
        for tier, why in missing.items():
            log.info("%s re-reviews are left out: %s", tier, why)
        return versions
    if not versions:
        raise ScoringProblem(
            f"{'; '.join(missing.values())} in the MLflow store {uri}; train with "
            "`giantwatch train` (or set MLFLOW_TRACKING_URI to the store that has them)")
    for tier, why in missing.items():
        # A tier whose models all stayed out of production (lost to a baseline) is left out,
        # said once; the other tiers are scored.
        log.warning("%s is left out: %s", tier, why)
    return versions


def _why_not(client, name: str) -> str:
    """", the latest version v3 was held: PR-AUC ... does not beat ..." where the registry
    knows why no version has the alias."""
    from mlflow.exceptions import MlflowException

    try:
        latest = max(client.search_model_versions(f"name='{name}'"),
                     key=lambda v: int(v.version), default=None)
    except MlflowException:
        return ""
    if latest is None or "gate_decision" not in latest.tags:
        return ""
    return f" (the latest version v{latest.version} was {latest.tags['gate_decision']})"


def load_models(alias: str = "production", tiers: tuple[str, ...] = TIERS,
                review: bool = False) -> dict[str, RegisteredModel]:
    """The checked `registered_versions` of each tier, loaded (the TierModel inside the
    registered pyfunc); with ``review`` the tiers' re-review models (keyed by tier, possibly
    none)."""
    import mlflow

    loaded = {}
    for tier, version in registered_versions(alias, tiers, review).items():
        try:
            pyfunc = mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
            tier_model = pyfunc.unwrap_python_model().tier_model
        except (KeyError, AttributeError, ImportError, TypeError) as exc:
            # A version logged by an older giantwatch stores the model another way.
            raise ScoringProblem(
                f"model {version.name} version {version.version} cannot be loaded by this "
                f"giantwatch ({type(exc).__name__}: {exc}); it was probably saved by an older "
                "version: retrain with `giantwatch train`") from None
        loaded[tier] = RegisteredModel(tier, version.name, str(version.version),
                                       list(version.aliases), dict(version.tags), tier_model)
    return loaded
