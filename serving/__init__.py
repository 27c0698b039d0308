"""giantwatch serving."""
