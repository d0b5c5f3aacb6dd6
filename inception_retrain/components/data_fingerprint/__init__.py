"""DataFingerprint: what ImageExampleGen would read, fingerprinted before it runs (Kubeflow)."""
