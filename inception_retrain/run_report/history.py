"""The history of a work dir: every run and every pushed version recorded in its metadata store
and push destination, read back once (one RunRecord per run, run_report.reader) and rendered by
`inception-retrain history`, `rollback` (the versions with their runs' metrics) and the
report's History section, with a plot of the eval accuracy per version (run_report.charts).

Per run: date, data root, span and examples per split, base weights, eval accuracy with its
95% Wilson interval, blessed or not and why, the version it pushed. Per version: when it was
published, from which run (or a rollback of which version), the same metrics, whether TF
Serving serves it now.
"""
import dataclasses
import html
import math
from typing import Any, Dict, List, Optional, Tuple

from inception_retrain.run_report import mlmd
from inception_retrain.run_report.card_facts import wilson_interval
from inception_retrain.run_report.record import RunRecord
from inception_retrain.components import node_ids

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


def _finite(value: Optional[float]) -> Optional[float]:
    return value if value is not None and math.isfinite(value) else None


def run_entry(record: RunRecord, span: Optional[int] = None) -> RunEntry:
    """One run's line of the history, from its record."""
    evaluation, data, push = record.evaluation, record.data, record.push
    accuracy = _finite(evaluation.metrics.get(ACCURACY)) if evaluation else None
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
    from inception_retrain.run_report import reader

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


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.4f}"


def interval_text(interval: Optional[Tuple[float, float]]) -> str:
    return "" if not interval else f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def _examples_text(examples: Dict[str, int]) -> str:
    return " ".join(f"{split} {n}" for split, n in examples.items()) or "–"


def render_text(history: History) -> str:
    """`inception-retrain history`: the runs, then the versions."""
    lines = [f"Runs ({len(history.runs)}), oldest first:"]
    for run in history.runs:
        data = (run.data_root or "?") + (f" span {run.span}" if run.span else "")
        lines.append(
            f"  {run.started or '?':<19}  run {run.run_id}\n"
            f"      data {data}: {_examples_text(run.examples)}; base weights "
            f"{run.base_weights or '–'}\n"
            f"      eval accuracy {_pct(run.accuracy)} {interval_text(run.interval)}"
            + (f" on {run.eval_examples} images" if run.eval_examples else "")
            + f"; {run.outcome}")
    lines.append("")
    lines.append(version_lines(history))
    return "\n".join(lines)


def version_lines(history: History) -> str:
    """The versions under the push destination with their metrics (also `rollback`)."""
    served = history.served_version
    lines = [f"{history.push_base}: TF Serving serves the highest version"
             f"{f' ({served})' if served is not None else ' (none present)'}"]
    for entry in reversed(history.versions):
        lines.append(f"  {entry.version:>6} {'served' if entry.served else '':<6}  "
                     f"{entry.published_at or '?':<25}  accuracy {_pct(entry.accuracy)} "
                     f"{interval_text(entry.interval):<12}  {entry.origin}")
    if not history.versions:
        lines.append("  none")
    return "\n".join(lines)


def plot_points(history: History) -> List[Tuple[int, float, float, float]]:
    """(version, accuracy, interval low, high) of every version with known metrics."""
    return [(v.version, v.accuracy, v.interval[0], v.interval[1]) for v in history.versions
            if v.accuracy is not None and v.interval]


def history_html(history: Optional[History], current_run: Optional[str] = None) -> str:
    """The report's History section: the runs, the versions and the accuracy per version."""
    from inception_retrain.run_report import charts

    if history is None:
        return ""
    e = html.escape
    out = ["<h2>History</h2>",
           f"<p>Every run of this pipeline in the work dir's metadata store, and every version "
           f"under <code>{e(history.push_base)}</code>; TF Serving serves version "
           f"<b>{e(str(history.served_version))}</b> now.</p>"]
    rows = []
    for run in history.runs:
        mark = " (this run)" if run.run_id == current_run else ""
        bad = run.blessed is False or run.blessed is None
        rows.append(
            f"<tr><td>{e(run.started or '?')}</td><td><code>{e(run.run_id)}</code>{mark}</td>"
            f"<td>{e(run.data_root or '?')}{e(f' span {run.span}' if run.span else '')}<br>"
            f"{e(_examples_text(run.examples))}</td><td>{e(run.base_weights or '–')}</td>"
            f'<td class="num">{_pct(run.accuracy)}</td>'
            f'<td class="num">{e(interval_text(run.interval))}</td>'
            f'<td class="{"fail" if bad else "pass"}">{e(run.outcome)}</td></tr>')
    out.append("<h3>Runs</h3><table><thead><tr><th>started</th><th>run</th><th>data</th>"
               "<th>base weights</th><th>eval accuracy</th><th>95% interval</th>"
               "<th>outcome</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    rows = [f"<tr><td class=\"num\">{v.version}{' (served)' if v.served else ''}</td>"
            f"<td>{e(v.published_at or '?')}</td><td>{e(v.origin)}</td>"
            f'<td class="num">{_pct(v.accuracy)}</td>'
            f'<td class="num">{e(interval_text(v.interval))}</td></tr>'
            for v in reversed(history.versions)]
    if rows:
        out.append("<h3>Pushed versions</h3><table><thead><tr><th>version</th>"
                   "<th>published</th><th>from</th><th>eval accuracy</th>"
                   "<th>95% interval</th></tr></thead><tbody>" + "".join(rows)
                   + "</tbody></table>")
    points = plot_points(history)
    if points:
        out.append(charts.version_accuracy_svg(points, history.served_version))
    return "".join(out)
