"""GatedEvaluator: TFX's Evaluator (real TFMA), gating against the model TF Serving serves now.

It runs the standard Evaluator executor after three decisions made at execution time:
- Baseline: with `serving_base` set, the version TF Serving serves at that moment (the highest
  under <serving_base>) is snapshotted and used as the baseline model. No Resolver node is
  needed, so this works on open-source Kubeflow Pipelines as well as locally, and the baseline
  can never be a stale cached artifact: a rollback is taken into account by the next
  evaluation. A baseline_model channel (e.g. a LatestBlessedModelStrategy Resolver) is used
  instead when given. No served model (first run) -> no baseline: only absolute floors gate.
- A baseline whose class names differ from the candidate's cannot be compared (scores have
  another meaning); it is dropped, and the gate record says so.
- Per-class precision and recall (of the top-1 class, components.evaluator.metrics) and
  calibration need the class ids, known only from the trained model (assets.extra/labels.txt):
  they are added to the EvalConfig here, with the optional per-class recall floor.
- After TFMA (floors, per-class metrics), every eval example is scored by the candidate and
  the baseline (components.evaluator.scoring): the blessing stands only with enough evidence
  per class and no regression on the paired comparison of the same examples
  (components.evaluator.evidence_rules); the record is <evaluation>/evidence.json.
The decisions are written to <evaluation>/gate.json and as custom properties on the blessing.
"""
import os
from typing import Any, Dict, List, Optional, Sequence

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx import types
from tfx.components.evaluator import constants as evaluator_constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import io_utils, json_utils, path_utils, proto_utils

from inception_retrain.components import features
from inception_retrain.components.evaluator import (
    contract,
    evidence_rules,
    metrics,
    scoring,
)
from inception_retrain.components.trainer import export
from inception_retrain.serving import versions

SERVING_BASE_KEY = "serving_base"
# What the push destination served when the DAG was built (local runs): part of the Evaluator's
# cache key, so a cached blessing is never reused once another version is served.
SERVED_STATE_KEY = "served_state"
PER_CLASS_RECALL_FLOOR_KEY = "per_class_recall_floor"
MAX_CLASS_RECALL_DROP_KEY = "max_class_recall_drop"
MIN_SITE_ACCURACY_KEY = "min_site_accuracy"
SITE_ACCURACY = "site_accuracy"   # the accuracy metric that carries the per-site floor
# The evidence rules' settings (evidence_rules.EvidenceSettings), as execution properties. The
# counting ones are the HeldOutEvaluator's too; the gating ones only the GatedEvaluator's.
EVIDENCE_COUNT_PARAMETERS = {"min_eval_examples_per_class": int, "min_eval_groups_per_class": int,
                             "significance_level": float, "group_aggregation": str}
EVIDENCE_GATE_PARAMETERS = {"max_accuracy_drop": float, "regression_rule": str,
                            "min_group_accuracy": float}
_SETTING_OF = {"min_eval_examples_per_class": "min_examples_per_class",
               "min_eval_groups_per_class": "min_groups_per_class"}
DEFAULT_EVIDENCE = evidence_rules.EvidenceSettings()


def pop_evidence_settings(exec_properties: Dict[str, Any]) -> evidence_rules.EvidenceSettings:
    """The evidence settings out of the execution properties (TFX's executor must not see
    them); absent ones keep EvidenceSettings' defaults."""
    values = {}
    for name, kind in {**EVIDENCE_COUNT_PARAMETERS, **EVIDENCE_GATE_PARAMETERS}.items():
        value = exec_properties.pop(name, None)
        if value is not None:
            values[_SETTING_OF.get(name, name)] = kind(value)
    return evidence_rules.EvidenceSettings(**values)


def evidence_parameters(names) -> Dict[str, ExecutionParameter]:
    """The spec's ExecutionParameters for those evidence settings."""
    kinds = {**EVIDENCE_COUNT_PARAMETERS, **EVIDENCE_GATE_PARAMETERS}
    return {name: ExecutionParameter(type=kinds[name], optional=True) for name in names}


def with_site_slices(eval_config: tfma.EvalConfig, min_site_accuracy: float = 0.0
                     ) -> tfma.EvalConfig:
    """Metrics per site (a SlicingSpec on features.SITE_KEY) besides the overall ones.

    TFMA applies a metric's plain `threshold` to every slice, so the configured thresholds
    move to per-slice thresholds of the overall slice: the floors and the no-regression check
    gate as before, and a small site cannot fail them. With min_site_accuracy > 0 a metric
    named site_accuracy must reach it on every site slice (the worst site's floor)."""
    config = tfma.EvalConfig()
    config.CopyFrom(eval_config)
    overall = tfma.SlicingSpec()
    site = tfma.SlicingSpec(feature_keys=[features.SITE_KEY])
    if site not in config.slicing_specs:
        config.slicing_specs.append(site)
    for spec in config.metrics_specs:
        for metric in spec.metrics:
            if metric.HasField("threshold"):
                metric.per_slice_thresholds.add(slicing_specs=[overall]).threshold.CopyFrom(
                    metric.threshold)
                metric.ClearField("threshold")
    if min_site_accuracy > 0:
        floor = tfma.MetricConfig(class_name="SparseCategoricalAccuracy",
                                  config=f'"name": "{SITE_ACCURACY}"')
        floor.per_slice_thresholds.add(slicing_specs=[site]).threshold.CopyFrom(
            tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
                lower_bound={"value": min_site_accuracy})))
        config.metrics_specs.append(tfma.MetricsSpec(metrics=[floor]))
    return config


def per_class_metrics_spec(num_classes: int, recall_floor: float = 0.0,
                           max_recall_drop: float = 1.0) -> tfma.MetricsSpec:
    """For each class id: precision and recall of the top-1 decision (what a client reading
    predicted_class gets; components.evaluator.metrics), calibration of the class's score
    (mean score / frequency) and a calibration plot. With recall_floor > 0, each class's
    recall must reach it (a class with no examples has no recall and fails the floor). With
    max_recall_drop < 1, each class's recall may be at most that much below the baseline's
    (a change threshold: it applies only when there is a baseline)."""
    recall = tfma.MetricConfig(class_name="TopOneRecall", module=metrics.MODULE)
    if recall_floor > 0:
        recall.threshold.value_threshold.CopyFrom(
            tfma.GenericValueThreshold(lower_bound={"value": recall_floor}))
    if max_recall_drop < 1:
        recall.threshold.change_threshold.CopyFrom(tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_recall_drop}))
    return tfma.MetricsSpec(
        binarize=tfma.BinarizationOptions(class_ids={"values": list(range(num_classes))}),
        metrics=[tfma.MetricConfig(class_name="TopOnePrecision", module=metrics.MODULE),
                 recall,
                 tfma.MetricConfig(class_name="Calibration"),
                 tfma.MetricConfig(class_name="CalibrationPlot")])


def with_per_class_metrics(eval_config: tfma.EvalConfig, num_classes: int,
                           recall_floor: float, max_recall_drop: float = 1.0) -> tfma.EvalConfig:
    config = tfma.EvalConfig()
    config.CopyFrom(eval_config)
    config.metrics_specs.append(per_class_metrics_spec(num_classes, recall_floor,
                                                       max_recall_drop))
    return config


def serving_dir(model: types.Artifact) -> str:
    return path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))


def _snapshot_served_model(serving_base: str, tmp_dir: str) -> Optional[types.Artifact]:
    """A Model artifact holding a copy of the served version, or None when nothing is served.

    A copy, so that retention or a rollback during the evaluation cannot pull it away."""
    version = versions.served_version(serving_base)
    if version is None:
        return None
    served = versions.version_path(serving_base, version)
    if not tf.io.gfile.exists(os.path.join(served, versions.SAVED_MODEL_FILE)):
        raise FileNotFoundError(f"served version {served} holds no saved_model.pb; "
                                "TF Serving cannot be serving it either")
    artifact = standard_artifacts.Model()
    artifact.uri = os.path.join(tmp_dir, "served_baseline")
    io_utils.copy_dir(served, path_utils.serving_model_path(artifact.uri))
    artifact.set_int_custom_property("served_version", version)
    artifact.set_string_custom_property("served_path", served)
    return artifact


class Executor(evaluator_executor.Executor):
    """Chooses the baseline, completes the EvalConfig, then runs TFX's Evaluator executor."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        exec_properties = dict(exec_properties)
        serving_base = exec_properties.pop(SERVING_BASE_KEY, None) or ""
        exec_properties.pop(SERVED_STATE_KEY, None)  # a cache key only
        recall_floor = float(exec_properties.pop(PER_CLASS_RECALL_FLOOR_KEY, None) or 0.0)
        site_floor = float(exec_properties.pop(MIN_SITE_ACCURACY_KEY, None) or 0.0)
        recall_drop = exec_properties.pop(MAX_CLASS_RECALL_DROP_KEY, None)
        recall_drop = 1.0 if recall_drop is None else float(recall_drop)
        settings = pop_evidence_settings(exec_properties)
        input_dict = dict(input_dict)
        candidate = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.MODEL_KEY])
        class_names = export.read_labels(serving_dir(candidate))
        record: Dict[str, Any] = {"class_names": class_names,
                                  "per_class_recall_floor": recall_floor,
                                  "min_site_accuracy": site_floor,
                                  "max_class_recall_drop": recall_drop}

        baseline = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
        if baseline:
            record["baseline"] = {"source": "baseline_model channel", "uri": baseline[0].uri}
        elif serving_base:
            snapshot = _snapshot_served_model(serving_base, self._get_tmp_dir())
            record["served_at_gate"] = (snapshot.get_int_custom_property("served_version")
                                        if snapshot is not None else None)
            if snapshot is None:
                record["baseline"] = {"source": "none", "note": f"nothing served under "
                                      f"{serving_base}: gated on the absolute floors only"}
            else:
                baseline = [snapshot]
                record["baseline"] = {
                    "source": "served",
                    "version": snapshot.get_int_custom_property("served_version"),
                    "path": snapshot.get_string_custom_property("served_path")}
        else:
            record["baseline"] = {"source": "none", "note": "no baseline configured: gated on "
                                  "the absolute floors only"}
        if baseline:
            baseline_classes = export.read_labels(serving_dir(baseline[0]))
            if baseline_classes != class_names:
                record["baseline"]["dropped"] = (
                    f"baseline classes {baseline_classes} differ from the candidate's "
                    f"{class_names}: no regression check, absolute floors only")
                baseline = []
        input_dict[standard_component_specs.BASELINE_MODEL_KEY] = baseline

        eval_config = tfma.EvalConfig()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.EVAL_CONFIG_KEY],
                                  eval_config)
        exec_properties[standard_component_specs.EVAL_CONFIG_KEY] = proto_utils.proto_to_json(
            with_site_slices(with_per_class_metrics(eval_config, len(class_names),
                                                    recall_floor, recall_drop), site_floor))
        super().Do(input_dict, output_dict, exec_properties)
        if baseline and not baseline[0].id:
            _drop_unregistered_baseline_id(output_dict)
        write_gate_record(output_dict, record)
        evaluation = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EVALUATION_KEY])
        # TFX's Evaluator reads an unset example_splits as ["eval"]; the same examples here.
        splits = json_utils.loads(exec_properties.get(
            standard_component_specs.EXAMPLE_SPLITS_KEY) or "null") or ["eval"]
        evidence = scoring.evaluate_evidence(
            input_dict[standard_component_specs.EXAMPLES_KEY], splits, class_names,
            serving_dir(candidate), serving_dir(baseline[0]) if baseline else None,
            _baseline_name(record["baseline"]), settings, evaluation.uri, gating=True)
        scoring.gate(artifact_utils.get_single_instance(
            output_dict[standard_component_specs.BLESSING_KEY]), evidence, evaluation.uri,
            class_names)


def _baseline_name(baseline: Dict[str, Any]) -> str:
    """How the evidence record names the baseline: "served version 3", or where it came from."""
    if baseline["source"] == "served":
        return f"served version {baseline['version']}"
    return f"{baseline['source']} ({baseline['uri']})" if "uri" in baseline else baseline["source"]


def _drop_unregistered_baseline_id(output_dict: Dict[str, List[types.Artifact]]) -> None:
    """TFX's Evaluator records the baseline's ML Metadata id on the blessing. The served-model
    snapshot is no ML Metadata artifact (id 0), so that id names nothing, and TFX's Kubeflow V2
    entrypoint, which maps recorded ids back to artifact names, fails on it (KeyError: 0). The
    blessing keeps the baseline's path (baseline_model) and baseline_served_version instead."""
    for blessing in output_dict.get(standard_component_specs.BLESSING_KEY, []):
        properties = blessing.mlmd_artifact.custom_properties
        if evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY in properties:
            del properties[evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY]


def write_gate_record(output_dict: Dict[str, List[types.Artifact]], record: Dict) -> None:
    evaluation = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EVALUATION_KEY])
    contract.write_gate_record(evaluation.uri, record, indent=2)
    baseline = record["baseline"]
    for artifact in [evaluation] + list(output_dict.get(
            standard_component_specs.BLESSING_KEY, [])):
        artifact.set_string_custom_property("baseline_source", baseline["source"] + (
            " (dropped)" if "dropped" in baseline else ""))
        if "version" in baseline:
            artifact.set_int_custom_property("baseline_served_version", baseline["version"])
            artifact.set_string_custom_property(
                evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline["path"])
        if "served_at_gate" in record:
            served = record["served_at_gate"]
            artifact.set_string_custom_property(
                contract.SERVED_AT_GATE_PROPERTY,
                contract.NOTHING_SERVED if served is None else str(served))


class GatedEvaluatorSpec(standard_component_specs.EvaluatorSpec):
    """EvaluatorSpec plus where TF Serving reads models and the per-class recall floor."""

    PARAMETERS = dict(standard_component_specs.EvaluatorSpec.PARAMETERS, **{
        SERVING_BASE_KEY: ExecutionParameter(type=str, optional=True),
        SERVED_STATE_KEY: ExecutionParameter(type=str, optional=True),
        PER_CLASS_RECALL_FLOOR_KEY: ExecutionParameter(type=float, optional=True),
        MIN_SITE_ACCURACY_KEY: ExecutionParameter(type=float, optional=True),
        MAX_CLASS_RECALL_DROP_KEY: ExecutionParameter(type=float, optional=True),
        **evidence_parameters({**EVIDENCE_COUNT_PARAMETERS, **EVIDENCE_GATE_PARAMETERS}),
    })


class GatedEvaluator(base_beam_component.BaseBeamComponent):
    """TFX Evaluator whose baseline is the served model (see the module docstring)."""

    SPEC_CLASS = GatedEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
                 eval_config: tfma.EvalConfig, example_splits: Sequence[str] = ("eval",),
                 serving_base: str = "", baseline_model: Optional[types.BaseChannel] = None,
                 per_class_recall_floor: float = 0.0, served_state: str = "",
                 min_site_accuracy: float = 0.0, max_class_recall_drop: float = 1.0,
                 max_accuracy_drop: float = DEFAULT_EVIDENCE.max_accuracy_drop,
                 min_eval_examples_per_class: int = DEFAULT_EVIDENCE.min_examples_per_class,
                 min_eval_groups_per_class: int = DEFAULT_EVIDENCE.min_groups_per_class,
                 significance_level: float = DEFAULT_EVIDENCE.significance_level,
                 regression_rule: str = DEFAULT_EVIDENCE.regression_rule,
                 group_aggregation: str = DEFAULT_EVIDENCE.group_aggregation,
                 min_group_accuracy: float = DEFAULT_EVIDENCE.min_group_accuracy):
        if serving_base and baseline_model is not None:
            raise ValueError("give either serving_base or baseline_model, not both")
        super().__init__(spec=GatedEvaluatorSpec(
            examples=examples, model=model, baseline_model=baseline_model,
            eval_config=eval_config, example_splits=json_utils.dumps(list(example_splits)),
            serving_base=serving_base or None,
            served_state=served_state or None,
            per_class_recall_floor=float(per_class_recall_floor),
            min_site_accuracy=float(min_site_accuracy),
            max_class_recall_drop=float(max_class_recall_drop),
            max_accuracy_drop=max_accuracy_drop,  # a float, or a Kubeflow RuntimeParameter
            min_eval_examples_per_class=int(min_eval_examples_per_class),
            min_eval_groups_per_class=int(min_eval_groups_per_class),
            significance_level=float(significance_level), regression_rule=regression_rule,
            group_aggregation=group_aggregation, min_group_accuracy=float(min_group_accuracy),
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
