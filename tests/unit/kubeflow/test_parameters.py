"""The compiled pipeline's runtime parameters, declared once (kubeflow/parameters.PARAMETERS):
what each replaces in the DAG, the config key it stands for, and the checks a `--param` value
gets, all derived from that declaration."""
import json

import pytest

from inception_retrain.kubeflow import parameters
from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline import config_reference, sections

SCHEMA = "/pipeline/schema/schema.pbtxt"
CONFIG = {"work_dir": "gs://lab/work", "serving_dir": "gs://lab/serving", "keep_versions": 3,
          "data": {"root": "gs://lab/tiles", "min_examples_per_class": 7,
                   "max_quarantined_fraction": 0.2},
          "evaluation": {"max_accuracy_drop": 0.02}}
# A value each parameter's check refuses, and what the refusal says.
REFUSED = {
    "data_root": ("/local/images", r"data_root must be a URI every pod can reach"),
    "schema_path": ("", r"schema_path must not be empty"),
    "min_examples_per_class": ("0", r"data\.min_examples_per_class must be at least 1"),
    "max_quarantined_fraction": ("2", r"data\.max_quarantined_fraction must be in \[0, 1\]"),
    "training_config": ('{"phase1_epochs": 3}', r"must set every training key"),
    "eval_config": ("[]", r"eval_config must be a JSON object"),
    "max_accuracy_drop": ("1.5", r"evaluation\.max_accuracy_drop must be in \[0, 1\]"),
    "push_base": ("", r"push_base must not be empty"),
    "keep_versions": ("0", r"keep_versions must be at least 1"),
    "split_ledger": ("/srv/ledger.json", r"split_ledger must be a URI every pod can reach"),
    "webhook_url": ("hooks.example.com/x", r"webhook_url must be an http:// or https:// URL"),
}


def declared():
    """name -> (type, default), as spec_parameters reads a compiled package."""
    from inception_retrain.kubeflow import compile as compile_lib

    config = config_lib.load(overrides=CONFIG)
    defaults = dict(compile_lib.compiled_defaults(config, SCHEMA),
                    **parameters.exit_task_defaults(config))
    return config, {p.name: (p.ptype, defaults[p.name])
                    for p in parameters.PARAMETERS + parameters.EXIT_TASK_PARAMETERS}


def test_each_parameter_replaces_a_settable_dag_value_once():
    names = [p.name for p in parameters.PARAMETERS]
    replaced = [p.replaces for p in parameters.PARAMETERS]
    assert len(set(names)) == len(names) and len(set(replaced)) == len(replaced)
    assert set(replaced) <= sections.RUNTIME_SETTABLE
    assert {p.ptype for p in parameters.PARAMETERS} <= {str, int, float}


def test_a_parameter_stands_for_its_config_key_with_the_same_default():
    config, values = declared()
    keys = set(config_reference.all_keys())
    checked = 0
    for parameter in parameters.PARAMETERS:
        if parameter.config_key:
            assert parameter.config_key in keys, parameter.name
            section, _, field = parameter.config_key.rpartition(".")
            value = getattr(getattr(config, section) if section else config, field)
            assert values[parameter.name][1] == value, parameter.name
            assert parameters.resolve([f"{parameter.config_key}={value}"], values,
                                      ["/mnt"]) == {parameter.name: value}
            checked += 1
    assert checked == 5
    assert values["push_base"][1] == "gs://lab/serving/inception_v3"
    assert values["split_ledger"][1] == "gs://lab/serving/inception_v3.split_ledger.json"
    assert values["schema_path"][1] == SCHEMA
    assert json.loads(values["training_config"][1])["image_size"] == config.training.image_size


def test_the_exit_task_parameter_stands_for_webhook_url():
    config, values = declared()
    assert values["webhook_url"] == (str, "")
    url = "https://hooks.slack.com/services/T0/B0/x"
    assert parameters.resolve([f"webhook_url={url}"], values) == {"webhook_url": url}
    assert parameters.exit_task_defaults(config_lib.load(overrides=dict(
        CONFIG, webhook_url=url))) == {"webhook_url": url}


@pytest.mark.parametrize("name", sorted(parameters.BY_NAME))
def test_each_parameter_refuses_a_bad_value_naming_it(name):
    assert set(REFUSED) == set(parameters.BY_NAME)
    _, values = declared()
    text, message = REFUSED[name]
    with pytest.raises(config_lib.ConfigError, match=message):
        parameters.resolve([f"{name}={text}"], values, ["/mnt"])
