"""Kubeflow targets of the pipeline: compile (open-source KFP 2 and Vertex AI Pipelines), the
container image check, and scheduling recurring runs through the KFP API. See kubeflow/README.md."""
