"""The history of a work dir: every run and every pushed version recorded in its metadata store
and push destination, read back once (one RunRecord per run, run_reading.reader); rendered by
run_rendering.history_view for `inception-retrain history`, `rollback` and the report.

Per run: date, data root, span and examples per split, base weights, eval accuracy with its
95% Wilson interval, blessed or not and why, the version it pushed. Per version: when it was
published, from which run (or a rollback of which version), the same metrics, whether TF
Serving serves it now.
"""
import dataclasses
from typing import Any, Dict, Optional, Tuple

from inception_retrain.components import artifact_files, node_ids
from inception_retrain.components.evaluator import evidence
from inception_retrain.pipeline import mlmd
from inception_retrain.run_reading.record import RunRecord

ACCURACY = "sparse_categorical_accuracy"


@dataclasses.dataclass(frozen=True)
class RunEntry:
    run_id: str
    started: Optional[str]
    data_root: Optional[str]
    span: Optional[int]
    examples: Dict[str, int]                  # {split: examples}
    base_weights: Optional[str]
    accuracy: Optional[float]
    eval_examples: Optional[int]
    interval: Optional[Tuple[float, float]]   # 95% Wilson interval of the accuracy
    blessed: Optional[bool]                   # None: the Evaluator did not run
    why: str                                  # why not blessed, or how the run ended
    pushed_version: Optional[int]             # the version this run's Pusher published
    reused: bool                              # the Pusher's result came from cache
    training_config: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def outcome(self) -> str:
        if self.blessed is None:
            return self.why or "stopped before evaluation"
        if not self.blessed:
            return "not blessed: " + (self.why or "a threshold failed")
        if self.pushed_version is not None:
            return (f"reused version {self.pushed_version} (cache)" if self.reused
                    else f"pushed version {self.pushed_version}")
        return "blessed, nothing pushed" + (f" ({self.why})" if self.why else "")

    def to_dict(self) -> Dict[str, Any]:
        return dict(dataclasses.asdict(self), outcome=self.outcome,
                    interval=list(self.interval) if self.interval else None)


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


def run_entry(record: RunRecord, span: Optional[int] = None) -> RunEntry:
    """One run's line of the history, from its record."""
    evaluation, data, push = record.evaluation, record.data, record.push
    accuracy = artifact_files.json_safe(evaluation.metrics.get(ACCURACY)) if evaluation else None
    count = evaluation.metrics.get("example_count") if evaluation else None
    interval = (wilson_interval(accuracy * count, count)
                if accuracy is not None and count else None)
    if record.failed_components:
        why = f"failed at {', '.join(record.failed_components)}" + (
            f": {record.failure}" if record.failure else "")
    elif record.interrupted_components:
        why = f"interrupted at {', '.join(record.interrupted_components)}"
    elif evaluation is not None and not evaluation.blessed:
        why = evaluation.failures[0] if evaluation.failures else "a threshold failed"
    elif evaluation is None:
        why = "stopped before evaluation" + (
            f" (data gate: {data.warnings[0]})" if data and data.warnings else "")
    else:
        why = "" if record.published_version else "the Pusher did not publish"
    examples = ({split: data.split_total(split) for split in data.splits}
                if data and data.class_counts else {})
    return RunEntry(
        run_id=record.run.run_id or "?", started=record.run.started,
        data_root=record.run.data_root, span=span, examples=examples,
        base_weights=record.training.base_weights if record.training else None,
        accuracy=accuracy, eval_examples=int(count) if count else None, interval=interval,
        blessed=evaluation.blessed if evaluation is not None else None, why=why,
        pushed_version=record.push.version if record.published_version else None,
        reused=bool(push and record.published_version and not push.by_this_run),
        training_config=dict(record.training.config) if record.training else {})


def _span(store, nodes) -> Optional[int]:
    if node_ids.EXAMPLE_GEN not in nodes:
        return None
    examples = mlmd.first_output(store, nodes[node_ids.EXAMPLE_GEN], "examples")
    value = examples.properties.get("span") if examples is not None else None
    return int(value.int_value) if value is not None else None


def read(metadata_path: str, pipeline_name: str, push_base: str,
         work_dir: Optional[str] = None) -> History:
    """Every run of pipeline_name in the store (oldest first) and every version under
    push_base."""
    from inception_retrain.run_reading import reader

    store = mlmd.open_store(metadata_path)
    runs = []
    for context in mlmd.pipeline_runs(store, pipeline_name):
        record = reader.read_run(store, pipeline_name, context, work_dir)
        runs.append(run_entry(record, _span(store, mlmd.run_executions(store, context))))
    return History(tuple(runs), version_entries(runs, push_base), _served(push_base),
                   push_base)


def _served(push_base: str) -> Optional[int]:
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
    served = _served(push_base)
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
            interval=run.interval if run else None, served=version == served))
    return tuple(entries)


def previous_version(history: Optional["History"], version: Any) -> Optional[RunEntry]:
    """The run that pushed the newest version below `version` (the model this one replaces)."""
    if history is None or version is None:
        return None
    earlier = [r for r in history.runs if r.pushed_version is not None and not r.reused
               and r.pushed_version < int(version)]
    return max(earlier, key=lambda r: r.pushed_version) if earlier else None
