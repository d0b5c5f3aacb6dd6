"""The run index: one JSON line per run (RunEntry), appended beside the metadata store at the end
of every run, failed ones included, so the listings (`history`, `report --list`, `rollback`,
`compare`) answer from a small file without TensorFlow, TFMA or re-reading every run.

This module is the contract the writer (run_reading.run_index, called by the CLI's run) and the
readers share: the file's name, the line's fields, reading and appending. Append-only: a run
read again later (its record changed) gets a new line, and the last line of a run wins.
"""
import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from inception_retrain.components import artifact_files

INDEX_FILE = "run_index.jsonl"
SCHEMA = 1   # a line of another schema makes the index stale: it is rebuilt from ML Metadata


def index_path(metadata_path: str) -> str:
    """The index beside the store: <dir of metadata.sqlite>/run_index.jsonl."""
    return os.path.join(os.path.dirname(metadata_path) or ".", INDEX_FILE)


@dataclasses.dataclass(frozen=True)
class RunEntry:
    """One run as the listings show it (run_reading.history.run_entry builds it from a
    record); every field but run_id may be unknown (None or empty)."""

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
    pipeline: str = ""
    wall_seconds: Optional[float] = None
    states: Dict[str, str] = dataclasses.field(default_factory=dict)  # {component: state}
    class_counts: Dict[str, Dict[str, int]] = dataclasses.field(default_factory=dict)
    data_fingerprint: Optional[str] = None    # digest of TFX's input fingerprint of the data
    metrics: Dict[str, float] = dataclasses.field(default_factory=dict)  # eval, overall slice
    per_class: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
    baseline: Optional[Dict[str, Any]] = None  # the served model the candidate was held to
    baseline_accuracy: Optional[float] = None  # its accuracy on the same eval split
    store_mark: Optional[int] = None          # newest update of the run's executions (ms)

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

    @property
    def verdict(self) -> str:
        """One word for a column: failed, interrupted, stopped, not-blessed, pushed, reused or
        blessed."""
        bad = set(self.states.values())
        if "FAILED" in bad:
            return "failed"
        if "INTERRUPTED" in bad:
            return "interrupted"
        if bad & {"NEW", "RUNNING"}:
            return "running"
        if self.blessed is None:
            return "stopped"
        if not self.blessed:
            return "not-blessed"
        if self.pushed_version is not None:
            return "reused" if self.reused else "pushed"
        return "blessed"

    def to_dict(self) -> Dict[str, Any]:
        return dict(dataclasses.asdict(self), outcome=self.outcome, verdict=self.verdict,
                    interval=list(self.interval) if self.interval else None)

    @classmethod
    def from_dict(cls, found: Dict[str, Any]) -> "RunEntry":
        """The entry of one index line; fields it lacks take their defaults (None where there
        is none), keys it does not know are ignored."""
        values = {}
        for field in dataclasses.fields(cls):
            if field.name in found:
                values[field.name] = found[field.name]
            elif (field.default is dataclasses.MISSING
                  and field.default_factory is dataclasses.MISSING):
                values[field.name] = "" if field.name == "why" else None
        if values.get("interval"):
            values["interval"] = tuple(values["interval"])
        values["reused"] = bool(values.get("reused"))
        return cls(**values)


def read_index(path: str, pipeline_name: str) -> Optional[Tuple[RunEntry, ...]]:
    """The newest entry of each run of pipeline_name, oldest run first; None when there is no
    index file. A line that cannot be used (torn by a crash mid-write, another SCHEMA) is
    skipped: its run counts as not indexed, so sync() reads it again."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    by_run: Dict[str, RunEntry] = {}
    for line in lines:
        if not line.strip():
            continue
        try:
            found = json.loads(line)
            if found.get("schema") != SCHEMA:
                raise ValueError(f"schema {found.get('schema')!r}")
            entry = RunEntry.from_dict(found)
        except (ValueError, TypeError, AttributeError):
            continue
        if entry.pipeline == pipeline_name:
            by_run.pop(entry.run_id, None)
            by_run[entry.run_id] = entry
    return tuple(sorted(by_run.values(), key=lambda e: (e.started or "", e.run_id)))


def append(path: str, entries: List[RunEntry]) -> None:
    """Appends one line per entry (one write, flushed to disk): a reader never sees half an
    entry unless the machine stops mid-write, and then skips that line."""
    if not entries:
        return
    text = "".join(json.dumps(artifact_files.json_safe(dict(e.to_dict(), schema=SCHEMA)),
                              allow_nan=False, default=str) + "\n" for e in entries)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
