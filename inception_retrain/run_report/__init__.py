"""A run read back and rendered: the run record from ML Metadata and the run's artifacts, and what
is made of it (console summary, HTML run report and its JSON, model card)."""
