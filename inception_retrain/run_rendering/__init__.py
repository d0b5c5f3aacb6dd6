"""Rendering a run record: the console summary, the HTML report and its JSON, the model card and
the history. Every renderer takes the record (run_reading.record) and reads nothing else."""
