"""End to end: the whole DAG with LocalDagRunner on real images, then the served model.

Modelled on TFX's penguin e2e test: assert every component executed once, rerun to prove
caching, and check what landed where TF Serving would read it.
"""
import base64
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inception_retrain.pipeline import default_dataset, local_runner, mlmd
from inception_retrain.run_reading import reader
from inception_retrain.run_rendering import summary

# Nodes of the DAG (the Resolver is a node too, but records no executor run).
COMPONENTS = ("ImageExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
              "DataGate", "Transform", "Trainer", "Evaluator", "Pusher")

# Loads the pushed SavedModel in a fresh interpreter, as TF Serving would, and answers one
# REST-style request: the b64 string a client sends, decoded the way TF Serving decodes it.
_FRESH_PROCESS_PREDICT = """
import base64, json, sys
import tensorflow as tf
request = json.loads(sys.stdin.read())
model = tf.saved_model.load(request["model_dir"])
signature = model.signatures["serving_default"]
images = tf.constant([base64.b64decode(i["b64"]) for i in request["instances"]])
out = signature(images=images)
print(json.dumps({"signatures": sorted(model.signatures.keys()),
                  "classes": [[c.decode() for c in row] for row in out["classes"].numpy()],
                  "predicted": [c.decode() for c in out["predicted_class"].numpy()],
                  "scores": out["scores"].numpy().tolist()}))
"""


def _executions_by_component(metadata_path):
    store = mlmd.open_store(metadata_path)
    counts = {}
    for execution in store.get_executions():
        for context in store.get_contexts_by_execution(execution.id):
            if context.type == "node":
                node = context.name.split(".", 1)[-1]
                counts.setdefault(node, []).append(execution)
    return counts


def _served_versions(push_base):
    return sorted(int(p.name) for p in Path(push_base).iterdir() if p.name.isdigit())


def _predict_in_fresh_process(model_dir, image_paths, env):
    request = {"model_dir": str(model_dir), "instances": [
        {"b64": base64.b64encode(Path(p).read_bytes()).decode()} for p in image_paths]}
    completed = subprocess.run([sys.executable, "-c", _FRESH_PROCESS_PREDICT],
                               input=json.dumps(request), capture_output=True, text=True,
                               env=env, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_each_component_executed_once_and_completed(flowers_run):
    executions = _executions_by_component(flowers_run.config.metadata_path)
    for component in COMPONENTS:
        assert len(executions.get(component, [])) == 1, component
    states = {c["component"]: c["state"] for c in flowers_run.summary["components"]}
    assert {states[c] for c in COMPONENTS} == {"COMPLETE"}, states


def test_summary_accounts_for_every_image(flowers_run):
    counts = flowers_run.summary["data"]["class_counts"]
    images = sum(1 for _ in flowers_run.data_root.glob("*/*"))
    assert sum(sum(split.values()) for split in counts.values()) == images
    assert set(counts["train"]) == set(flowers_run.classes)
    assert flowers_run.summary["data"]["quarantine"] == []
    assert flowers_run.summary["data"]["anomalies"] == []
    training = flowers_run.summary["training"]
    assert training["phase1"]["epochs_run"] >= 1
    assert "random initialisation" in training["base_weights"]


def test_blessed_model_is_pushed_in_tf_serving_layout(flowers_run):
    push = flowers_run.summary["push"]
    assert flowers_run.summary["evaluation"]["blessed"] is True
    assert push["pushed"] is True
    versions = _served_versions(flowers_run.config.push_base)
    assert len(versions) == 1
    version_dir = Path(flowers_run.config.push_base) / str(versions[0])
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "variables").is_dir()
    assert Path(push["destination"]).resolve() == version_dir.resolve()


def test_pushed_model_answers_real_jpegs_in_a_fresh_process(flowers_run, env_with_legacy_keras):
    version = _served_versions(flowers_run.config.push_base)[-1]
    images = sorted(flowers_run.data_root.glob("*/*.jpg"))[:3]
    answer = _predict_in_fresh_process(Path(flowers_run.config.push_base) / str(version),
                                       images, env_with_legacy_keras)
    assert {"serving_default", "serving_examples", "transform_features"} <= set(
        answer["signatures"])
    assert len(answer["scores"]) == len(images)
    for classes, predicted, scores in zip(answer["classes"], answer["predicted"],
                                          answer["scores"]):
        assert sorted(classes) == sorted(flowers_run.classes)
        assert predicted in flowers_run.classes
        assert predicted == classes[max(range(len(scores)), key=scores.__getitem__)]
        assert sum(scores) == pytest.approx(1.0, abs=1e-4)
        assert all(0.0 <= s <= 1.0 for s in scores)


def test_rerun_with_the_same_inputs_is_served_from_cache(flowers_run):
    before = _executions_by_component(flowers_run.config.metadata_path)
    local_runner.run(flowers_run.config, str(flowers_run.data_root))
    after = _executions_by_component(flowers_run.config.metadata_path)
    rerun = reader.read(flowers_run.config.metadata_path,
                        flowers_run.config.pipeline_name).to_dict()
    states = {c["component"]: c["state"] for c in rerun["components"]}
    # Data and training steps are reused, not recomputed.
    for component in ("ImageExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                      "DataGate", "Transform", "Trainer"):
        assert states[component] == "CACHED", (component, states)
        assert not [e for e in after[component] if e.id not in {b.id for b in before[component]}
                    and e.last_known_state == 3], component  # no new COMPLETE execution


def test_unreachable_accuracy_floor_is_not_blessed_and_keeps_the_served_model(flowers_run):
    """Floor 1.0 for a candidate that cannot learn (learning rates near zero, one epoch each):
    nothing is blessed, nothing new is pushed, the served version is untouched."""
    push_base = Path(flowers_run.config.push_base)
    versions_before = _served_versions(push_base)
    served = push_base / str(versions_before[-1])
    files_before = {p: p.stat().st_mtime_ns for p in served.rglob("*")}
    config = flowers_run.config
    strict = dataclasses.replace(
        config,
        training=dataclasses.replace(config.training, phase1_epochs=1, phase2_epochs=0,
                                     phase1_learning_rate=1e-9),
        evaluation=dataclasses.replace(config.evaluation, accuracy_floor=1.0))
    local_runner.run(strict, str(flowers_run.data_root))
    record = reader.read(strict.metadata_path, strict.pipeline_name)
    result = record.to_dict()
    accuracy = result["evaluation"]["metrics"]["sparse_categorical_accuracy"]
    assert accuracy < 1.0, "the untrained candidate reached the floor; the test proves nothing"
    assert result["evaluation"]["blessed"] is False
    assert any("sparse_categorical_accuracy" in f and ">= 1.0000" in f
               for f in result["evaluation"]["failures"]), result["evaluation"]["failures"]
    assert result["push"]["pushed"] is False
    assert _served_versions(push_base) == versions_before
    assert {p: p.stat().st_mtime_ns for p in served.rglob("*")} == files_before
    text = summary.render(record)
    assert "Blessed: NO" in text
    count = int(result["evaluation"]["metrics"]["example_count"])
    assert f"  example_count: {count}\n" in text  # a count, not 12.0000


def test_embedded_default_dataset_runs_end_to_end(tmp_path, make_quick_config,
                                                 env_with_legacy_keras):
    """A fresh clone has no ../shared: the generated default dataset must carry a full run."""
    data_root = default_dataset.ensure_default_dataset(str(tmp_path / "data"),
                                                       images_per_class=6)
    config = make_quick_config(tmp_path / "work", Path(data_root))
    local_runner.run(config, local_runner.preflight(config))
    result = reader.read(config.metadata_path, config.pipeline_name).to_dict()
    assert {c["state"] for c in result["components"]} == {"COMPLETE"}
    assert result["push"]["pushed"] is True
    version = _served_versions(config.push_base)[-1]
    image = sorted(Path(data_root).glob("stroma/*.jpg"))[0]
    answer = _predict_in_fresh_process(Path(config.push_base) / str(version), [image],
                                       env_with_legacy_keras)
    assert sorted(answer["classes"][0]) == sorted(default_dataset.CLASSES)
    assert sum(answer["scores"][0]) == pytest.approx(1.0, abs=1e-4)


def test_default_dataset_is_deterministic(tmp_path):
    first = default_dataset.ensure_default_dataset(str(tmp_path / "a"), images_per_class=2)
    second = default_dataset.ensure_default_dataset(str(tmp_path / "b"), images_per_class=2)
    files = sorted(os.path.relpath(p, first) for p in Path(first).rglob("*.jpg"))
    assert len(files) == 2 * len(default_dataset.CLASSES)
    for rel in files:
        assert (Path(first) / rel).read_bytes() == (Path(second) / rel).read_bytes()
