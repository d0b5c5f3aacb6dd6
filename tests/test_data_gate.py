"""DataGate: balance, drift and bad-file rules on counts; then the real pipeline on an
imbalanced folder stops before the Trainer, and the warn setting lets it pass with a record."""
import json

import pytest

from components.data_gate import checks
from test_split import write_images

STRICT = checks.GateThresholds(min_examples_per_class=3, max_class_ratio=4.0,
                               min_class_fraction=0.1)


def test_balance_messages_name_classes_and_counts():
    problems = checks.balance_problems({"tumor": 40, "stroma": 9, "debris": 2}, STRICT)
    assert len(problems) == 3
    assert "debris: 2" in problems[0] and "min_examples_per_class" in problems[0]
    assert "tumor has 40" in problems[1] and "debris has 2" in problems[1] and "20.0" in problems[1]
    assert "debris: 2 (3.9%)" in problems[2]


def test_balanced_counts_pass_and_zero_switches_checks_off():
    assert checks.balance_problems({"a": 10, "b": 8}, STRICT) == []
    off = checks.GateThresholds(min_examples_per_class=1, max_class_ratio=0,
                                min_class_fraction=0)
    assert checks.balance_problems({"a": 1000, "b": 1}, off) == []


def test_label_drift_is_the_l_infinity_distance():
    distance, worst = checks.label_drift({"a": 50, "b": 50}, {"a": 80, "b": 10, "c": 10})
    assert distance == pytest.approx(0.4) and worst == "b"  # b: 10% -> 50%
    assert checks.label_drift({"a": 5, "b": 5}, {"a": 50, "b": 50}) == (0.0, "a")
    message = checks.drift_problems({"a": 50, "b": 50}, {"a": 80, "b": 20}, 3,
                                    checks.GateThresholds(max_label_drift=0.2))
    assert "span 3" in message[0] and "0.300" in message[0] and "80.0% -> 50.0%" in message[0]


def test_policies_route_problems_to_failures_or_warnings():
    counts = {"train": {"a": 50, "b": 2}, "eval": {"a": 10, "b": 1}}
    previous = (1, {"a": 10, "b": 10})
    failing = checks.evaluate(counts, "train", 0, [], previous,
                              checks.GateThresholds(on_drift="fail"))
    assert len(failing.failures) == 2 and not failing.warnings
    warning = checks.evaluate(counts, "train", 0, [], previous,
                              checks.GateThresholds(on_imbalance="warn"))
    assert len(warning.warnings) == 2 and not warning.failures
    bad_files = checks.evaluate(counts, "train", 10, [], None,
                                checks.GateThresholds(on_imbalance="warn"))
    assert any("10 of 73 files" in f for f in bad_files.failures)
    absent = checks.evaluate({"train": {"a": 5}, "eval": {"a": 1, "b": 1}}, "train", 0, [], None,
                             checks.GateThresholds(on_imbalance="warn"))
    assert any("b have no example" in f for f in absent.failures)


def test_class_weights_are_inverse_frequency_with_mean_one():
    counts = {"a": 30, "b": 10}
    weights = checks.class_weights(counts)
    assert weights == pytest.approx({"a": 40 / 60, "b": 40 / 20})
    assert sum(weights[c] * n for c, n in counts.items()) == pytest.approx(sum(counts.values()))


# ---------------------------------------------------------------- the real pipeline


def imbalanced_folder(root):
    write_images(root, {"common": 36, "rare": 3})
    return root


def executions(config):
    from pipeline import summary

    store = summary.open_store(config.metadata_path)
    return store, summary.latest_run_executions(store, config.pipeline_name)


def test_imbalanced_data_stops_the_pipeline_before_the_trainer(tmp_path):
    import dataclasses

    from conftest import quick_config
    from pipeline import local_runner, summary

    config = quick_config(tmp_path / "work", imbalanced_folder(tmp_path / "data"))
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, max_class_ratio=5.0))
    with pytest.raises(RuntimeError) as err:
        local_runner.run(config, local_runner.preflight(config))
    store, nodes = executions(config)
    states = {c["component"]: c["state"]
              for c in summary.collect(config.metadata_path, config.pipeline_name)["components"]}
    assert states["DataGate"] == "FAILED", states
    assert "Trainer" not in nodes and "Transform" not in nodes, sorted(nodes)
    message = str(err.value) + json.dumps(
        {k: str(v) for k, v in nodes["DataGate"].custom_properties.items()})
    assert "largest class common" in message and "smallest rare" in message, message


def test_warn_setting_lets_imbalanced_data_pass_and_records_the_warning(tmp_path):
    from tfx import v1 as tfx

    from components.data_gate.component import DataGate
    from components.data_gate.report import REPORT_FILE
    from components.image_example_gen.component import ImageExampleGen
    from pipeline.pipeline import default_schema_path
    from pipeline import summary

    data = imbalanced_folder(tmp_path / "data")
    example_gen = ImageExampleGen(str(data))
    statistics = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema = tfx.components.ImportSchemaGen(schema_file=default_schema_path())
    validator = tfx.components.ExampleValidator(statistics=statistics.outputs["statistics"],
                                                schema=schema.outputs["schema"])
    gate = DataGate(examples=example_gen.outputs["examples"],
                    statistics=statistics.outputs["statistics"],
                    anomalies=validator.outputs["anomalies"], on_imbalance="warn",
                    max_class_ratio=5.0)
    metadata_path = str(tmp_path / "metadata.sqlite")
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name="gate-warn", pipeline_root=str(tmp_path / "root"),
        components=[example_gen, statistics, schema, validator, gate],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path)))

    store = summary.open_store(metadata_path)
    nodes = summary.latest_run_executions(store, "gate-warn")
    outputs = summary.output_artifacts(store, nodes["DataGate"])
    with open(f"{outputs['data_facts'][0].uri}/data_facts.json") as f:
        facts = json.load(f)
    assert facts["failures"] == []
    assert len(facts["warnings"]) == 1 and "smallest rare" in facts["warnings"][0]
    assert facts["class_weights"]["rare"] > facts["class_weights"]["common"]
    total = {c: sum(split.get(c, 0) for split in facts["class_counts"].values())
             for c in ("common", "rare")}
    assert total == {"common": 36, "rare": 3}
    with open(f"{outputs['data_report'][0].uri}/{REPORT_FILE}") as f:
        text = f.read()
    assert "passed** with warnings" in text and "smallest rare" in text
    assert "| rare |" in text and "## Image sizes" in text
