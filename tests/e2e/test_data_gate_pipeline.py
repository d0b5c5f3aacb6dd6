"""DataGate in real pipelines: an imbalanced folder stops the run before the Trainer, and the warn
setting lets it pass with a record."""
import json

import pytest
from conftest import quick_config, run_data_gate_pipeline, write_class_images


def imbalanced_folder(root):
    # rare: 4 images, one each in eval and test (the stratified split), two to train on
    write_class_images(root, {"common": 36, "rare": 4})
    return root


def executions(config):
    from inception_retrain.pipeline import mlmd

    store = mlmd.open_store(config.metadata_path)
    return store, mlmd.latest_run_executions(store, config.pipeline_name)


def test_imbalanced_data_stops_the_pipeline_before_the_trainer(tmp_path):
    import dataclasses

    from inception_retrain.pipeline import local_runner
    from inception_retrain.run_reading import reader

    config = quick_config(tmp_path / "work", imbalanced_folder(tmp_path / "data"))
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, max_class_ratio=5.0))
    with pytest.raises(RuntimeError) as err:
        local_runner.run(config, local_runner.preflight(config))
    store, nodes = executions(config)
    states = {c["component"]: c["state"]
              for c in reader.read(config.metadata_path, config.pipeline_name).to_dict()[
                  "components"]}
    assert states["DataGate"] == "FAILED", states
    assert "Trainer" not in nodes and "Transform" not in nodes, sorted(nodes)
    message = str(err.value) + json.dumps(
        {k: str(v) for k, v in nodes["DataGate"].custom_properties.items()})
    assert "largest class common" in message and "smallest rare" in message, message


def test_warn_setting_lets_imbalanced_data_pass_and_records_the_warning(tmp_path):
    from inception_retrain.components.data_gate.contract import REPORT_FILE
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.pipeline import mlmd

    data = imbalanced_folder(tmp_path / "data")
    metadata_path = run_data_gate_pipeline(ImageExampleGen(str(data)), tmp_path, "gate-warn",
                                           on_imbalance="warn", max_class_ratio=5.0)

    store = mlmd.open_store(metadata_path)
    nodes = mlmd.latest_run_executions(store, "gate-warn")
    outputs = mlmd.output_artifacts(store, nodes["DataGate"])
    with open(f"{outputs['data_facts'][0].uri}/data_facts.json") as f:
        facts = json.load(f)
    assert facts["failures"] == []
    assert len(facts["warnings"]) == 1 and "smallest rare" in facts["warnings"][0]
    assert facts["class_weights"]["rare"] > facts["class_weights"]["common"]
    total = {c: sum(split.get(c, 0) for split in facts["class_counts"].values())
             for c in ("common", "rare")}
    assert total == {"common": 36, "rare": 4}
    with open(f"{outputs['data_report'][0].uri}/{REPORT_FILE}") as f:
        text = f.read()
    assert "passed** with warnings" in text and "smallest rare" in text
    assert "| rare |" in text and "## Image sizes" in text
