"""Reads a RunRecord (run_reading.record) from ML Metadata and the run's artifacts: any run of a
pipeline by its id, the newest by default, finished or not.

File names, property names and readers of what components write come from their contract
modules (components/<name>/contract.py), so reading a run imports no TensorFlow until there is
an evaluation to load with TFMA (run_reading.evaluation).
"""
import dataclasses
import datetime
import json
import logging
import os
from typing import Any, Dict, List, Optional, Tuple

from inception_retrain.components import artifact_files, node_ids
from inception_retrain.components.data_gate import contract as data_gate
from inception_retrain.components.image_example_gen import contract as example_gen
from inception_retrain.components.pusher import contract as pusher
from inception_retrain.components.trainer import contract as trainer
from inception_retrain.pipeline import mlmd, run_lock
from inception_retrain.run_reading import evaluation as evaluation_reader
from inception_retrain.run_reading import headline
from inception_retrain.run_reading.artifacts import RunArtifacts
from inception_retrain.run_reading.record import (
    PHASES,
    ActiveExecution,
    ComponentRun,
    DataSection,
    Phase,
    PushSection,
    RunInfo,
    RunRecord,
    TrainingSection,
)


def read(metadata_path: str, pipeline_name: str, run_id: Optional[str] = None,
         work_dir: Optional[str] = None) -> RunRecord:
    """The record of run run_id of pipeline_name (default: its newest run).

    work_dir: the run lock's directory; with it, executions still NEW or RUNNING in the store
    are marked interrupted when no other process holds the lock (without it, unknown).
    Raises FileNotFoundError when there is no store or no such run."""
    store = mlmd.open_store(metadata_path)
    run = mlmd.find_run(store, pipeline_name, run_id)
    if run is None:
        which = f"run {run_id!r}" if run_id else "run"
        raise FileNotFoundError(f"no {which} of pipeline {pipeline_name!r} in {metadata_path}")
    return read_run(store, pipeline_name, run, work_dir)


def active_executions(store, pipeline_name: str,
                      work_dir: Optional[str]) -> Tuple[ActiveExecution, ...]:
    """The pipeline's NEW or RUNNING executions: interrupted when work_dir is known and no other
    process holds its run lock (a run holds it from its start to its report)."""
    found = mlmd.active_executions(store, pipeline_name)
    if not found:
        return ()
    holder = run_lock.held_elsewhere(work_dir) if work_dir else None
    return tuple(ActiveExecution(run_id, node, state, interrupted=bool(work_dir and not holder),
                                 holder=holder) for run_id, node, state in found)


def read_run(store, pipeline_name: str, run_context,
             work_dir: Optional[str] = None) -> RunRecord:
    """The record of one pipeline_run context."""
    nodes = mlmd.run_executions(store, run_context)
    active = active_executions(store, pipeline_name, work_dir)
    interrupted = {a.component for a in active if a.interrupted and a.run_id == run_context.name}
    components = tuple(ComponentRun(
        node, mlmd.STATES.get(e.last_known_state, "UNKNOWN"),
        round((e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000.0, 1),
        error=(mlmd.execution_error(e)
               if e.last_known_state == mlmd.metadata_store_pb2.Execution.FAILED else None),
        interrupted=node in interrupted)
        for node, e in nodes.items())
    artifacts = RunArtifacts.from_store(store, nodes)
    push = read_push(artifacts)
    if push is not None:
        states = {c.component: c.state for c in components}
        push = dataclasses.replace(push, by_this_run=states.get(node_ids.PUSHER) == "COMPLETE")
    return RunRecord(pipeline=pipeline_name, run=run_info(run_context, nodes),
                     components=components, data=read_data(artifacts),
                     training=read_training(artifacts),
                     evaluation=headline.with_headline(
                         evaluation_reader.read_evaluation(artifacts)),
                     test_split=evaluation_reader.read_test_split(artifacts), push=push,
                     active=active)


def list_runs(metadata_path: str, pipeline_name: str,
              work_dir: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every run of pipeline_name in the store, oldest first: run id, start, and each
    component's state (no artifact is read)."""
    store = mlmd.open_store(metadata_path)
    active = {(a.run_id, a.component): a for a in active_executions(store, pipeline_name,
                                                                     work_dir)}
    runs = []
    for run in mlmd.pipeline_runs(store, pipeline_name):
        nodes = mlmd.run_executions(store, run)
        states = {node: ("INTERRUPTED" if getattr(active.get((run.name, node)), "interrupted",
                                                  False)
                         else mlmd.STATES.get(e.last_known_state, "UNKNOWN"))
                  for node, e in nodes.items()}
        runs.append({"run_id": run.name, "started": run_info(run, nodes).started,
                     "states": states})
    return runs


def run_info(run_context, nodes: Dict[str, Any]) -> RunInfo:
    if not nodes:
        return RunInfo(run_id=run_context.name)
    executions = list(nodes.values())
    start = min(e.create_time_since_epoch for e in executions)
    end = max(e.last_update_time_since_epoch for e in executions)
    data_root = (mlmd.property_value(nodes[node_ids.EXAMPLE_GEN].custom_properties, "input_base")
                 if node_ids.EXAMPLE_GEN in nodes else None)
    return RunInfo(
        run_id=run_context.name, data_root=data_root,
        started=datetime.datetime.fromtimestamp(start / 1000).isoformat(timespec="seconds"),
        wall_seconds=round((end - start) / 1000.0, 1))


def _split_names(artifact) -> List[str]:
    value = artifact.properties.get("split_names")
    return json.loads(value.string_value) if value is not None and value.string_value else []


def _read_proto(path: str, message):
    """message parsed from path, or None when the file is missing."""
    data = artifact_files.read_bytes(path)
    if data is None:
        return None
    message.ParseFromString(data)
    return message


def split_class_counts(statistics_artifact) -> Dict[str, Dict[str, int]]:
    """{split: {class: examples}} from a StatisticsGen output artifact (splits whose statistics
    file is missing are left out)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from inception_retrain.components import features
    from inception_retrain.components.data_gate import checks

    counts = {}
    for split in _split_names(statistics_artifact):
        message = _read_proto(os.path.join(statistics_artifact.uri, f"Split-{split}",
                                           "FeatureStats.pb"),
                              statistics_pb2.DatasetFeatureStatisticsList())
        if message is not None:
            counts[split] = checks.class_counts(message, features.LABEL_KEY)
    return counts


def _anomalies(anomalies_artifact) -> List[str]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    from inception_retrain.components.data_gate import checks

    lines = []
    for split in _split_names(anomalies_artifact):
        message = _read_proto(os.path.join(anomalies_artifact.uri, f"Split-{split}",
                                           "SchemaDiff.pb"), anomalies_pb2.Anomalies())
        if message is not None:
            lines += checks.anomaly_messages(split, message)
    return lines


def read_data(run: RunArtifacts) -> Optional[DataSection]:
    """The data section; None when none of the data components ran."""
    fields: Dict[str, Any] = {}
    examples = run.output(node_ids.EXAMPLE_GEN, "examples")
    if examples is not None:
        fields["quarantine"] = example_gen.read_quarantine(examples.uri)
        fields["quarantined_count"] = int(mlmd.property_value(
            examples.custom_properties, example_gen.QUARANTINED_PROPERTY) or 0)
        fields["skipped_count"] = int(mlmd.property_value(
            examples.custom_properties, example_gen.SKIPPED_PROPERTY) or 0)
    statistics = run.output(node_ids.STATISTICS_GEN, "statistics")
    if statistics is not None:
        fields["class_counts"] = split_class_counts(statistics)
    anomalies = run.output(node_ids.EXAMPLE_VALIDATOR, "anomalies")
    if anomalies is not None:
        fields["anomalies"] = _anomalies(anomalies)
    report = run.output(node_ids.DATA_GATE, "data_report")
    if report is not None:
        fields["report_path"] = data_gate.report_path(report.uri)
        fields["report_text"] = data_gate.read_report(report.uri)
        fields["split"] = data_gate.read_split(report.uri)
    facts_artifact = run.output(node_ids.DATA_GATE, "data_facts")
    facts = data_gate.read_data_facts(facts_artifact.uri) if facts_artifact else None
    if facts is not None:
        fields["warnings"] = facts.get("warnings", [])
    if not fields and not any(node in run.ran for node in (
            node_ids.EXAMPLE_GEN, node_ids.STATISTICS_GEN, node_ids.EXAMPLE_VALIDATOR,
            node_ids.DATA_GATE)):
        return None
    return DataSection(**fields)


def read_training(run: RunArtifacts) -> Optional[TrainingSection]:
    """The trainer's report; None when the Trainer did not run or left none."""
    model_run = run.output(node_ids.TRAINER, "model_run")
    report = trainer.read_training_report(model_run.uri) if model_run is not None else None
    if report is None:
        return None
    phases = []
    for name in PHASES:
        info = report.get(name)
        if info is None:
            continue
        phases.append(Phase(name, skipped=info["skipped"] if "skipped" in info else None,
                            epochs_run=info.get("epochs_run"),
                            seconds=info.get("seconds"), history=info.get("history") or {},
                            kept_phase1_weights=info.get("kept_phase1_weights") or ""))
    return TrainingSection(
        report=report, base_weights=str(report.get(trainer.BASE_WEIGHTS, "unknown")),
        base_weights_random=trainer.base_weights_random(report),
        class_names=list(report.get("class_names") or []), strategy=report.get("strategy"),
        config=report.get("config") or {}, phases=tuple(phases), model_run_uri=model_run.uri,
        code_version=trainer.code_version(report))


def read_push(run: RunArtifacts) -> Optional[PushSection]:
    pushed = run.output(node_ids.PUSHER, "pushed_model")
    if pushed is None:
        return None
    props = pushed.custom_properties
    version = mlmd.property_value(props, pusher.PUSHED_VERSION)
    version = int(version) if version is not None else None  # Kubeflow records doubles
    destination = mlmd.property_value(props, pusher.PUSHED_DESTINATION)
    published = bool(mlmd.property_value(props, pusher.PUSHED))
    return PushSection(pushed=published, destination=destination, version=version,
                       pruned_versions=mlmd.property_value(props, pusher.PRUNED_VERSIONS) or "",
                       already_served=bool(mlmd.property_value(props, pusher.ALREADY_SERVED)),
                       pushed_at=published_at(destination, version) if published else None)


def published_at(destination: Optional[str], version: Optional[int]) -> Optional[str]:
    """When version was published at destination (<base>/<version>), from its push record
    (serving.versions); None when unknown: pruned since, or the base path unreadable."""
    if not destination or version is None:
        return None
    from inception_retrain.serving import versions

    stripped = destination.rstrip("/")
    base = stripped[:stripped.rfind("/")] if "/" in stripped else "."
    try:
        return versions.read_push_record(base, version).get("published_at")
    except (OSError, ValueError) as err:  # ValueError: a push record that is not JSON
        logging.getLogger(__name__).warning("push time of version %s not read from %s: %s",
                                            version, base, err)
        return None
