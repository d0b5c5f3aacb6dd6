"""Each DataGate rule is declared once, as a GateThresholds field (name, type, default, help,
check, reader): the config's data.<rule> keys, their help, the DataGate's parameters and the
DAG's wiring are derived from the fields, so a new field reaches all of them without edits."""
import dataclasses
import typing

import pytest

from inception_retrain.components import node_ids
from inception_retrain.components.data_gate import thresholds
from inception_retrain.components.data_gate.thresholds import GateThresholds
from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline import config_reference

FIELDS = {f.name: f for f in dataclasses.fields(GateThresholds)}
TYPES = typing.get_type_hints(GateThresholds)


def test_every_rule_is_a_data_key_with_its_default_and_help():
    data = {f.name: f for f in dataclasses.fields(config_lib.DataConfig)}
    assert set(FIELDS) <= set(data)
    for name, field in FIELDS.items():
        assert data[name].default == field.default, name
        assert config_reference.DESCRIPTIONS[f"data.{name}"] == field.metadata["help"], name
        assert f"  {name}: " in config_reference.example_yaml(), name
        assert field.metadata["reader"] == node_ids.DATA_GATE, name


def test_the_data_gate_takes_every_rule_as_a_parameter_of_the_declared_type():
    from inception_retrain.components.data_gate.component import DataGate

    declared = dict(DataGate.SPEC_CLASS.PARAMETERS)
    assert set(declared) - {"train_split"} == set(thresholds.rule_names(node_ids.DATA_GATE))
    for name in FIELDS:
        assert declared[name].type is TYPES[name], name
        assert declared[name].optional, name


def test_the_dag_hands_the_data_gate_every_rule_of_the_config():
    from inception_retrain.pipeline.pipeline import create_pipeline_from_config

    values = {"on_drift": "fail", "max_class_ratio": 4.0, "min_examples_per_class": 7,
              "on_split_coverage": "warn"}
    config = config_lib.load(overrides={"work_dir": "/tmp/w", "data": values})
    dag = create_pipeline_from_config(config, "/schema.pbtxt", "/data")
    gate = next(c for c in dag.components if c.id == node_ids.DATA_GATE)
    assert {name: gate.exec_properties[name] for name in FIELDS} == {
        name: getattr(config.data, name) for name in FIELDS}
    assert {name: gate.exec_properties[name] for name in values} == values


@pytest.mark.parametrize("name, bad, message", [
    ("min_examples_per_class", 0, r"data\.min_examples_per_class must be at least 1, got 0"),
    ("max_quarantined_fraction", 1.5, r"data\.max_quarantined_fraction must be in \[0, 1\]"),
    ("max_class_ratio", 0.5, r"data\.max_class_ratio must be 0 \(off\) or at least 1"),
    ("on_drift", "wran", r"data\.on_drift must be one of fail, warn, got 'wran' "
                         r"\(did you mean warn\?\)"),
])
def test_a_rule_is_checked_as_declared_in_the_config_and_the_gate(name, bad, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.load(overrides={"data": {name: bad}})
    with pytest.raises(ValueError, match=f"^{name} must be .*, got {bad!r}"):
        GateThresholds(**{name: bad})  # as the DataGate rebuilds them from its parameters


def test_every_rule_has_a_check_and_the_rules_rebuild_from_their_values():
    for name, field in FIELDS.items():
        assert field.metadata["check"] in thresholds._CHECKS, name
    strict = GateThresholds(min_examples_per_class=9, on_duplicates="fail")
    assert GateThresholds.from_values(
        {"train_split": "train", **dataclasses.asdict(strict)}) == strict
    # TFX passes only the parameters a pipeline set; the others keep their declared default
    assert GateThresholds.from_values({"on_drift": "fail"}) == GateThresholds(on_drift="fail")
