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

# name -> (Python type, what it feeds; shown as the parameter's description in the KFP UI).
RUNTIME_PARAMETERS: Dict[str, Tuple[type, str]] = {
    "data_root": (str, "ImageExampleGen input_base: <data_root>/<class>/<image files>"),
    "schema_path": (str, "ImportSchemaGen schema_file (default: the schema baked into the image)"),
    "min_examples_per_class": (int, "DataGate: fewest train examples any class may have"),
    "max_quarantined_fraction": (float, "DataGate: largest share of unreadable image files"),
    "training_config": (str, "Trainer custom_config: JSON object with every training.* key "
                             "(epochs, learning rates, ...)"),
    "eval_config": (str, "Evaluator eval_config: tfma.EvalConfig as JSON (accuracy floor)"),
    "max_accuracy_drop": (float, "Evaluator: how far the paired accuracy difference vs. the "
                                 "baseline may fall below 0"),
    "push_base": (str, "ServingPusher and served baseline: TF Serving's model base path "
                       "(<push_base>/<integer version>/)"),
    "keep_versions": (int, "ServingPusher: version directories kept under push_base"),
    "split_ledger": (str, "ImageExampleGen: each group's split, kept across runs (default: "
                          "<push_base>.split_ledger.json; set it with push_base)"),
}

# create_pipeline argument -> the runtime parameter that stands for it in a compiled pipeline
# (training_config and eval_config stand for the Trainer's custom_config and the EvalConfig).
DAG_ARGUMENTS = {
    "data_root": "data_root",
    "schema_path": "schema_path",
    "min_examples_per_class": "min_examples_per_class",
    "max_quarantined_fraction": "max_quarantined_fraction",
    "max_accuracy_drop": "max_accuracy_drop",
    "push_base": "push_base",
    "keep_versions": "keep_versions",
    "split_ledger": "split_ledger",
}

# Config-style keys that are plain parameters.
CONFIG_KEYS = {
    "data.root": "data_root",
    "data.min_examples_per_class": "min_examples_per_class",
    "data.max_quarantined_fraction": "max_quarantined_fraction",
    "evaluation.max_accuracy_drop": "max_accuracy_drop",
}
ACCURACY_METRIC = "SparseCategoricalAccuracy"
_TYPE_OF_SPEC = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": float}
_TRAINING_TYPES = typing.get_type_hints(TrainConfig)


def training_config_json(training: TrainConfig) -> str:
    """Every training key, so a run-time edit never falls back to class defaults silently."""
    return json.dumps(dataclasses.asdict(training), sort_keys=True)


def default_values(config: config_lib.PipelineConfig, schema_path: str,
                   eval_config_json: str) -> Dict[str, Any]:
    """The compiled defaults, taken from the configuration the pipeline was compiled with."""
    return {
        "data_root": config.data.root,
        "schema_path": schema_path,
        "min_examples_per_class": config.data.min_examples_per_class,
        "max_quarantined_fraction": config.data.max_quarantined_fraction,
        "training_config": training_config_json(config.training),
        "eval_config": eval_config_json,
        "max_accuracy_drop": config.evaluation.max_accuracy_drop,
        "push_base": config.push_base,
        "keep_versions": config.keep_versions,
        "split_ledger": config.split_ledger,
    }


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

    KEY is a parameter name, data.root / data.min_examples_per_class /
    data.max_quarantined_fraction, training.<key>, evaluation.accuracy_floor or
    evaluation.max_accuracy_drop. Every value is checked like the config file's.
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
    if accuracy_floor is not None:
        eval_config = _json_object("eval_config", current("eval_config"))
        config_lib.EvaluationConfig(accuracy_floor=accuracy_floor)  # range check, key named
        _set_accuracy_floor(eval_config, accuracy_floor)
        values["eval_config"] = json.dumps(eval_config, sort_keys=True)
    if "max_accuracy_drop" in values:
        config_lib.EvaluationConfig(max_accuracy_drop=values["max_accuracy_drop"])
    _check_data_values(values, mount_paths)
    return values


def _check_data_values(values: Mapping[str, Any], mount_paths: Sequence[str]) -> None:
    """Thresholds and paths, checked as the config file's keys are."""
    data_fields = {"min_examples_per_class": "min_examples_per_class",
                   "max_quarantined_fraction": "max_quarantined_fraction"}
    edits = {field: values[name] for name, field in data_fields.items() if name in values}
    if edits:
        config_lib.DataConfig(**edits)
    for name in ("data_root", "push_base", "schema_path", "split_ledger"):
        if name in values and not values[name]:
            raise config_lib.ConfigError(f"{name} must not be empty")
    for name in ("data_root", "push_base", "split_ledger"):
        value = values.get(name)
        if value is not None and not value.startswith("gs://") and not any(
                targets.on_volume(value, mount) for mount in mount_paths):
            raise config_lib.ConfigError(
                f"{name} must be a URI every pod can reach (gs://bucket/...) or a path on a "
                f"volume the package mounts ({', '.join(mount_paths) or 'none'}), "
                f"got {value!r}")
    if "keep_versions" in values and values["keep_versions"] < 1:
        raise config_lib.ConfigError(
            f"keep_versions must be at least 1, got {values['keep_versions']}")


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
