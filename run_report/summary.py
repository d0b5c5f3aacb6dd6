"""The end-of-run summary, read back from ML Metadata and the run's artifacts.

Everything shown comes from the metadata store of the run (not from the process that ran it),
so the same summary can be produced later for any past run.
"""
import json
import os
from typing import Any, Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

_STATES = {metadata_store_pb2.Execution.State.Value(name): name for name in
           ("UNKNOWN", "NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED")}


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    if not os.path.exists(metadata_path):
        raise FileNotFoundError(f"no metadata store at {metadata_path}; has the pipeline run?")
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


def latest_run_executions(store, pipeline_name: str) -> Dict[str, Any]:
    """{node id: execution} for the newest pipeline run of pipeline_name, in run order."""
    runs = [c for c in store.get_contexts_by_type("pipeline_run")]
    pipeline_executions = set()
    for context in store.get_contexts_by_type("pipeline"):
        if context.name == pipeline_name:
            pipeline_executions = {e.id for e in store.get_executions_by_context(context.id)}
    runs = [r for r in runs if any(e.id in pipeline_executions
                                   for e in store.get_executions_by_context(r.id))]
    if not runs:
        return {}
    latest = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    executions = sorted(store.get_executions_by_context(latest.id), key=lambda e: e.id)
    by_node = {}
    for execution in executions:
        for context in store.get_contexts_by_execution(execution.id):
            if context.type == "node":
                by_node[context.name.split(".", 1)[-1]] = execution
    return by_node


def _artifacts_by_key(store, execution, event_types) -> Dict[str, List]:
    """{input or output key: [artifacts]} of one execution, for the given MLMD event types."""
    events = [e for e in store.get_events_by_execution_ids([execution.id])
              if e.type in event_types]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    result: Dict[str, List] = {}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else ""
        result.setdefault(key, []).append(artifacts[event.artifact_id])
    return result


def output_artifacts(store, execution) -> Dict[str, List]:
    """{output key: [artifacts]} of one execution."""
    return _artifacts_by_key(store, execution, (metadata_store_pb2.Event.OUTPUT,
                                                metadata_store_pb2.Event.DECLARED_OUTPUT))


def input_artifacts(store, execution) -> Dict[str, List]:
    """{input key: [artifacts]} of one execution."""
    return _artifacts_by_key(store, execution, (metadata_store_pb2.Event.INPUT,))


def _property(artifact, name: str):
    value = artifact.custom_properties.get(name)
    if value is None:
        return None
    which = value.WhichOneof("value")
    if which == "struct_value":
        from google.protobuf import json_format

        return json_format.MessageToDict(value.struct_value)
    return getattr(value, which)


def _split_names(artifact) -> List[str]:
    return json.loads(artifact.properties["split_names"].string_value)


def _data_section(store, nodes) -> Dict[str, Any]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

    from inception_retrain.components import features
    from inception_retrain.components.data_gate import checks
    from inception_retrain.components.image_example_gen.executor import read_quarantine

    section: Dict[str, Any] = {}
    if "ImageExampleGen" in nodes:
        examples = output_artifacts(store, nodes["ImageExampleGen"])["examples"][0]
        section["quarantine"] = read_quarantine(examples.uri)
    if "StatisticsGen" in nodes:
        stats = output_artifacts(store, nodes["StatisticsGen"])["statistics"][0]
        counts = {}
        for split in _split_names(stats):
            message = statistics_pb2.DatasetFeatureStatisticsList()
            with open(os.path.join(stats.uri, f"Split-{split}", "FeatureStats.pb"), "rb") as f:
                message.ParseFromString(f.read())
            counts[split] = checks.class_counts(message, features.LABEL_KEY)
        section["class_counts"] = counts
    if "ExampleValidator" in nodes:
        anomalies = output_artifacts(store, nodes["ExampleValidator"])["anomalies"][0]
        lines = []
        for split in _split_names(anomalies):
            message = anomalies_pb2.Anomalies()
            with open(os.path.join(anomalies.uri, f"Split-{split}", "SchemaDiff.pb"), "rb") as f:
                message.ParseFromString(f.read())
            lines += checks.anomaly_messages(split, message)
        section["anomalies"] = lines
    if "DataGate" in nodes:
        gate = output_artifacts(store, nodes["DataGate"])
        if gate.get("data_report"):
            from inception_retrain.components.data_gate.report import REPORT_FILE

            section["report"] = os.path.join(gate["data_report"][0].uri, REPORT_FILE)
        if gate.get("data_facts"):
            from inception_retrain.components.data_gate.component import DATA_FACTS_FILE

            with open(os.path.join(gate["data_facts"][0].uri, DATA_FACTS_FILE)) as f:
                section["warnings"] = json.load(f).get("warnings", [])
    return section


def _training_section(store, nodes) -> Optional[Dict[str, Any]]:
    from inception_retrain.components.trainer.run import REPORT_FILE

    if "Trainer" not in nodes:
        return None
    run_dir = output_artifacts(store, nodes["Trainer"])["model_run"][0].uri
    path = os.path.join(run_dir, REPORT_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _read_metrics(evaluation_uri: str, class_names: List[str]):
    """Overall-slice metrics: ({name: value}, {class name: {name: value}}); baseline values and
    changes vs. the baseline carry a suffix in their name."""
    import tensorflow_model_analysis as tfma

    overall: Dict[str, float] = {}
    per_class: Dict[str, Dict[str, float]] = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue  # overall slice only
        for kv in slice_metrics.metric_keys_and_values:
            if not kv.value.HasField("double_value"):
                continue
            name = kv.key.name + (" (change vs baseline)" if kv.key.is_diff else "")
            if kv.key.model_name and kv.key.model_name != "candidate" and not kv.key.is_diff:
                name += f" [{kv.key.model_name}]"
            if kv.key.sub_key.HasField("class_id"):
                class_id = kv.key.sub_key.class_id.value
                label = class_names[class_id] if class_id < len(class_names) else str(class_id)
                per_class.setdefault(label, {})[name] = kv.value.double_value.value
            else:
                overall[name] = kv.value.double_value.value
    return overall, per_class


def _evaluation_section(store, nodes) -> Optional[Dict[str, Any]]:
    import tensorflow_model_analysis as tfma

    from inception_retrain.components.evaluator.evaluator import read_gate_record

    if "Evaluator" not in nodes:
        return None
    outputs = output_artifacts(store, nodes["Evaluator"])
    evaluation_uri = outputs["evaluation"][0].uri
    gate = read_gate_record(evaluation_uri) or {}
    class_names = gate.get("class_names", [])
    metrics, per_class = _read_metrics(evaluation_uri, class_names)
    validation = tfma.load_validation_result(evaluation_uri)
    failures = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            key = failure.metric_key
            name = key.name
            if key.sub_key.HasField("class_id"):
                class_id = key.sub_key.class_id.value
                name += (f" [class {class_names[class_id]}]" if class_id < len(class_names)
                         else f" [class id {class_id}]")
            failures.append(f"{name}{' change' if key.is_diff else ''} = "
                            f"{failure.metric_value.double_value.value:.4f} fails "
                            f"{_threshold_text(failure.metric_threshold)}")
    blessed = bool(_property(outputs["blessing"][0], "blessed"))
    return {"metrics": metrics, "per_class": per_class, "baseline": gate.get("baseline"),
            "blessed": blessed, "failures": failures,
            "validation_ok": validation.validation_ok}


def _test_split_section(store, nodes) -> Optional[Dict[str, Any]]:
    from inception_retrain.components.evaluator.evaluator import read_gate_record

    if "TestSplitEvaluator" not in nodes:
        return None
    evaluation_uri = output_artifacts(store, nodes["TestSplitEvaluator"])["evaluation"][0].uri
    record = read_gate_record(evaluation_uri) or {}
    if record.get("skipped") or not record:
        return {"skipped": record.get("skipped") or "no record (the evaluation did not run)"}
    metrics, per_class = _read_metrics(evaluation_uri, record.get("class_names", []))
    return {"skipped": "", "splits": record.get("splits"), "metrics": metrics,
            "per_class": per_class}


def _threshold_text(threshold) -> str:
    parts = []
    if threshold.HasField("value_threshold"):
        bound = threshold.value_threshold
        if bound.HasField("lower_bound"):
            parts.append(f">= {bound.lower_bound.value:.4f}")
        if bound.HasField("upper_bound"):
            parts.append(f"<= {bound.upper_bound.value:.4f}")
    if threshold.HasField("change_threshold"):
        parts.append(f"change >= {threshold.change_threshold.absolute.value:.4f}")
    return " and ".join(parts) or str(threshold)


def _push_section(store, nodes) -> Optional[Dict[str, Any]]:
    if "Pusher" not in nodes:
        return None
    pushed = output_artifacts(store, nodes["Pusher"])["pushed_model"][0]
    return {"pushed": bool(_property(pushed, "pushed")),
            "destination": _property(pushed, "pushed_destination"),
            "version": _property(pushed, "pushed_version"),
            "pruned_versions": _property(pushed, "pruned_versions") or ""}


def collect(metadata_path: str, pipeline_name: str) -> Dict[str, Any]:
    """The summary of the newest run of pipeline_name as a plain, JSON-ready dict."""
    store = open_store(metadata_path)
    nodes = latest_run_executions(store, pipeline_name)
    components = []
    for node_id, execution in nodes.items():
        seconds = (execution.last_update_time_since_epoch
                   - execution.create_time_since_epoch) / 1000.0
        components.append({"component": node_id,
                           "state": _STATES.get(execution.last_known_state, "UNKNOWN"),
                           "seconds": round(seconds, 1)})
    return {"pipeline": pipeline_name, "components": components,
            "data": _data_section(store, nodes),
            "training": _training_section(store, nodes),
            "evaluation": _evaluation_section(store, nodes),
            "test_split": _test_split_section(store, nodes),
            "push": _push_section(store, nodes)}


def _metric_lines(metrics: Dict[str, float]) -> List[str]:
    """One line per metric; counts (example_count) as whole numbers, the rest to 4 places."""
    return [f"  {k}: {v:.0f}" if k.endswith("_count") else f"  {k}: {v:.4f}"
            for k, v in sorted(metrics.items())]


def _per_class_lines(per_class: Dict[str, Dict[str, float]]) -> List[str]:
    """A class x (precision, recall, calibration) table; precision and recall of the top-1
    class (components.evaluator.metrics)."""
    if not per_class:
        return []
    columns = {"precision": "top1_precision", "recall": "top1_recall",
               "calibration": "calibration"}
    lines = ["  " + f"{'class':<24}" + "".join(f"{c:>12}" for c in columns)]
    for name in sorted(per_class):
        values = per_class[name]
        lines.append("  " + f"{name:<24}" + "".join(
            f"{values.get(metric, float('nan')):>12.4f}" for metric in columns.values()))
    return lines


def render(summary: Dict[str, Any], seconds: Optional[float] = None) -> str:
    """The summary as text a person reads at the end of a run."""
    out = ["", "=" * 72, f"Run summary: {summary['pipeline']}"
           + (f" ({seconds:.0f} s)" if seconds else ""), "=" * 72]
    out.append("Components:")
    for c in summary["components"]:
        out.append(f"  {c['component']:<32} {c['state']:<9} {c['seconds']:>7.1f} s")

    data = summary["data"]
    if data.get("class_counts"):
        out.append("Examples per split and class:")
        classes = sorted(set().union(*data["class_counts"].values()))
        splits = list(data["class_counts"])
        out.append("  " + f"{'class':<24}" + "".join(f"{s:>8}" for s in splits))
        for name in classes:
            out.append("  " + f"{name:<24}" + "".join(
                f"{data['class_counts'][s].get(name, 0):>8}" for s in splits))
        out.append("  " + f"{'total':<24}" + "".join(
            f"{sum(data['class_counts'][s].values()):>8}" for s in splits))
    if "quarantine" in data:
        out.append(f"Quarantined files: {len(data['quarantine'])}")
        out.extend(f"  {q['relative_path']}: {q['reason']}" for q in data["quarantine"][:20])
    for warning in data.get("warnings", []):
        out.append(f"Data warning: {warning}")
    if data.get("report"):
        out.append(f"Data report: {data['report']}")
    if "anomalies" in data:
        out.append("Anomalies: " + ("none" if not data["anomalies"] else ""))
        out.extend(f"  {line}" for line in data["anomalies"])

    training = summary.get("training")
    if training:
        weights = training["base_weights"]
        if weights.startswith("RANDOM") or weights.startswith("random"):
            out += ["!" * 72, f"!! BASE WEIGHTS: {weights}", "!" * 72]
        else:
            out.append(f"Base weights: {weights}")
        for phase in ("phase1", "phase2"):
            info = training.get(phase, {})
            if "skipped" in info:
                out.append(f"Training {phase}: skipped ({info['skipped']})")
                continue
            history = info.get("history", {})
            last = {k: v[-1] for k, v in history.items() if v}
            best_val = min(history.get("val_loss", [float("nan")]))
            out.append(
                f"Training {phase}: {info.get('epochs_run')} epoch(s) in {info.get('seconds')} s"
                f"; last accuracy {last.get('accuracy', float('nan')):.3f}, val_accuracy "
                f"{last.get('val_accuracy', float('nan')):.3f}; best val_loss {best_val:.4f}")

    evaluation = summary.get("evaluation")
    if evaluation:
        baseline = evaluation.get("baseline") or {}
        if baseline.get("source") == "served":
            out.append(f"Baseline: served version {baseline['version']} ({baseline['path']})")
        elif baseline:
            detail = baseline.get("note") or baseline.get("uri")
            out.append(f"Baseline: {baseline['source']}" + (f" ({detail})" if detail else ""))
        if baseline.get("dropped"):
            out.append(f"  not used: {baseline['dropped']}")
        out.append("Evaluation (eval split):")
        out.extend(_metric_lines(evaluation["metrics"]))
        out.extend(_per_class_lines(evaluation.get("per_class") or {}))
        if evaluation["blessed"]:
            out.append("Blessed: yes (all thresholds met)")
        else:
            out.append("Blessed: NO")
            out.extend(f"  {reason}" for reason in evaluation["failures"])
    test_split = summary.get("test_split")
    if test_split:
        if test_split["skipped"]:
            out.append(f"Test split: not evaluated ({test_split['skipped']})")
        else:
            out.append("Test split (blessed candidate; recorded, never used for gating):")
            out.extend(_metric_lines(test_split["metrics"]))
            out.extend(_per_class_lines(test_split["per_class"]))
    push = summary.get("push")
    if push:
        if push["pushed"]:
            out.append(f"Pushed: {push['destination']} (version {push['version']})")
            if push.get("pruned_versions"):
                out.append(f"  removed old versions: {push['pruned_versions']}")
        else:
            out.append("Pushed: no (the served model is unchanged)")
    elif evaluation is None or training is None:
        out.append("The run stopped before evaluation; nothing was pushed.")
    out.append("=" * 72)
    return "\n".join(out)
