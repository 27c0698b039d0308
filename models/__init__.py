"""giantwatch models."""
