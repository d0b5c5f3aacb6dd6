"""DataGate: the Trainer's only way to its data facts, so a failed validation stops training.

Reads ExampleValidator's anomalies, StatisticsGen's statistics and ImageExampleGen's quarantine
and previous-span counts. Always writes the data report first (a DataReport artifact, so a
person can read why a run stopped); then raises with a message naming split, feature and classes
when a check fails, or writes class counts, class weights and warnings as a HyperParameters
artifact that the Trainer consumes (a data dependency, not just ordering).
"""
import dataclasses
import inspect
import json
import os
import typing

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import (
    InputArtifact,
    OutputArtifact,
    Parameter,
)
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact, artifact_utils, standard_artifacts

from inception_retrain.components import features, node_ids
from inception_retrain.components.data_gate import checks, contract, report
from inception_retrain.components.data_gate.thresholds import GateThresholds
from inception_retrain.components.image_example_gen import contract as example_gen


class DataReport(artifact.Artifact):
    """A human-readable data report (data_report.md) of one pipeline run."""

    # KubeflowV2DagRunner accepts custom artifact types only as <namespace>.<TypeName>.
    TYPE_NAME = "inception_retrain.ImageDataReport"


def _read_proto(path: str, message):
    with tf.io.gfile.GFile(path, "rb") as f:
        message.ParseFromString(f.read())
    return message


def _custom_int(examples, name: str) -> int:
    return examples.get_int_custom_property(name) if examples.has_custom_property(name) else 0


def _previous_span(examples):
    if not examples.has_custom_property(example_gen.PREVIOUS_SPAN_PROPERTY):
        return None
    return (examples.get_int_custom_property(example_gen.PREVIOUS_SPAN_PROPERTY),
            json.loads(examples.get_string_custom_property(
                example_gen.PREVIOUS_SPAN_COUNTS_PROPERTY)))


def _with_gate_parameters(func):
    """func with one Parameter per GateThresholds field (name, type and default from the rule's
    declaration) before its own parameters: TFX's @component reads a function's signature and
    annotations, so the DataGate's execution properties follow the rules without a list here."""
    signature = inspect.signature(func)
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    first_default = next(i for i, p in enumerate(own) if p.default is not p.empty)
    types = typing.get_type_hints(GateThresholds)
    rules = [inspect.Parameter(field.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                               default=field.default, annotation=Parameter[types[field.name]])
             for field in dataclasses.fields(GateThresholds)
             if field.metadata["reader"] == node_ids.DATA_GATE]
    parameters = own[:first_default] + rules + own[first_default:]
    func.__signature__ = signature.replace(parameters=parameters)
    func.__annotations__ = {p.name: p.annotation for p in parameters}
    return func


@component
@_with_gate_parameters
def DataGate(
    examples: InputArtifact[standard_artifacts.Examples],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    data_facts: OutputArtifact[standard_artifacts.HyperParameters],
    data_report: OutputArtifact[DataReport],
    train_split: Parameter[str] = "train",
    **rules,
):
    thresholds = GateThresholds.from_values(rules)
    problems = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(anomalies.uri, f"Split-{split}", "SchemaDiff.pb")
        problems += checks.anomaly_messages(split, _read_proto(path, anomalies_pb2.Anomalies()))

    counts, sizes, formats = {}, {}, {}
    for split in artifact_utils.decode_split_names(statistics.split_names):
        path = os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb")
        stats = _read_proto(path, statistics_pb2.DatasetFeatureStatisticsList())
        counts[split] = checks.class_counts(stats, features.LABEL_KEY)
        formats[split] = checks.class_counts(stats, features.FORMAT_KEY)
        sizes[split] = {dim: summary for dim in (features.WIDTH_KEY, features.HEIGHT_KEY)
                        for summary in [checks.numeric_summary(stats, dim)] if summary}

    quarantined = _custom_int(examples, example_gen.QUARANTINED_PROPERTY)
    previous = _previous_span(examples)
    index = example_gen.read_index(examples.uri)
    # in the configured order (train, eval, test): the index files are listed by name
    index = {s: index[s] for s in artifact_utils.decode_split_names(examples.split_names)
             if s in index}
    leaks = checks.leakage(index) if index else None
    grouped = bool(_custom_int(examples, example_gen.GROUPED_PROPERTY))
    split_facts = checks.split_summary(index, grouped) if index else None
    coverage = checks.coverage_problems(split_facts, train_split) if split_facts else None
    verdict = checks.evaluate(counts, train_split, quarantined, problems, previous, thresholds,
                              leaks, coverage)
    report_path = contract.report_path(data_report.uri)
    facts = {"class_counts": counts,
             "class_weights": checks.class_weights(counts.get(train_split, {})),
             "quarantined": quarantined,
             "skipped": _custom_int(examples, example_gen.SKIPPED_PROPERTY),
             "span": examples.span,
             "failures": verdict.failures, "warnings": verdict.warnings,
             "report": report_path}
    if index:
        facts["split"] = dict(split_facts,
                              method=example_gen.read_assignment(examples.uri).get("method"))
        facts["leakage"] = checks.leakage_summary(leaks)
    slides = example_gen.read_slides(examples.uri)
    if slides:
        facts["slides"] = slides
    if previous is not None:
        distance, worst = checks.label_drift(checks.total_counts(counts), previous[1])
        facts["label_drift"] = {"previous_span": previous[0], "previous_counts": previous[1],
                                "distance": distance, "class": worst,
                                "threshold": thresholds.max_label_drift}
    with tf.io.gfile.GFile(report_path, "w") as f:
        f.write(report.render(facts, example_gen.read_quarantine(examples.uri), problems,
                              sizes, formats))
    if index:
        with tf.io.gfile.GFile(contract.split_path(data_report.uri), "w") as f:
            json.dump({key: facts.get(key) for key in ("split", "leakage", "failures",
                                                       "warnings")}, f, indent=2,
                      sort_keys=True)
    if verdict.failures:
        raise checks.DataValidationError(
            "data failed validation:\n  " + "\n  ".join(verdict.failures)
            + f"\ndata report: {report_path}")
    with tf.io.gfile.GFile(contract.facts_path(data_facts.uri), "w") as f:
        json.dump(facts, f, indent=2, sort_keys=True)
