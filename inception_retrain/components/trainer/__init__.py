"""Trainer user code: the two-phase InceptionV3 fine-tune (run.run_fn is TFX's entry point)."""
