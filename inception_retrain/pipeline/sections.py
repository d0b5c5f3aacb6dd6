"""The typed sections create_pipeline takes besides the configuration's own (DataConfig,
GateThresholds, TrainConfig, EvaluationConfig), and the names of the DAG values a Kubeflow
compile may stand in for with RuntimeParameters. No TensorFlow import here, so the Kubeflow
parameter checks load without it."""
import dataclasses
from typing import Any, Tuple

from inception_retrain.components.data_gate.thresholds import rule_names


@dataclasses.dataclass(frozen=True)
class DagPaths:
    """The pipeline's name and where it reads and keeps its state."""

    pipeline_name: str
    pipeline_root: str
    data_root: str       # ImageExampleGen's input_base
    schema_path: str     # the curated schema ImportSchemaGen imports
    split_ledger: str    # each group's split, kept across runs


@dataclasses.dataclass(frozen=True)
class ServingSection:
    """Where blessed models are pushed (<push_base>/<integer version>/) and how many stay."""

    push_base: str
    keep_versions: int


@dataclasses.dataclass(frozen=True)
class RuntimeSection:
    """How the runner runs the DAG, not what it computes.

    served_state: what push_base serves as the run starts (a local runner reads it): part of
    the Evaluator's cache key, so a blessing cached against one served version is never reused
    once another is served. fingerprint_data: add DataFingerprint before ImageExampleGen (for
    Kubeflow backends that run no ExampleGen driver: their cache then follows the data)."""

    enable_cache: bool
    beam_pipeline_args: Tuple[str, ...]
    metadata_connection_config: Any = None
    served_state: str = ""
    fingerprint_data: bool = False


# The DAG values create_pipeline's `parameters` may replace, as "<section>.<field>" of its
# arguments, plus the Trainer's whole custom_config (every training key, as JSON) and the
# gating EvalConfig (built from evaluation.accuracy_floor and top_k).
TRAINER_CUSTOM_CONFIG = "trainer.custom_config"
EVALUATOR_EVAL_CONFIG = "evaluator.eval_config"
RUNTIME_SETTABLE = frozenset({
    "paths.data_root", "paths.schema_path", "paths.split_ledger",
    "evaluation.max_accuracy_drop", "serving.push_base", "serving.keep_versions",
    TRAINER_CUSTOM_CONFIG, EVALUATOR_EVAL_CONFIG,
    *(f"gate.{name}" for name in rule_names()),
})
