"""RunReporter: the last step of a Kubeflow run, which reads the run from its inputs and writes the
report and model card a local run's command writes after the run."""
