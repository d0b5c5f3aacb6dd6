"""create_pipeline: the one TFX DAG, built from explicit arguments; runners only call it.

ImageExampleGen -> StatisticsGen -> ImportSchemaGen (curated schema) -> ExampleValidator ->
DataGate -> Transform -> Trainer -> Evaluator (vs. the served model) -> Pusher (TF Serving
versions), and the test split evaluated on a blessed candidate.
"""
import dataclasses
import os
from types import MappingProxyType
from typing import Any, Callable, Dict, Mapping, Optional

import tensorflow_model_analysis as tfma

# TFX's modules, not its v1 facade: tfx.v1 imports every extension, the Vertex AI clients
# among them (3 s of every process's start-up, the CLI's and each Kubeflow pod's).
from tfx.components import ExampleValidator, StatisticsGen, Trainer, Transform
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import trainer_pb2, transform_pb2
from tfx.types import Channel, standard_artifacts

from inception_retrain.components import features, node_ids
from inception_retrain.components.data_fingerprint.component import DataFingerprint
from inception_retrain.components.data_gate.component import DataGate
from inception_retrain.components.data_gate.thresholds import GateThresholds, rule_names
from inception_retrain.components.evaluator.evaluator import GatedEvaluator
from inception_retrain.components.evaluator.held_out import HeldOutEvaluator
from inception_retrain.components.image_example_gen import (
    component as image_example_gen,
)
from inception_retrain.components.pusher.component import ServingPusher
from inception_retrain.components.trainer.config import TrainConfig
from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline.data_config import DataConfig
from inception_retrain.pipeline.sections import (
    EVALUATOR_EVAL_CONFIG,
    RUNTIME_SETTABLE,
    TRAINER_CUSTOM_CONFIG,
    DagPaths,
    RuntimeSection,
    ServingSection,
)

PREPROCESSING_FN = "inception_retrain.components.transform.preprocessing.preprocessing_fn"
RUN_FN = "inception_retrain.components.trainer.run.run_fn"
TEST_SPLIT = "test"


def create_eval_config(accuracy_floor: Optional[float], top_k: int = 5) -> tfma.EvalConfig:
    """Multi-class metrics; accuracy gated by an absolute floor.

    Overall: example count, accuracy, top-k accuracy, cross-entropy, confusion matrix. The
    GatedEvaluator adds per-class precision, recall and calibration once it knows the classes.
    No regression is checked on TFMA's point estimates: the GatedEvaluator's paired rule on
    the same examples does it (evaluation.max_accuracy_drop, evaluation.regression_rule).
    With accuracy_floor None there are no thresholds (a record-only evaluation, e.g. of the
    test split).
    """
    accuracy = tfma.MetricConfig(class_name="SparseCategoricalAccuracy")
    if accuracy_floor is not None:
        accuracy.threshold.value_threshold.lower_bound.value = accuracy_floor
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name=features.SERVING_EXAMPLES_SIGNATURE,
            preprocessing_function_names=[features.TRANSFORM_SIGNATURE],
            label_key=features.TRANSFORMED_LABEL_KEY,
            prediction_key="scores")],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            accuracy,
            tfma.MetricConfig(class_name="SparseTopKCategoricalAccuracy",
                              config=f'"k": {int(top_k)}'),
            tfma.MetricConfig(class_name="SparseCategoricalCrossentropy"),
            tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
        ])])


def create_pipeline(
    *,
    paths: DagPaths,
    data: DataConfig,
    gate: GateThresholds,
    training: TrainConfig,
    evaluation: config_lib.EvaluationConfig,
    serving: ServingSection,
    runtime: RuntimeSection,
    parameters: Mapping[str, Any] = MappingProxyType({}),
    report_step: Optional[Callable[[Dict[str, Any]], Any]] = None,
) -> Pipeline:
    """The whole DAG from typed sections; nothing has a default here (the defaults live once,
    in pipeline.config) and nothing is global. One function on purpose (longer than 80 lines):
    the DAG reads top to bottom, node by node, as in TFX's templates. Runners call it through
    dag_arguments, the one mapping from a PipelineConfig.

    data: where the images are and how they are split (its gate keys are read from `gate`).
    parameters: stand-ins (e.g. Kubeflow RuntimeParameters) for the DAG values named in
    sections.RUNTIME_SETTABLE, so a compiled run can change them: "<section>.<field>" of these
    arguments, the Trainer's whole custom_config (the JSON of every training key) and the gating
    EvalConfig (kubeflow/compile.py). The sections themselves stay plain, checked values.

    report_step: makes a last node from the DAG's nodes by id (Kubeflow runs: the
    run_report.pipeline_step that writes the report and model card a local run's command
    writes after the run).

    evaluation.baseline: where the Evaluator's no-regression baseline comes from.
      "served": the version TF Serving serves under push_base when the Evaluator runs (no
        Resolver node: works on open-source Kubeflow Pipelines; the push destination must be
        readable from the pipeline's pods).
      "latest_blessed": a Resolver node (LatestBlessedModelStrategy); local runs only, since
        open-source KFP cannot run resolvers.
      "none": absolute floors only.
    Blessed models are pushed by ServingPusher to push_base/<integer version>/, keeping the
    newest keep_versions; the Pusher checks runtime.served_state once more when it pushes
    (compare and swap). A "test" split, when configured, is evaluated once on a blessed
    candidate (HeldOutEvaluator) and recorded, never gated on.
    """
    unknown = sorted(set(parameters) - RUNTIME_SETTABLE)
    if unknown:
        raise KeyError(f"create_pipeline cannot take parameters for {unknown}; it takes "
                       f"{sorted(RUNTIME_SETTABLE)}")

    def value(key: str, section: Any) -> Any:
        """A section's field, or the stand-in for it."""
        return parameters.get(key, getattr(section, key.partition(".")[2]))

    baseline = evaluation.baseline
    if baseline not in config_lib.BASELINES:
        raise ValueError(f"baseline must be one of {config_lib.BASELINES}, got {baseline!r}")
    data_root, push_base = value("paths.data_root", paths), value("serving.push_base", serving)
    ingest_options = data.ingest_options()
    fingerprint_nodes, input_fingerprint = [], None
    if runtime.fingerprint_data:
        fingerprint_nodes.append(DataFingerprint(
            input_base=data_root,
            input_config=image_example_gen.input_config(
                data.input_pattern, data.split_folders, ingest_options)
        ).with_id(node_ids.DATA_FINGERPRINT))
        input_fingerprint = fingerprint_nodes[0].outputs["fingerprint"].future()[0].value
    example_gen = image_example_gen.ImageExampleGen(
        input_base=data_root, splits=data.splits, input_pattern=data.input_pattern,
        split_folders=data.split_folders, options=ingest_options,
        input_fingerprint=input_fingerprint,
        split_ledger=value("paths.split_ledger", paths)).with_id(node_ids.EXAMPLE_GEN)
    statistics_gen = StatisticsGen(
        examples=example_gen.outputs["examples"]).with_id(node_ids.STATISTICS_GEN)
    schema_gen = ImportSchemaGen(
        schema_file=value("paths.schema_path", paths)).with_id(node_ids.SCHEMA_GEN)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"]).with_id(node_ids.EXAMPLE_VALIDATOR)
    data_gate = DataGate(
        examples=example_gen.outputs["examples"],
        statistics=statistics_gen.outputs["statistics"],
        anomalies=example_validator.outputs["anomalies"],
        **{rule: value(f"gate.{rule}", gate) for rule in rule_names(node_ids.DATA_GATE)}
    ).with_id(node_ids.DATA_GATE)
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        materialize=False,
        disable_statistics=True,
        splits_config=transform_pb2.SplitsConfig(analyze=["train"]),
        custom_config={"image_size": training.image_size,
                       "stain_normalization": training.stain_normalization}
    ).with_id(node_ids.TRANSFORM)
    transform.add_upstream_node(data_gate)  # no Transform work on data that failed the gate
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        hyperparameters=data_gate.outputs["data_facts"],
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config=parameters.get(TRAINER_CUSTOM_CONFIG, dataclasses.asdict(training))
    ).with_id(node_ids.TRAINER)
    # What both Evaluators' evidence records count and estimate with.
    evidence_counts = dict(min_eval_examples_per_class=evaluation.min_eval_examples_per_class,
                           min_eval_groups_per_class=evaluation.min_eval_groups_per_class,
                           significance_level=evaluation.significance_level,
                           group_aggregation=evaluation.group_aggregation)
    baseline_nodes = []
    baseline_model = None
    if baseline == "latest_blessed":
        baseline_resolver = Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        ).with_id(node_ids.BASELINE_RESOLVER)
        baseline_nodes.append(baseline_resolver)
        baseline_model = baseline_resolver.outputs["model"]
    evaluator = GatedEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_model,
        serving_base=push_base if baseline == "served" else "",
        example_splits=["eval"],
        eval_config=parameters.get(EVALUATOR_EVAL_CONFIG, create_eval_config(
            evaluation.accuracy_floor, evaluation.top_k)),
        per_class_recall_floor=evaluation.per_class_recall_floor,
        min_site_accuracy=evaluation.min_site_accuracy,
        max_class_recall_drop=evaluation.max_class_recall_drop,
        max_accuracy_drop=value("evaluation.max_accuracy_drop", evaluation),
        regression_rule=evaluation.regression_rule,
        min_group_accuracy=evaluation.min_group_accuracy,
        **evidence_counts,
        served_state=runtime.served_state if baseline == "served" else ""
    ).with_id(node_ids.EVALUATOR)
    pusher = ServingPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_base=push_base,
        keep_versions=value("serving.keep_versions", serving)).with_id(node_ids.PUSHER)
    held_out_nodes = []
    if TEST_SPLIT in {name for name, _ in data.splits}:
        held_out_nodes.append(HeldOutEvaluator(
            examples=example_gen.outputs["examples"],
            model=trainer.outputs["model"],
            blessing=evaluator.outputs["blessing"],
            eval_config=create_eval_config(None, evaluation.top_k),
            example_splits=[TEST_SPLIT], **evidence_counts).with_id(node_ids.TEST_SPLIT_EVALUATOR))

    nodes = [*fingerprint_nodes, example_gen, statistics_gen, schema_gen, example_validator,
             data_gate, transform, trainer, *baseline_nodes, evaluator, pusher, *held_out_nodes]
    if report_step is not None:
        nodes.append(report_step({node.id: node for node in nodes}))
    return Pipeline(
        pipeline_name=paths.pipeline_name,
        pipeline_root=paths.pipeline_root,
        components=nodes,
        enable_cache=runtime.enable_cache,
        metadata_connection_config=runtime.metadata_connection_config,
        beam_pipeline_args=list(runtime.beam_pipeline_args))


def dag_arguments(config: config_lib.PipelineConfig, data_root: str, schema_path: str
                  ) -> Dict[str, Any]:
    """create_pipeline's sections from a PipelineConfig: the one mapping every runner uses.

    The local runner adds its metadata connection and served state to `runtime`; the Kubeflow
    compile adds `parameters` (RuntimeParameters that default to these values) and its report
    step. Every configuration key reaches one of them (tests/unit/pipeline/test_dag_mapping.py).
    """
    return dict(
        paths=DagPaths(pipeline_name=config.pipeline_name, pipeline_root=config.pipeline_root,
                       data_root=data_root, schema_path=schema_path,
                       split_ledger=config.split_ledger),
        data=config.data,
        gate=GateThresholds.from_values(dataclasses.asdict(config.data)),
        training=config.training,
        evaluation=config.evaluation,
        serving=ServingSection(push_base=config.push_base, keep_versions=config.keep_versions),
        runtime=RuntimeSection(enable_cache=config.enable_cache,
                               beam_pipeline_args=tuple(config.beam_args)),
    )


def create_pipeline_from_config(config: config_lib.PipelineConfig, schema_path: str,
                                data_root: str, metadata_connection_config=None,
                                served_state: str = "") -> Pipeline:
    """The DAG a local run executes: dag_arguments as they are."""
    arguments = dag_arguments(config, data_root, schema_path)
    arguments["runtime"] = dataclasses.replace(
        arguments["runtime"], metadata_connection_config=metadata_connection_config,
        served_state=served_state)
    return create_pipeline(**arguments)


def default_schema_path() -> str:
    """schema/schema.pbtxt of this checkout (the container image copies the repo alike)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # inception_retrain/
    return os.path.join(os.path.dirname(package), "schema", "schema.pbtxt")
