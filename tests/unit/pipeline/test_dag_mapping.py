"""One mapping from the configuration to the DAG (pipeline.pipeline.dag_arguments), used by the
local runner and the Kubeflow compile alike. Every key of the configuration must reach the DAG
both ways, with the same value in every component; a key a target cannot honour is refused.

Builds the real TFX pipeline objects and, for the compiled spec, the real KubeflowV2DagRunner
output; nothing runs."""
import dataclasses
import json
from typing import Any, Dict

import pytest
from google.protobuf import json_format, message

from inception_retrain.kubeflow.exit_handler import pipeline_tasks
from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline import config_reference, sections

SCHEMA = "/pipeline/schema/schema.pbtxt"
IMAGE = "registry.example.com/ml/inception-retrain:1.0"
# Paths a Kubeflow compile accepts; the defaults of every other key.
KUBEFLOW_PATHS = {"work_dir": "gs://lab/work", "data.root": "gs://lab/tiles"}
# A value other than the default for every key. Keys that only make sense together change
# together (the three percentages add up to 100; augmentation needs feature_cache off).
NON_DEFAULT: Dict[str, Any] = {
    "pipeline_name": "lab-retrain",
    "work_dir": "gs://lab/other-work",
    "serving_dir": "gs://lab/serving",
    "model_name": "tissue",
    "keep_versions": 3,
    "enable_cache": False,
    "beam_args": ["--direct_num_workers=2"],
    "data.root": "gs://lab/other-tiles",
    "data.train_percent": 60,
    "data.eval_percent": 25,
    "data.test_percent": 15,
    "data.min_examples_per_class": 7,
    "data.max_quarantined_fraction": 0.2,
    "data.input_pattern": "delivery-*/*/*",
    "data.split_folders": ["train", "val", "test"],
    "data.hidden_files": "skip",
    "data.max_image_bytes": 1_000_000,
    "data.max_image_pixels": 5_000_000,
    "data.max_image_side": 1024,
    "data.max_class_ratio": 4.0,
    "data.min_class_fraction": 0.05,
    "data.on_imbalance": "warn",
    "data.max_label_drift": 0.3,
    "data.on_drift": "fail",
    "data.group_pattern": r"^(?P<group>[^_/]+)_",
    "data.site_pattern": r"^(?P<site>TCGA-[A-Z0-9]{2})",
    "data.manifest": "tiles.csv",
    "data.on_group_leakage": "warn",
    "data.on_duplicates": "fail",
    "data.on_label_conflict": "warn",
    "data.on_split_coverage": "warn",
    "data.slide_tile_um": 112.0,
    "data.slide_tile_px": 224,
    "data.slide_stride_um": 64.0,
    "data.slide_min_tissue": 0.25,
    "data.slide_default_mpp": 0.25,
    "data.slide_min_sharpness": 20.0,
    "training.image_size": 160,
    "training.batch_size": 16,
    "training.phase1_epochs": 4,
    "training.phase1_learning_rate": 0.002,
    "training.phase2_epochs": 2,
    "training.phase2_learning_rate": 0.00005,
    "training.unfreeze_blocks": 3,
    "training.dropout": 0.4,
    "training.early_stopping_patience": 1,
    "training.base_weights": "none",
    "training.use_class_weights": False,
    "training.feature_cache": False,
    "training.max_activation_cache_gb": 2.0,
    "training.precision": "float32",
    "training.lr_schedule": "constant",
    "training.augment_flip": True,
    "training.augment_rotation": 0.1,
    "training.augment_zoom": 0.1,
    "training.augment_contrast": 0.2,
    "training.augment_brightness": 0.2,
    "training.stain_jitter": 0.05,
    "training.stain_normalization": "reinhard",
    "training.seed": 7,
    "evaluation.accuracy_floor": 0.8,
    "evaluation.max_accuracy_drop": 0.02,
    "evaluation.baseline": "none",
    "evaluation.per_class_recall_floor": 0.5,
    "evaluation.top_k": 3,
    "evaluation.min_site_accuracy": 0.5,
    "evaluation.max_class_recall_drop": 0.1,
    "evaluation.min_eval_examples_per_class": 25,
    "evaluation.min_eval_groups_per_class": 5,
    "evaluation.significance_level": 0.01,
    "evaluation.regression_rule": "bound",
    "evaluation.group_aggregation": "majority",
    "evaluation.min_group_accuracy": 0.7,
    "model_card.owners": ["Pathology ML <ml@lab.example>"],
    "model_card.license": "CC-BY-4.0",
    "model_card.ethical_considerations": ["Not for diagnosis without a pathologist."],
    "model_card.references": ["https://lab.example/protocol"],
    "webhook_url": "https://hooks.lab.example/services/T0/B0/x",
}
# Keys only the report reads (the model card's): they never reach the DAG, so changing them
# retrains nothing.
REPORT_ONLY = {key for key in NON_DEFAULT if key.startswith("model_card.")}
# Keys only the Kubeflow exit task reads (the default of its runtime parameter): no DAG node.
EXIT_TASK_ONLY = {"webhook_url"}
CHANGED_TOGETHER = {
    "data.train_percent": {"data.train_percent": 60, "data.test_percent": 20},
    "data.eval_percent": {"data.eval_percent": 25, "data.test_percent": 5},
    "data.test_percent": {"data.test_percent": 0, "data.train_percent": 80},
    **{key: {key: NON_DEFAULT[key], "training.feature_cache": False} for key in NON_DEFAULT
       if key.startswith("training.augment_") or key == "training.stain_jitter"},
}
# The Kubeflow targets cannot honour these values; the compile refuses them, naming the key.
REFUSED_BY_KFP = {"evaluation.baseline": "latest_blessed"}


def nested(flat: Dict[str, Any]) -> Dict[str, Any]:
    values: Dict[str, Any] = {}
    for key, value in flat.items():
        *sections, name = key.split(".")
        target = values
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return values


def load(flat: Dict[str, Any]) -> config_lib.PipelineConfig:
    return config_lib.load(overrides=nested({**KUBEFLOW_PATHS, **flat}))


def normalise(value: Any) -> Any:
    """Exec property values made comparable: RuntimeParameters by their default, protos and
    JSON strings as plain data."""
    from tfx.orchestration import data_types

    if isinstance(value, data_types.RuntimeParameter):
        return normalise(value.default)
    if isinstance(value, message.Message):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return normalise(json.loads(value))
        except json.JSONDecodeError:
            return value
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def settings(dag) -> Dict[str, Dict[str, Any]]:
    """Every component's exec properties, and the pipeline's own settings."""
    result = {"<pipeline>": {"pipeline_name": dag.pipeline_info.pipeline_name,
                             "pipeline_root": normalise(dag.pipeline_info.pipeline_root),
                             "enable_cache": dag.enable_cache,
                             "beam_pipeline_args": list(dag.beam_pipeline_args)}}
    for component in dag.components:
        result[component.id] = {name: normalise(value)
                                for name, value in component.exec_properties.items()}
    return result


def local_dag(config: config_lib.PipelineConfig):
    from inception_retrain.pipeline.pipeline import create_pipeline_from_config

    return create_pipeline_from_config(config, SCHEMA, config.data.root)


def kubeflow_dag(config: config_lib.PipelineConfig, target: str = "vertex"):
    from inception_retrain.kubeflow import compile as compile_lib
    from inception_retrain.kubeflow import targets

    return compile_lib.build(config, SCHEMA, targets.TARGETS[target])


def without_report(found: Dict[str, Dict[str, Any]], config: config_lib.PipelineConfig):
    """A Kubeflow build's settings without its last node, the RunReporter (what the local
    command does after a run), after checking what it carries."""
    reporter = found.pop("RunReporter")
    assert list(found)[-1] != "RunReporter"
    assert reporter["pipeline_name"] == config.pipeline_name
    assert reporter["data_root"] == found["ImageExampleGen"]["input_base"]
    assert reporter["model_card"] == normalise(json.dumps(dataclasses.asdict(config.model_card)))
    return found


def kfp_dag(config: config_lib.PipelineConfig):
    """The kfp target's DAG without what it adds for its cache (DataFingerprint, and the
    fingerprint it hands ImageExampleGen) and its RunReporter, after checking those are its
    only additions."""
    dag = kubeflow_dag(config, "kfp")
    found = without_report(settings(dag), config)
    fingerprint = found.pop("DataFingerprint")
    assert fingerprint == {"input_base": found["ImageExampleGen"]["input_base"],
                           "input_config": found["ImageExampleGen"]["input_config"]}
    assert found["ImageExampleGen"]["input_fingerprint"] is not None
    found["ImageExampleGen"]["input_fingerprint"] = None  # as the other builds have it
    return found


def changed_alone(key: str) -> Dict[str, Any]:
    """The configuration change that sets one key to a non-default value."""
    return CHANGED_TOGETHER.get(key, {key: NON_DEFAULT[key]})


def test_every_key_has_a_non_default_value_here():
    assert set(NON_DEFAULT) == set(config_reference.all_keys())
    defaults = load({})
    for key in NON_DEFAULT:
        assert load(changed_alone(key)) != defaults, key


def test_local_and_kubeflow_builds_carry_the_same_settings_in_every_component():
    config = load(NON_DEFAULT)
    local = settings(local_dag(config))
    for kubeflow in (without_report(settings(kubeflow_dag(config)), config), kfp_dag(config)):
        assert sorted(local) == sorted(kubeflow)  # (DataFingerprint moves roots' order on kfp)
        for component in local:
            assert local[component] == kubeflow[component], component


@pytest.mark.parametrize("key", sorted(REPORT_ONLY))
def test_a_report_only_key_changes_nothing_the_builds_carry(key):
    """Not even on Kubeflow, where only the RunReporter (the report step) carries it."""
    defaults, changed = load({}), load(changed_alone(key))
    assert changed != defaults
    assert settings(local_dag(changed)) == settings(local_dag(defaults)), key
    built = [settings(kubeflow_dag(config)) for config in (changed, defaults)]
    assert built[0].pop("RunReporter") != built[1].pop("RunReporter"), key
    assert built[0] == built[1], key


@pytest.mark.parametrize("key", sorted(EXIT_TASK_ONLY))
def test_an_exit_task_key_changes_no_dag_node_but_the_compiled_default(key, tmp_path):
    from inception_retrain.kubeflow import compile as compile_lib
    from inception_retrain.kubeflow import targets

    defaults, changed = load({}), load(changed_alone(key))
    assert settings(local_dag(changed)) == settings(local_dag(defaults)), key
    assert settings(kubeflow_dag(changed)) == settings(kubeflow_dag(defaults)), key
    options = targets.CompileOptions(target="kfp", output=str(tmp_path / "p.yaml"), image=IMAGE)
    _, spec, _ = compile_lib.compile_spec(load(dict(NON_DEFAULT)), options)
    assert spec["root"]["inputDefinitions"]["parameters"][key]["defaultValue"] == NON_DEFAULT[key]


@pytest.mark.parametrize("key", sorted(set(NON_DEFAULT) - REPORT_ONLY - EXIT_TASK_ONLY))
def test_each_key_changes_what_both_builds_carry(key):
    defaults = load({})
    changed = load(changed_alone(key))
    for build in (local_dag, kubeflow_dag):
        assert settings(build(changed)) != settings(build(defaults)), (key, build.__name__)


@pytest.mark.parametrize("key", sorted(REFUSED_BY_KFP))
def test_a_key_kfp_cannot_honour_is_refused_by_name(key, tmp_path):
    from inception_retrain.kubeflow import compile as compile_lib
    from inception_retrain.kubeflow import targets

    options = targets.CompileOptions(target="kfp", output=str(tmp_path / "p.yaml"), image=IMAGE)
    with pytest.raises(config_lib.ConfigError, match=key.replace(".", r"\.")):
        compile_lib.compile_spec(load({key: REFUSED_BY_KFP[key]}), options)


def _task_value(spec: Dict[str, Any], task: str, name: str) -> Any:
    """What a compiled task receives for one exec property: a constant, or the default of the
    pipeline parameter feeding it."""
    parameter = pipeline_tasks(spec)[task]["inputs"]["parameters"][name]
    if "componentInputParameter" in parameter:
        declared = spec["root"]["inputDefinitions"]["parameters"]
        return declared[parameter["componentInputParameter"]]["defaultValue"]
    return parameter["runtimeValue"]["constant"]


def test_compiled_spec_tasks_carry_every_setting(tmp_path):
    """Through the real KubeflowV2DagRunner: each task's parameters hold the values the local
    DAG's components hold, for a configuration with every key changed."""
    from inception_retrain.kubeflow import compile as compile_lib
    from inception_retrain.kubeflow import targets

    config = load(NON_DEFAULT)
    options = targets.CompileOptions(target="kfp", output=str(tmp_path / "p.yaml"), image=IMAGE,
                                     schema_path=SCHEMA)
    _, spec, _ = compile_lib.compile_spec(config, options)
    checked = 0
    for component, properties in settings(local_dag(config)).items():
        if component == "<pipeline>":
            continue
        for name, value in properties.items():
            if value is None:
                continue
            compiled = normalise(_task_value(spec, component, name))
            if isinstance(value, bool):
                compiled = bool(compiled)
            elif isinstance(value, (int, float)):
                compiled = type(value)(compiled)
            assert compiled == value, (component, name)
            checked += 1
    data_gate = pipeline_tasks(spec)["DataGate"]["inputs"]["parameters"]
    assert data_gate["max_class_ratio"]["runtimeValue"]["constant"] == 4.0
    assert data_gate["on_drift"]["runtimeValue"]["constant"] == "fail"
    assert checked > 25


def test_dag_arguments_are_every_argument_of_create_pipeline():
    import inspect

    from inception_retrain.pipeline.pipeline import create_pipeline, dag_arguments

    signature = inspect.signature(create_pipeline)
    required = {name for name, p in signature.parameters.items() if p.default is p.empty}
    assert required == set(dag_arguments(load({}), "gs://lab/tiles", SCHEMA))
    assert dataclasses.is_dataclass(config_lib.PipelineConfig)
    assert len(signature.parameters) <= 12


def _stand_in(key: str, arguments: Dict[str, Any]):
    """A RuntimeParameter for one settable DAG value, of that value's type."""
    from tfx.orchestration import data_types

    section, _, field = key.partition(".")
    default = getattr(arguments[section], field) if section in arguments else "{}"
    return data_types.RuntimeParameter(name=key.replace(".", "_"), ptype=type(default),
                                       default=default)


@pytest.mark.parametrize("key", sorted(sections.RUNTIME_SETTABLE))
def test_each_settable_value_given_a_stand_in_reaches_a_component(key):
    """What the Kubeflow compile relies on: a stand-in is never dropped silently."""
    from inception_retrain.pipeline.pipeline import create_pipeline, dag_arguments

    arguments = dag_arguments(load({}), "gs://lab/tiles", SCHEMA)
    stand_in = _stand_in(key, arguments)
    dag = create_pipeline(**arguments, parameters={key: stand_in})
    assert [component.id for component in dag.components
            if any(value is stand_in for value in component.exec_properties.values())], key


def test_an_unknown_stand_in_is_refused_by_name():
    from inception_retrain.pipeline.pipeline import create_pipeline, dag_arguments

    arguments = dag_arguments(load({}), "gs://lab/tiles", SCHEMA)
    with pytest.raises(KeyError, match="evaluation.accuracy_floor"):
        create_pipeline(**arguments, parameters={"evaluation.accuracy_floor": 0.5})
