"""The compiled pipeline's runtime parameters: their names, what each one feeds, and how a
`--param KEY=VALUE` (a parameter name or a config-style key such as training.phase1_epochs)
becomes a checked parameter value. No TensorFlow or TFX import here, so checks answer at once.

TFX 1.16's RuntimeParameter (int, float or str) can only stand for a whole execution property.
Epochs and learning rates live inside the Trainer's custom_config and the accuracy floor
inside the Evaluator's EvalConfig, so those two are runtime parameters holding JSON; the
config-style keys below (training.*, evaluation.accuracy_floor, ...) edit them field by field.
"""
import dataclasses
import json
import typing
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from inception_retrain.components.trainer.config import TrainConfig
from inception_retrain.kubeflow import targets
from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline import sections


@dataclasses.dataclass(frozen=True)
class RuntimeParameterSpec:
    """One runtime parameter of the compiled pipeline, declared once.

    replaces: the DAG value it stands in for (a key of sections.RUNTIME_SETTABLE); its compiled
    default is that value of pipeline.dag_arguments ("" for an exit task parameter, which no
    DAG node reads: EXIT_TASK_PARAMETERS). config_key: the config-style key `--param`
    also accepts for it, checked as the config file's key is ("" = none). where: "pods" for a
    path every pod must reach (gs:// or a mounted volume), "image" for one that may lie in the
    container image, "" for a value that is no path. description: what it feeds, shown in the
    KFP UI."""

    name: str
    ptype: type
    replaces: str
    description: str
    config_key: str = ""
    where: str = ""


PARAMETERS: Tuple[RuntimeParameterSpec, ...] = (
    RuntimeParameterSpec("data_root", str, "paths.data_root",
                         "ImageExampleGen input_base: <data_root>/<class>/<image files>",
                         config_key="data.root", where="pods"),
    RuntimeParameterSpec("schema_path", str, "paths.schema_path",
                         "ImportSchemaGen schema_file (default: the schema baked into the image)",
                         where="image"),
    RuntimeParameterSpec("min_examples_per_class", int, "gate.min_examples_per_class",
                         "DataGate: fewest train examples any class may have",
                         config_key="data.min_examples_per_class"),
    RuntimeParameterSpec("max_quarantined_fraction", float, "gate.max_quarantined_fraction",
                         "DataGate: largest share of unreadable image files",
                         config_key="data.max_quarantined_fraction"),
    RuntimeParameterSpec("training_config", str, sections.TRAINER_CUSTOM_CONFIG,
                         "Trainer custom_config: JSON object with every training.* key "
                         "(epochs, learning rates, ...)"),
    RuntimeParameterSpec("eval_config", str, sections.EVALUATOR_EVAL_CONFIG,
                         "Evaluator eval_config: tfma.EvalConfig as JSON (accuracy floor)"),
    RuntimeParameterSpec("max_accuracy_drop", float, "evaluation.max_accuracy_drop",
                         "Evaluator: how far the paired accuracy difference vs. the baseline "
                         "may fall below 0", config_key="evaluation.max_accuracy_drop"),
    RuntimeParameterSpec("push_base", str, "serving.push_base",
                         "ServingPusher and served baseline: TF Serving's model base path "
                         "(<push_base>/<integer version>/)", where="pods"),
    RuntimeParameterSpec("keep_versions", int, "serving.keep_versions",
                         "ServingPusher: version directories kept under push_base",
                         config_key="keep_versions"),
    RuntimeParameterSpec("split_ledger", str, "paths.split_ledger",
                         "ImageExampleGen: each group's split, kept across runs (default: "
                         "<push_base>.split_ledger.json; set it with push_base)", where="pods"),
)
# Read by the exit task only (kubeflow/exit_task.py), declared at the root when the package has
# one; the default is the config key's value.
EXIT_TASK_PARAMETERS: Tuple[RuntimeParameterSpec, ...] = (
    RuntimeParameterSpec("webhook_url", str, "",
                         "Exit task: the run's verdict is POSTed here (Slack-compatible JSON "
                         "with a text field); empty = no message", config_key="webhook_url"),
)
BY_NAME = {spec.name: spec for spec in PARAMETERS + EXIT_TASK_PARAMETERS}
# Config-style keys `--param` accepts for a plain parameter.
CONFIG_KEYS = {spec.config_key: spec.name for spec in PARAMETERS + EXIT_TASK_PARAMETERS
               if spec.config_key}
ACCURACY_METRIC = "SparseCategoricalAccuracy"
_TYPE_OF_SPEC = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": float}
_TRAINING_TYPES = typing.get_type_hints(TrainConfig)


def training_config_json(training: TrainConfig) -> str:
    """Every training key, so a run-time edit never falls back to class defaults silently."""
    return json.dumps(dataclasses.asdict(training), sort_keys=True)


def exit_task_defaults(config: config_lib.PipelineConfig) -> Dict[str, Any]:
    """The exit task parameters' compiled defaults: their config keys' values."""
    return {spec.name: getattr(config, spec.config_key) for spec in EXIT_TASK_PARAMETERS}


def default_values(arguments: Mapping[str, Any], eval_config_json: str) -> Dict[str, Any]:
    """The compiled defaults: the values of pipeline.dag_arguments (the configuration the
    pipeline was compiled with) that the parameters replace."""
    whole = {sections.TRAINER_CUSTOM_CONFIG: training_config_json(arguments["training"]),
             sections.EVALUATOR_EVAL_CONFIG: eval_config_json}
    values = {}
    for spec in PARAMETERS:
        section, _, field = spec.replaces.partition(".")
        values[spec.name] = (whole[spec.replaces] if spec.replaces in whole
                             else getattr(arguments[section], field))
    return values


def spec_parameters(spec: Mapping[str, Any]) -> Dict[str, Tuple[type, Any]]:
    """name -> (type, default) of a compiled PipelineSpec dict's root input parameters."""
    declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    result = {}
    for name, definition in declared.items():
        kind = definition.get("parameterType")
        if kind not in _TYPE_OF_SPEC:
            raise config_lib.ConfigError(
                f"pipeline parameter {name!r} has type {kind!r}; expected one of "
                f"{sorted(_TYPE_OF_SPEC)} (is this a package compiled by `inception-retrain "
                "compile --target kfp`?)")
        result[name] = (_TYPE_OF_SPEC[kind], definition.get("defaultValue"))
    return result


def _coerce(key: str, text: str, ptype: type) -> Any:
    if ptype is str:
        return text
    if ptype is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise config_lib.ConfigError(f"{key} must be true or false, got {text!r}")
        return text.lower() in ("true", "1", "yes")
    try:
        return ptype(text)
    except ValueError:
        raise config_lib.ConfigError(
            f"{key} must be {'an integer' if ptype is int else 'a number'}, got {text!r}") from None


def _json_object(key: str, text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise config_lib.ConfigError(f"{key} must be a JSON object: {err}") from None
    if not isinstance(value, dict):
        raise config_lib.ConfigError(f"{key} must be a JSON object, got {text!r}")
    return value


def check_training_config(key: str, text: str, compiled_text: str) -> Dict[str, Any]:
    """Parses and validates a training_config value; image_size is fixed at compile time."""
    values = _json_object(key, text)
    compiled = _json_object("compiled training_config", compiled_text)
    missing = sorted(set(compiled) - set(values))
    if missing:
        raise config_lib.ConfigError(
            f"{key} must set every training key (missing: {', '.join(missing)}); start from the "
            "compiled default")
    try:
        TrainConfig.from_dict(values)
    except (TypeError, ValueError) as err:
        raise config_lib.ConfigError(f"{key}: {err}") from None
    if values["image_size"] != compiled["image_size"]:
        raise config_lib.ConfigError(
            f"training.image_size is fixed at compile time ({compiled['image_size']}): Transform "
            "resizes images to it. Recompile with --set training.image_size=... instead")
    return values


def _set_accuracy_floor(eval_config: Dict[str, Any], value: float) -> None:
    """Edits the accuracy floor that pipeline.create_eval_config builds."""
    thresholds = [metric.setdefault("threshold", {})
                  for spec in eval_config.get("metrics_specs", [])
                  for metric in spec.get("metrics", [])
                  if metric.get("class_name") == ACCURACY_METRIC]
    if not thresholds:
        raise config_lib.ConfigError(
            f"eval_config has no {ACCURACY_METRIC} metric to set evaluation.accuracy_floor on")
    for threshold in thresholds:
        threshold.setdefault("value_threshold", {})["lower_bound"] = value


def resolve(assignments: Sequence[str], declared: Mapping[str, Tuple[type, Any]],
            mount_paths: Sequence[str] = ()) -> Dict[str, Any]:
    """`KEY=VALUE` strings -> the runtime parameter values to send (only those set).
    mount_paths: where the package mounts volumes (data_root and push_base may lie there).

    KEY is a parameter name, a config key a parameter stands for (CONFIG_KEYS, e.g. data.root),
    training.<key> or evaluation.accuracy_floor. Every value is checked like the config file's.
    """
    values: Dict[str, Any] = {}
    training_edits: Dict[str, str] = {}
    accuracy_floor: Optional[float] = None

    def current(name: str) -> Any:
        if name not in declared:
            raise config_lib.ConfigError(
                f"this pipeline package has no runtime parameter {name!r}")
        return values.get(name, declared[name][1])

    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise config_lib.ConfigError(
                f"--param expects KEY=VALUE (e.g. training.phase1_epochs=3), got {assignment!r}")
        if key.startswith("training."):
            training_edits[key[len("training."):]] = text
        elif key == "evaluation.accuracy_floor":
            accuracy_floor = _coerce(key, text, float)
        else:
            name = CONFIG_KEYS.get(key, key)
            if name not in declared:
                known = sorted(set(declared) | set(CONFIG_KEYS) | {
                    "training.<key>", "evaluation.accuracy_floor"})
                raise config_lib.ConfigError(
                    f"unknown parameter {key!r}; known: {', '.join(known)}")
            values[name] = _coerce(key, text, declared[name][0])

    if training_edits:
        merged = _json_object("training_config", current("training_config"))
        for field, text in training_edits.items():
            if field not in merged:
                raise config_lib.ConfigError(
                    f"unknown key training.{field}; known: "
                    f"{', '.join('training.' + k for k in sorted(merged))}")
            merged[field] = _coerce(f"training.{field}", text,
                                    _TRAINING_TYPES.get(field, type(merged[field])))
        values["training_config"] = json.dumps(merged, sort_keys=True)
    if "training_config" in values:
        check_training_config("training_config", values["training_config"],
                              declared["training_config"][1])
    if "eval_config" in values:
        _json_object("eval_config", values["eval_config"])
    if accuracy_floor is not None:
        eval_config = _json_object("eval_config", current("eval_config"))
        config_lib.EvaluationConfig(accuracy_floor=accuracy_floor)  # range check, key named
        _set_accuracy_floor(eval_config, accuracy_floor)
        values["eval_config"] = json.dumps(eval_config, sort_keys=True)
    _check_data_values(values, mount_paths)
    return values


def _check_config_value(key: str, value: Any) -> None:
    """value as the config file's key would be checked: its section built with it alone."""
    section, _, field = key.rpartition(".")
    cls = config_lib.PipelineConfig
    if section:
        cls = type(getattr(config_lib.PipelineConfig(), section))
    cls(**{field: value})


def _check_data_values(values: Mapping[str, Any], mount_paths: Sequence[str]) -> None:
    """Thresholds and paths, checked as the config file's keys are."""
    for name, value in values.items():
        spec = BY_NAME.get(name)
        if spec is None:
            continue
        if spec.config_key:
            _check_config_value(spec.config_key, value)
        if spec.where and not value:
            raise config_lib.ConfigError(f"{name} must not be empty")
        if spec.where == "pods" and not value.startswith("gs://") and not any(
                targets.on_volume(value, mount) for mount in mount_paths):
            raise config_lib.ConfigError(
                f"{name} must be a URI every pod can reach (gs://bucket/...) or a path on a "
                f"volume the package mounts ({', '.join(mount_paths) or 'none'}), "
                f"got {value!r}")


def describe(declared: Mapping[str, Tuple[type, Any]], values: Optional[Mapping[str, Any]] = None
             ) -> str:
    """One line per parameter: name, type, and the value a run gets."""
    values = values or {}
    lines = []
    for name, (ptype, default) in declared.items():
        shown = values.get(name, default)
        origin = "set" if name in values else "default"
        lines.append(f"  {name} ({ptype.__name__}, {origin}): {shown}")
    return "\n".join(lines)
