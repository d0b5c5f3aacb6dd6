"""The DAG's node ids, written once: create_pipeline names its nodes with them, and everything
that finds a node again (the run reader, the report step, the Kubeflow targets, the console
progress) looks them up here. Plain strings; no imports."""

DATA_FINGERPRINT = "DataFingerprint"
EXAMPLE_GEN = "ImageExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "ImportSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
DATA_GATE = "DataGate"
TRANSFORM = "Transform"
TRAINER = "Trainer"
BASELINE_RESOLVER = "latest_blessed_model_resolver"
EVALUATOR = "Evaluator"
PUSHER = "Pusher"
TEST_SPLIT_EVALUATOR = "TestSplitEvaluator"
RUN_REPORTER = "RunReporter"
# Kubeflow only, added to the compiled spec (kubeflow/exit_handler.py), not DAG nodes: the
# sub-DAG task holding every node, and the exit task that reports how it ended.
PIPELINE_DAG = "pipeline-dag"
FINAL_REPORT = "FinalReport"
