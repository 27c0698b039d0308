"""giantwatch training."""
