"""Evaluation against the model TF Serving serves now, and the held-out test-split record."""
