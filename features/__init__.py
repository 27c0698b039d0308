"""giantwatch features."""
