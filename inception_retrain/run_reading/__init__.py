"""Reading a run back, once, into one typed record (record.py): from ML Metadata and the run's
artifacts (reader.py, evaluation.py), or from a Kubeflow step's input artifacts (artifacts.py);
the work dir's history (history.py). Nothing here renders."""
