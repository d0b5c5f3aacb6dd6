"""The history of a work dir: every run and every pushed version, for `inception-retrain
history`, `rollback`, `report --list`, `compare` and the report (rendered by
run_rendering.history_view).

The runs come from the run index (index_contract: one line per run beside the metadata store),
kept in step with ML Metadata by sync(): a run the index lacks, or whose executions changed
since its line, is read once (reader.read_run: TFMA for an evaluation, the slow path) and its
line appended; a listing of runs already indexed imports ml_metadata only. Per version: when it
was published, from which run (or a rollback of which version), its run's metrics, whether TF
Serving serves it now.
"""
import dataclasses
import hashlib
from typing import Any, Dict, List, Optional, Tuple

from inception_retrain.components import artifact_files, node_ids
from inception_retrain.components.evaluator import evidence
from inception_retrain.pipeline import mlmd, run_lock
from inception_retrain.run_reading import index_contract
from inception_retrain.run_reading.index_contract import RunEntry
from inception_retrain.run_reading.record import RunRecord

ACCURACY = "sparse_categorical_accuracy"
BASELINE_ACCURACY = ACCURACY + " [baseline]"


@dataclasses.dataclass(frozen=True)
class VersionEntry:
    version: int
    published_at: Optional[str]
    source: str
    rollback_of: Optional[int]
    run_id: Optional[str]                     # the run that pushed it (of the metrics' model)
    accuracy: Optional[float]
    interval: Optional[Tuple[float, float]]
    served: bool

    @property
    def origin(self) -> str:
        if self.rollback_of is not None:
            return f"rollback to version {self.rollback_of}"
        return f"run {self.run_id}" if self.run_id else (self.source or "?")

    def to_dict(self) -> Dict[str, Any]:
        return dict(dataclasses.asdict(self), origin=self.origin,
                    interval=list(self.interval) if self.interval else None)


@dataclasses.dataclass(frozen=True)
class History:
    runs: Tuple[RunEntry, ...]
    versions: Tuple[VersionEntry, ...]        # present under the push destination, oldest first
    served_version: Optional[int]
    push_base: str

    def to_dict(self) -> Dict[str, Any]:
        return {"runs": [r.to_dict() for r in self.runs],
                "versions": [v.to_dict() for v in self.versions],
                "served_version": self.served_version, "push_base": self.push_base}


def wilson_interval(successes: float, total: float) -> Tuple[float, float]:
    """95% Wilson score interval of a proportion (the Evaluator's, evidence.wilson_interval),
    from a count that may come as accuracy x examples; (0, 1) when nothing was counted."""
    low, high = evidence.wilson_interval(round(successes), round(total))
    return (0.0, 1.0) if low is None else (low, high)


def _why(record: RunRecord) -> str:
    """Why the run was not blessed, or how it ended ("" for a blessed run that pushed)."""
    evaluation, data = record.evaluation, record.data
    if record.failed_components:
        return f"failed at {', '.join(record.failed_components)}" + (
            f": {record.failure}" if record.failure else "")
    if record.interrupted_components:
        return f"interrupted at {', '.join(record.interrupted_components)}"
    if evaluation is not None and not evaluation.blessed:
        return evaluation.failures[0] if evaluation.failures else "a threshold failed"
    if evaluation is None:
        return "stopped before evaluation" + (
            f" (data gate: {data.warnings[0]})" if data and data.warnings else "")
    return "" if record.published_version else "the Pusher did not publish"


def run_entry(record: RunRecord, span: Optional[int] = None, fingerprint: Optional[str] = None,
              store_mark: Optional[int] = None) -> RunEntry:
    """One run's entry of the history and the run index, from its record (span, fingerprint
    and store_mark come from ML Metadata: run_facts)."""
    evaluation, data, push = record.evaluation, record.data, record.push
    metrics = artifact_files.json_safe(evaluation.metrics) if evaluation else {}
    accuracy, count = metrics.get(ACCURACY), metrics.get("example_count")
    interval = (wilson_interval(accuracy * count, count)
                if accuracy is not None and count else None)
    examples = ({split: data.split_total(split) for split in data.splits}
                if data and data.class_counts else {})
    return RunEntry(
        run_id=record.run.run_id or "?", started=record.run.started,
        data_root=record.run.data_root, span=span, examples=examples,
        base_weights=record.training.base_weights if record.training else None,
        accuracy=accuracy, eval_examples=int(count) if count else None, interval=interval,
        blessed=evaluation.blessed if evaluation is not None else None, why=_why(record),
        pushed_version=record.push.version if record.published_version else None,
        reused=bool(push and record.published_version and not push.by_this_run),
        training_config=dict(record.training.config) if record.training else {},
        pipeline=record.pipeline, wall_seconds=record.run.wall_seconds,
        states={c.component: "INTERRUPTED" if c.interrupted else c.state
                for c in record.components},
        class_counts=dict(data.class_counts or {}) if data else {},
        data_fingerprint=(hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
                          if fingerprint else None),
        metrics=metrics,
        per_class=artifact_files.json_safe(evaluation.per_class) if evaluation else {},
        baseline=artifact_files.json_safe(evaluation.baseline) if evaluation else None,
        baseline_accuracy=metrics.get(BASELINE_ACCURACY), store_mark=store_mark)


def store_mark(store, context) -> Optional[int]:
    """The newest update time (ms) of a pipeline_run context's executions: a run whose mark is
    newer than its index line's changed since the line was written."""
    return max((e.last_update_time_since_epoch
                for e in store.get_executions_by_context(context.id)), default=None)


def run_facts(store, context) -> Tuple[Optional[int], Optional[str], Optional[int]]:
    """(span, input fingerprint, store mark) of one pipeline_run context: what its examples
    artifact records (TFX's fingerprint of the input files), and store_mark."""
    nodes = mlmd.run_executions(store, context)
    mark = store_mark(store, context)
    examples = (mlmd.first_output(store, nodes[node_ids.EXAMPLE_GEN], "examples")
                if node_ids.EXAMPLE_GEN in nodes else None)
    if examples is None:
        return None, None, mark
    span = examples.properties.get("span")
    fingerprint = mlmd.property_value(examples.custom_properties, "input_fingerprint")
    return (int(span.int_value) if span is not None else None,
            str(fingerprint) if fingerprint else None, mark)


def record_run(metadata_path: str, record: RunRecord) -> RunEntry:
    """Appends the line of a run just read (the CLI's run, failed or not) to the run index."""
    store = mlmd.open_store(metadata_path)
    context = mlmd.find_run(store, record.pipeline, record.run.run_id)
    entry = run_entry(record, *(run_facts(store, context) if context else (None,) * 3))
    index_contract.append(index_contract.index_path(metadata_path), [entry])
    return entry


def sync(metadata_path: str, pipeline_name: str,
         work_dir: Optional[str] = None) -> Tuple[RunEntry, ...]:
    """Every run of pipeline_name in the store, oldest first, from the run index; the runs it
    lacks (no index, a run it never saw, a torn line) or whose executions changed since their
    line are read from ML Metadata and their lines appended. A run still in flight (another
    process holds the run lock) is read but not written: its line would soon be stale."""
    path = index_contract.index_path(metadata_path)
    found = index_contract.read_index(path, pipeline_name)
    known = {e.run_id: e for e in found or ()}
    store = mlmd.open_store(metadata_path)
    entries: List[RunEntry] = []
    new: List[RunEntry] = []
    in_flight = None
    for context in mlmd.pipeline_runs(store, pipeline_name):
        entry = known.get(context.name)
        if (entry is None or entry.store_mark is None
                or (store_mark(store, context) or 0) > entry.store_mark):
            from inception_retrain.run_reading import reader

            entry = run_entry(reader.read_run(store, pipeline_name, context, work_dir),
                              *run_facts(store, context))
            if in_flight is None:
                in_flight = bool(work_dir and run_lock.held_elsewhere(work_dir))
            if not (in_flight and entry.verdict == "running"):
                new.append(entry)
        entries.append(entry)
    index_contract.append(path, new)
    return tuple(entries)


def read(metadata_path: str, pipeline_name: str, push_base: str,
         work_dir: Optional[str] = None) -> History:
    """Every run of pipeline_name in the store (oldest first) and every version under
    push_base."""
    return of_runs(sync(metadata_path, pipeline_name, work_dir), push_base)


def of_runs(runs, push_base: str) -> History:
    """The runs with every version under push_base, each version given its run's metrics."""
    return History(tuple(runs), version_entries(runs, push_base), served(push_base), push_base)


def served(push_base: str) -> Optional[int]:
    """The version TF Serving serves under push_base (the highest); None when none or
    unreadable."""
    from inception_retrain.serving import versions

    try:
        return versions.served_version(push_base)
    except (OSError, versions.ServingDirError):
        return None


def version_entries(runs, push_base: str) -> Tuple[VersionEntry, ...]:
    """The versions under push_base with the metrics of the run that pushed their model (a
    rollback has its original's)."""
    from inception_retrain.serving import versions

    try:
        present = versions.list_versions(push_base)
    except (OSError, versions.ServingDirError):
        present = []
    served_now = served(push_base)
    by_version = {r.pushed_version: r for r in runs
                  if r.pushed_version is not None and not r.reused}
    entries = []
    for version in present:
        record = versions.read_push_record(push_base, version)
        rollback_of = record.get("rollback_of")
        origin = version
        seen = set()
        while origin not in by_version and origin not in seen:  # a rollback of a rollback
            seen.add(origin)
            earlier = (versions.read_push_record(push_base, origin)
                       if origin in present else {}).get("rollback_of")
            if earlier is None:
                break
            origin = earlier
        run = by_version.get(origin) or by_version.get(rollback_of)
        entries.append(VersionEntry(
            version=version, published_at=record.get("published_at"),
            source=record.get("source", ""), rollback_of=rollback_of,
            run_id=run.run_id if run else None, accuracy=run.accuracy if run else None,
            interval=run.interval if run else None, served=version == served_now))
    return tuple(entries)


def previous_version(history: Optional["History"], version: Any) -> Optional[RunEntry]:
    """The run that pushed the newest version below `version` (the model this one replaces)."""
    if history is None or version is None:
        return None
    earlier = [r for r in history.runs if r.pushed_version is not None and not r.reused
               and r.pushed_version < int(version)]
    return max(earlier, key=lambda r: r.pushed_version) if earlier else None
