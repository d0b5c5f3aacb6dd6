"""The blessing gate and the push, with the real TFX Evaluator (TFMA) and ServingPusher.

Candidates with known behaviour are built on the session's flowers run (its examples and
Transform graph): each classifier answers with the label of the remembered photo nearest in
mean colour, so its accuracy on every split follows from which labels it was given. They are
exported by components.trainer.export and go through a LocalDagRunner pipeline of Importers,
GatedEvaluator, ServingPusher and HeldOutEvaluator, the same components create_pipeline wires.
"""
import glob
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from inception_retrain.components import features
from inception_retrain.pipeline import mlmd
from inception_retrain.run_reading import reader
from inception_retrain.run_rendering import summary
from inception_retrain.serving import versions

# The session's flowers run is small (its eval split may hold two photos of one class): the gate
# is exercised on the train and eval splits together, so that every class is present.
GATE_SPLITS = ("train", "eval")


def tree_digest(path: Path):
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run_inputs(flowers_run):
    """The flowers run's Examples artifact and Transform output, and its split contents."""
    import tensorflow as tf
    import tensorflow_transform as tft

    store = mlmd.open_store(flowers_run.config.metadata_path)
    nodes = mlmd.latest_run_executions(store, flowers_run.config.pipeline_name)
    examples = mlmd.output_artifacts(store, nodes["ImageExampleGen"])["examples"][0]
    transform_uri = mlmd.output_artifacts(store, nodes["Transform"])["transform_graph"][0].uri
    tf_transform_output = tft.TFTransformOutput(transform_uri)
    class_names = [v.decode() for v in
                   tf_transform_output.vocabulary_by_name(features.LABEL_VOCABULARY)]
    raw_spec = tf_transform_output.raw_feature_spec()
    splits = {}
    for split in json.loads(examples.properties["split_names"].string_value):
        files = glob.glob(os.path.join(examples.uri, f"Split-{split}", "*"))
        records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
        if not records:
            splits[split] = (np.zeros((0, 3), np.float32), [])
            continue
        raw = tf.io.parse_example(records, raw_spec)
        images = tf_transform_output.transform_raw_features(raw)[features.TRANSFORMED_IMAGE_KEY]
        labels = [v.decode() for v in raw[features.LABEL_KEY].numpy().reshape(-1)]
        splits[split] = (tf.reduce_mean(images, axis=[1, 2]).numpy(), labels)
    return {"examples": examples, "tft": tf_transform_output, "class_names": class_names,
            "splits": splits}


TOP_SCORE = 0.4  # the answered class's score; the others share the rest


def class_scores(num_classes: int, answer: int) -> np.ndarray:
    """Below 0.5 on purpose: per-class precision and recall must follow the top-1 class, not a
    0.5 threshold on its score."""
    scores = np.full(num_classes, (1 - TOP_SCORE) / (num_classes - 1), np.float32)
    scores[answer] = TOP_SCORE
    return scores


def memory_model(run_inputs, relabel, directory: Path) -> str:
    """Exports a classifier answering relabel(true label) for every photo of every split (with
    class_scores); returns the Model artifact directory (holding Format-Serving/)."""
    import tensorflow as tf
    import tf_keras

    from inception_retrain.components.trainer import export, train

    class_names = run_inputs["class_names"]
    keys = np.concatenate([k for k, _ in run_inputs["splits"].values()])
    answers = [class_names.index(relabel(label))
               for _, labels in run_inputs["splits"].values() for label in labels]
    logits = tf.constant(np.log([class_scores(len(class_names), a) for a in answers]))

    class NearestColour(tf_keras.layers.Layer):
        def call(self, images):
            means = tf.reduce_mean(images, axis=[1, 2])
            distances = tf.reduce_sum(tf.square(means[:, None, :] - keys[None]), axis=-1)
            return tf.gather(logits, tf.argmin(distances, axis=1))

    size = run_inputs["tft"].transformed_feature_spec()[features.TRANSFORMED_IMAGE_KEY].shape
    inputs = tf_keras.Input(shape=size)
    classifier = tf_keras.Model(inputs, NearestColour()(inputs))
    export.export(train.TrainResult(classifier, class_names, {}), run_inputs["tft"],
                  str(directory / "Format-Serving"))
    return str(directory)


def gate_run(run_inputs, work: Path, name: str, model_dir: str, push_base: str, *,
             accuracy_floor: float, per_class_recall_floor: float = 0.0,
             baseline: str = "served", **evidence):
    """One pipeline run of Evaluator -> Pusher (+ test split); returns its record.

    baseline: "served", "latest_blessed" (a Resolver over this pipeline's earlier runs, as
    create_pipeline wires it) or "none". evidence: the GatedEvaluator's evidence settings;
    by default one image and one slide per class are enough evidence (8 photos per class)."""
    from tfx import v1 as tfx

    from inception_retrain.components.evaluator.evaluator import GatedEvaluator
    from inception_retrain.components.evaluator.held_out import HeldOutEvaluator
    from inception_retrain.components.pusher.component import ServingPusher
    from inception_retrain.pipeline.pipeline import create_eval_config

    examples = tfx.dsl.Importer(
        source_uri=run_inputs["examples"].uri,
        artifact_type=tfx.types.standard_artifacts.Examples,
        properties={"split_names": run_inputs["examples"].properties["split_names"].string_value},
    ).with_id("examples")
    candidate = tfx.dsl.Importer(
        source_uri=model_dir, artifact_type=tfx.types.standard_artifacts.Model).with_id("model")
    resolver = []
    if baseline == "latest_blessed":
        resolver.append(tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        ).with_id("latest_blessed_model_resolver"))
    evaluator = GatedEvaluator(
        examples=examples.outputs["result"], model=candidate.outputs["result"],
        eval_config=create_eval_config(accuracy_floor, top_k=2),
        example_splits=GATE_SPLITS, serving_base=push_base if baseline == "served" else "",
        baseline_model=resolver[0].outputs["model"] if resolver else None,
        per_class_recall_floor=per_class_recall_floor,
        **dict({"min_eval_examples_per_class": 1, "min_eval_groups_per_class": 1}, **evidence)
    ).with_id("Evaluator")
    pusher = ServingPusher(model=candidate.outputs["result"],
                           model_blessing=evaluator.outputs["blessing"],
                           push_base=push_base, keep_versions=3).with_id("Pusher")
    held_out = HeldOutEvaluator(
        examples=examples.outputs["result"], model=candidate.outputs["result"],
        blessing=evaluator.outputs["blessing"],
        eval_config=create_eval_config(None, top_k=2), min_eval_examples_per_class=1,
        min_eval_groups_per_class=1).with_id("TestSplitEvaluator")
    metadata = str(work / "metadata.sqlite")
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=name, pipeline_root=str(work / "root"),
        components=[examples, candidate, *resolver, evaluator, pusher, held_out],
        enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata)))
    return reader.read(metadata, name)


@pytest.fixture(scope="module")
def gate(run_inputs, tmp_path_factory):
    """Runs against one push destination: a good first model, a worse one, one that misses a
    whole class under a per-class recall floor, and the worse one against the latest blessed
    model found by a Resolver."""
    work = tmp_path_factory.mktemp("gate")
    push_base = str(work / "serving" / "flowers")
    class_names = run_inputs["class_names"]
    eval_labels = [label for split in GATE_SPLITS for label in run_inputs["splits"][split][1]]
    assert len(set(eval_labels)) >= 2, f"too few classes for these tests: {eval_labels}"
    missed = max(sorted(set(eval_labels)), key=eval_labels.count)

    def shifted(label):
        return class_names[(class_names.index(label) + 1) % len(class_names)]

    runs = {"eval_labels": eval_labels, "missed": missed, "missed_as": shifted(missed),
            "push_base": push_base}
    good = memory_model(run_inputs, lambda label: label, work / "good")
    runs["first"] = gate_run(run_inputs, work, "first", good, push_base,
                             accuracy_floor=0.5).to_dict()
    runs["served_after_first"] = tree_digest(Path(push_base))
    worse = memory_model(run_inputs, shifted, work / "worse")
    runs["worse_record"] = gate_run(run_inputs, work, "worse", worse, push_base,
                                    accuracy_floor=0.0)
    runs["worse"] = runs["worse_record"].to_dict()
    runs["served_after_worse"] = tree_digest(Path(push_base))
    one_class = memory_model(run_inputs, lambda label: shifted(label) if label == missed
                             else label, work / "one_class")
    runs["one_class"] = gate_run(run_inputs, work, "one_class", one_class, push_base,
                                 accuracy_floor=0.0, per_class_recall_floor=0.5,
                                 baseline="none").to_dict()
    runs["served_after_one_class"] = tree_digest(Path(push_base))
    # Another run of pipeline "first": its Resolver finds the model blessed by the first run.
    runs["resolved"] = gate_run(run_inputs, work, "first", worse, push_base,
                                accuracy_floor=0.0, baseline="latest_blessed").to_dict()
    runs["served_after_resolved"] = tree_digest(Path(push_base))
    return runs


def test_first_model_is_gated_on_the_floor_only_and_pushed(gate):
    first = gate["first"]
    evaluation = first["evaluation"]
    assert evaluation["baseline"]["source"] == "none"
    assert "nothing served" in evaluation["baseline"]["note"]
    assert evaluation["metrics"]["sparse_categorical_accuracy"] == 1.0
    assert not any("baseline" in name for name in evaluation["metrics"])
    assert evaluation["blessed"] and evaluation["failures"] == []
    assert first["push"]["pushed"] and first["push"]["version"] == 1
    assert versions.list_versions(gate["push_base"]) == [1]


def test_eval_metrics_cover_the_multiclass_set(gate, run_inputs):
    evaluation = gate["first"]["evaluation"]
    metrics = evaluation["metrics"]
    labels = gate["eval_labels"]
    assert metrics["example_count"] == len(labels)
    assert metrics["sparse_top_k_categorical_accuracy"] == 1.0
    assert metrics["sparse_categorical_crossentropy"] == pytest.approx(-np.log(TOP_SCORE),
                                                                       rel=1e-4)
    others = (1 - TOP_SCORE) / (len(run_inputs["class_names"]) - 1)
    for name in sorted(set(labels)):
        per_class = evaluation["per_class"][name]
        assert per_class["top1_precision"] == per_class["top1_recall"] == 1.0
        count = labels.count(name)  # calibration: mean score of the class / its frequency
        expected = (TOP_SCORE * count + others * (len(labels) - count)) / count
        assert per_class["calibration"] == pytest.approx(expected, rel=1e-5)


def test_test_split_is_recorded_for_a_blessed_candidate_only(gate, run_inputs):
    test_labels = run_inputs["splits"]["test"][1]
    first = gate["first"]["test_split"]
    if test_labels:
        assert first["skipped"] == "" and first["splits"] == ["test"]
        assert first["metrics"]["example_count"] == len(test_labels)
        assert first["metrics"]["sparse_categorical_accuracy"] == 1.0
    else:
        assert first["skipped"] == "split(s) test hold no examples"
    assert gate["worse"]["test_split"]["skipped"] == "candidate not blessed"


def test_worse_candidate_is_not_blessed_and_not_pushed(gate):
    worse = gate["worse"]
    evaluation = worse["evaluation"]
    assert evaluation["baseline"] == {"source": "served", "version": 1,
                                      "path": versions.version_path(gate["push_base"], 1)}
    assert evaluation["metrics"]["sparse_categorical_accuracy"] == 0.0
    assert evaluation["metrics"]["sparse_categorical_accuracy [baseline]"] == 1.0
    assert not evaluation["blessed"]
    # The regression is caught by the paired rule on the same images, not by TFMA's point
    # estimates (TFMA keeps the floors only); the record's failures name that rule.
    assert evaluation["failures"] == [
        "no-regression rule (point) failed: accuracy difference -1.000 (point estimate) "
        "< -0.000"] and evaluation["validation_ok"] is True
    evidence = evaluation["evidence"]
    n = len(gate["eval_labels"])
    assert evidence["comparison"]["overall"]["difference"] == -1.0
    assert evidence["comparison"]["overall"]["p_value"] == pytest.approx(2 / 2 ** n)
    assert evidence["comparison"]["overall"]["verdict"] == "worse"
    assert evidence["reasons"] == ["no-regression rule (point) failed: accuracy difference "
                                   "-1.000 (point estimate) < -0.000"]
    assert worse["push"] == {"pushed": False, "destination": None, "version": None,
                             "pruned_versions": "", "already_served": False}
    assert gate["served_after_worse"] == gate["served_after_first"]
    assert "Pushed: no (the served model is unchanged)" in summary.render(gate["worse_record"])


def test_per_class_recall_floor_names_the_missed_class(gate):
    evaluation = gate["one_class"]["evaluation"]
    present = set(gate["eval_labels"])
    classes = evaluation["per_class"]
    assert classes[gate["missed"]]["top1_recall"] == 0.0
    assert all(classes[name]["top1_recall"] == 1.0 for name in present - {gate["missed"]})
    labels = gate["eval_labels"]  # the missed class's photos are all answered as missed_as
    target = labels.count(gate["missed_as"])
    assert classes[gate["missed_as"]]["top1_precision"] == pytest.approx(
        target / (target + labels.count(gate["missed"])))
    assert not evaluation["blessed"]
    failed = sorted(f.split("[class ")[1].split("]")[0] for f in evaluation["failures"])
    absent = [name for name in classes if name not in present]  # no recall: cannot pass
    assert failed == sorted([gate["missed"]] + absent)
    assert all(f.startswith("top1_recall [class ") and "fails >= 0.5000" in f
               for f in evaluation["failures"])
    assert gate["served_after_one_class"] == gate["served_after_first"]


def test_latest_blessed_baseline_from_a_resolver_also_gates(gate):
    evaluation = gate["resolved"]["evaluation"]
    assert evaluation["baseline"]["source"] == "baseline_model channel"
    assert evaluation["metrics"]["sparse_categorical_accuracy [baseline]"] == 1.0
    assert [f.split(":")[0] for f in evaluation["failures"]] == [
        "no-regression rule (point) failed"] and not evaluation["blessed"]
    assert evaluation["evidence"]["comparison"]["baseline"].startswith(
        "baseline_model channel (")
    assert evaluation["evidence"]["rule"]["passed"] is False
    assert not gate["resolved"]["push"]["pushed"]
    assert gate["served_after_resolved"] == gate["served_after_first"]


def test_first_model_has_evidence_but_nothing_to_compare_with(gate):
    evidence = gate["first"]["evaluation"]["evidence"]
    assert evidence["split"] == "train+eval" and evidence["examples"] == len(gate["eval_labels"])
    assert evidence["comparison"] is None and evidence["rule"]["applied"] is False
    assert evidence["blessed"] is True and evidence["reasons"] == []
    assert evidence["candidate"]["accuracy"] == 1.0
    assert evidence["candidate"]["ece"] == pytest.approx(1 - TOP_SCORE, rel=1e-5)
    (only_bin,) = evidence["candidate"]["reliability"]  # every top score is TOP_SCORE
    assert only_bin["count"] == len(gate["eval_labels"]) and only_bin["accuracy"] == 1.0
    assert only_bin["confidence"] == pytest.approx(TOP_SCORE, rel=1e-5)
    assert only_bin["low"] <= only_bin["confidence"] < only_bin["high"]


def _evaluator_output(work: Path, name: str, key: str):
    """The Evaluator's output artifact `key` (ML Metadata proto) of pipeline name's last run."""
    store = mlmd.open_store(str(work / "metadata.sqlite"))
    nodes = mlmd.latest_run_executions(store, name)
    return mlmd.output_artifacts(store, nodes["Evaluator"])[key][0]


@pytest.fixture(scope="module")
def evidence_runs(run_inputs, tmp_path_factory):
    """In a work dir of their own: the perfect model under the default minimum evidence (10
    images per class; the flowers run has 8), then with the minimum lowered (blessed, pushed
    as version 1), then a model that misses one class, compared paired against version 1."""
    work = tmp_path_factory.mktemp("evidence")
    push_base = str(work / "serving" / "flowers")
    class_names = run_inputs["class_names"]
    labels = [label for split in GATE_SPLITS for label in run_inputs["splits"][split][1]]
    missed = max(sorted(set(labels)), key=labels.count)
    missed_as = class_names[(class_names.index(missed) + 1) % len(class_names)]
    good = memory_model(run_inputs, lambda label: label, work / "good")
    runs = {"labels": labels, "missed": missed, "missed_as": missed_as, "work": work,
            "push_base": push_base}
    runs["few"] = gate_run(run_inputs, work, "few", good, push_base, accuracy_floor=0.0,
                           min_eval_examples_per_class=10).to_dict()
    runs["few_blessing"] = _evaluator_output(work, "few", "blessing")
    runs["served_after_few"] = versions.list_versions(push_base)
    runs["first"] = gate_run(run_inputs, work, "first", good, push_base,
                             accuracy_floor=0.0).to_dict()
    one_class = memory_model(run_inputs, lambda label: missed_as if label == missed else label,
                             work / "one_class")
    runs["second"] = gate_run(run_inputs, work, "second", one_class, push_base,
                              accuracy_floor=0.0, max_accuracy_drop=1.0).to_dict()
    return runs


def test_a_tiny_run_is_not_blessed_for_lack_of_evidence(evidence_runs):
    evaluation = evidence_runs["few"]["evaluation"]
    assert evaluation["validation_ok"] is True, "TFMA alone would have blessed it"
    assert not evaluation["blessed"]
    labels = evidence_runs["labels"]
    expected = [f"not enough evidence: class {name} has {labels.count(name)} train+eval images "
                "(minimum 10)" for name in evaluation["evidence"]["class_names"]
                if labels.count(name) < 10]
    assert expected and evaluation["evidence"]["reasons"] == expected
    assert evaluation["evidence"]["evidence"]["problems"] == expected
    blessing = evidence_runs["few_blessing"]
    assert blessing.custom_properties["blessed"].int_value == 0
    assert json.loads(blessing.custom_properties["blessing_reasons"].string_value) == expected
    assert sorted(os.listdir(blessing.uri)) == ["NOT_BLESSED"]
    assert not evidence_runs["few"]["push"]["pushed"]
    assert evidence_runs["served_after_few"] == []
    assert evidence_runs["few"]["test_split"]["skipped"] == "candidate not blessed"


def test_a_second_run_is_compared_paired_against_the_served_first(evidence_runs):
    from inception_retrain.components.evaluator import evidence_contract

    assert evidence_runs["first"]["push"]["version"] == 1
    assert evidence_runs["first"]["evaluation"]["evidence"]["evidence"]["enough"] is True
    evaluation = evidence_runs["second"]["evaluation"]
    evidence = evaluation["evidence"]
    labels, missed = evidence_runs["labels"], evidence_runs["missed"]
    comparison = evidence["comparison"]
    assert comparison["baseline"] == "served version 1"
    assert comparison["method"] == (f"exact McNemar test on the {len(labels)} paired "
                                    "train+eval images (interval: Newcombe's method for paired "
                                    "proportions)")
    overall = comparison["overall"]
    misses = labels.count(missed)
    assert overall["difference"] == pytest.approx(-misses / len(labels))
    assert (overall["candidate_only_correct"], overall["baseline_only_correct"]) == (0, misses)
    assert overall["p_value"] == pytest.approx(2 / 2 ** misses)
    low, high = overall["interval"]
    assert -1 <= low < overall["difference"] < high < 0
    assert overall["verdict"] == "worse"
    assert comparison["per_class"][missed]["difference"] == -1.0
    assert all(row["verdict"] == "no significant change" and row["difference"] == 0
               for name, row in comparison["per_class"].items() if name != missed)
    changed = comparison["changed"]
    assert len(changed) == misses and {c["label"] for c in changed} == {missed}
    assert {(c["baseline"], c["candidate"]) for c in changed} == {
        (missed, evidence_runs["missed_as"])}
    assert all(c["path"] and c["group"] == c["path"] for c in changed)  # ungrouped
    # max_accuracy_drop 1: the rule passes on the paired difference, and says which rule.
    assert evidence["rule"] == {
        "regression_rule": "point", "max_accuracy_drop": 1.0, "passed": True, "applied": True,
        "text": f"accuracy difference {overall['difference']:+.3f} (point estimate) >= -1.000"}
    assert evaluation["blessed"] and evidence["blessed"] is True
    assert evidence_runs["second"]["push"]["version"] == 2
    rows = evidence_contract.read_predictions(
        _evaluator_output(evidence_runs["work"], "second", "evaluation").uri)
    assert len(rows) == len(labels)
    assert all(len(r["candidate"]) == len(r["baseline"]) == len(evidence["class_names"])
               for r in rows)
