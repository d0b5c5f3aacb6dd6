"""DataGate: the Trainer's only way to its data facts, so a failed validation stops training.

Reads ExampleValidator's anomalies and StatisticsGen's statistics; raises with a message naming
split, feature and classes when they fail; otherwise writes class counts and class weights as a
HyperParameters artifact that the Trainer consumes (a data dependency, not just ordering).
"""
import json
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.v1.dsl.components import InputArtifact, OutputArtifact, Parameter, component

from components import features
from components.data_gate import checks
from components.image_example_gen.executor import QUARANTINED_PROPERTY

DATA_FACTS_FILE = "data_facts.json"


def _read_proto(path: str, message):
    with tf.io.gfile.GFile(path, "rb") as f:
        message.ParseFromString(f.read())
    return message


@component
def DataGate(
    examples: InputArtifact[standard_artifacts.Examples],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    data_facts: OutputArtifact[standard_artifacts.HyperParameters],
    min_examples_per_class: Parameter[int] = 2,
    max_quarantined_fraction: Parameter[float] = 0.05,
    train_split: Parameter[str] = "train",
):
    thresholds = checks.GateThresholds(min_examples_per_class, max_quarantined_fraction)
    problems = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(anomalies.uri, f"Split-{split}", "SchemaDiff.pb")
        problems += checks.anomaly_messages(split, _read_proto(path, anomalies_pb2.Anomalies()))
    if problems:
        raise checks.DataValidationError(
            "data failed validation against the schema:\n  " + "\n  ".join(problems))

    counts = {}
    for split in artifact_utils.decode_split_names(statistics.split_names):
        path = os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb")
        stats = _read_proto(path, statistics_pb2.DatasetFeatureStatisticsList())
        counts[split] = checks.class_counts(stats, features.LABEL_KEY)
    checks.check_class_counts(counts, train_split, thresholds)
    quarantined = examples.get_int_custom_property(QUARANTINED_PROPERTY)
    checks.check_quarantine(quarantined, sum(sum(c.values()) for c in counts.values()), thresholds)

    facts = {"class_counts": counts,
             "class_weights": checks.class_weights(counts[train_split]),
             "quarantined": quarantined}
    with tf.io.gfile.GFile(os.path.join(data_facts.uri, DATA_FACTS_FILE), "w") as f:
        json.dump(facts, f, indent=2, sort_keys=True)
