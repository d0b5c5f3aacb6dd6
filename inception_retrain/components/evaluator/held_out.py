"""HeldOutEvaluator: the blessed candidate on the test split, for the record.

The test split is evaluated once, on a blessed candidate only, and never used for gating:
TFMA's metrics plus the candidate-only evidence record (components.evaluator.scoring:
examples and slides per class, calibration, group-level results) beside them.
"""
import os
from typing import Any, Dict, List, Sequence

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import json_utils, proto_utils

from inception_retrain.components.evaluator import contract, evidence_contract, scoring
from inception_retrain.components.evaluator.evaluator import (
    DEFAULT_EVIDENCE,
    EVIDENCE_COUNT_PARAMETERS,
    evidence_parameters,
    pop_evidence_settings,
    serving_dir,
    with_per_class_metrics,
    with_site_slices,
)
from inception_retrain.components.trainer import export


class HeldOutEvaluatorSpec(types.ComponentSpec):
    PARAMETERS = {
        standard_component_specs.EVAL_CONFIG_KEY: ExecutionParameter(type=tfma.EvalConfig),
        standard_component_specs.EXAMPLE_SPLITS_KEY: ExecutionParameter(type=str),
        **evidence_parameters(EVIDENCE_COUNT_PARAMETERS),
    }
    INPUTS = {
        standard_component_specs.EXAMPLES_KEY: ChannelParameter(
            type=standard_artifacts.Examples),
        standard_component_specs.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        standard_component_specs.BLESSING_KEY: ChannelParameter(
            type=standard_artifacts.ModelBlessing),
    }
    OUTPUTS = {
        standard_component_specs.EVALUATION_KEY: ChannelParameter(
            type=standard_artifacts.ModelEvaluation),
    }


def _split_has_examples(examples: List[types.Artifact], split: str) -> bool:
    for uri in artifact_utils.get_split_uris(examples, split):
        for path in tf.io.gfile.glob(os.path.join(uri, "*")):
            for _ in tf.data.TFRecordDataset(path, compression_type="GZIP").take(1):
                return True
    return False


class HeldOutExecutor(evaluator_executor.Executor):
    """Runs TFX's Evaluator executor on the test split when the candidate was blessed, then
    writes the candidate's predictions and evidence record there.

    The EvalConfig must hold no thresholds: this evaluation records, it never gates."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        input_dict = dict(input_dict)
        exec_properties = dict(exec_properties)
        settings = pop_evidence_settings(exec_properties)
        blessing = artifact_utils.get_single_instance(
            input_dict.pop(standard_component_specs.BLESSING_KEY))
        evaluation = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EVALUATION_KEY])
        splits = json_utils.loads(exec_properties[standard_component_specs.EXAMPLE_SPLITS_KEY])
        eval_config = tfma.EvalConfig()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.EVAL_CONFIG_KEY],
                                  eval_config)
        if tfma.metrics.metric_thresholds_from_metrics_specs(eval_config.metrics_specs):
            raise ValueError("the test-split EvalConfig must hold no thresholds: the test "
                             "split is recorded, never used for gating")
        empty = [s for s in splits if not _split_has_examples(
            input_dict[standard_component_specs.EXAMPLES_KEY], s)]
        if blessing.get_int_custom_property("blessed") != 1:
            skipped = "candidate not blessed"
        elif empty:
            skipped = f"split(s) {', '.join(empty)} hold no examples"
        else:
            skipped = ""
        evaluation.set_string_custom_property(contract.SKIPPED_PROPERTY, skipped)
        if skipped:
            contract.write_gate_record(evaluation.uri, {"skipped": skipped})
            return
        model = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.MODEL_KEY])
        class_names = export.read_labels(serving_dir(model))
        exec_properties[standard_component_specs.EVAL_CONFIG_KEY] = proto_utils.proto_to_json(
            with_site_slices(with_per_class_metrics(eval_config, len(class_names), 0.0)))
        super().Do(input_dict, output_dict, exec_properties)
        contract.write_gate_record(evaluation.uri, {"skipped": "", "splits": splits,
                                                    "class_names": class_names})
        evidence_contract.write_evidence(evaluation.uri, scoring.evaluate_evidence(
            input_dict[standard_component_specs.EXAMPLES_KEY], splits, class_names,
            serving_dir(model), None, "", settings, evaluation.uri, gating=False))


class HeldOutEvaluator(base_beam_component.BaseBeamComponent):
    """Metrics of the blessed candidate on held-out splits (default: test), for the record."""

    SPEC_CLASS = HeldOutEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(HeldOutExecutor)

    def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
                 blessing: types.BaseChannel, eval_config: tfma.EvalConfig,
                 example_splits: Sequence[str] = ("test",),
                 min_eval_examples_per_class: int = DEFAULT_EVIDENCE.min_examples_per_class,
                 min_eval_groups_per_class: int = DEFAULT_EVIDENCE.min_groups_per_class,
                 significance_level: float = DEFAULT_EVIDENCE.significance_level,
                 group_aggregation: str = DEFAULT_EVIDENCE.group_aggregation):
        super().__init__(spec=HeldOutEvaluatorSpec(
            examples=examples, model=model, blessing=blessing, eval_config=eval_config,
            example_splits=json_utils.dumps(list(example_splits)),
            min_eval_examples_per_class=int(min_eval_examples_per_class),
            min_eval_groups_per_class=int(min_eval_groups_per_class),
            significance_level=float(significance_level), group_aggregation=group_aggregation,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation)))
