"""One record of a pipeline run, read once from ML Metadata and the run's artifacts
(run_reading.reader) and only rendered by the console summary, the HTML report, report.json and
the model card.

Every section is optional: a component that failed or never ran, an output artifact it did not
write, a file missing from an artifact leave that section (or field) None, never a KeyError.
to_dict() is the JSON-ready form report.json carries under "summary".
"""
import dataclasses
from typing import Any, Dict, List, Optional, Tuple

# The trainer's phases, in order.
PHASES = ("phase1", "phase2")


@dataclasses.dataclass(frozen=True)
class ComponentRun:
    component: str
    state: str          # COMPLETE, CACHED, FAILED, RUNNING, ...
    seconds: float
    error: Optional[str] = None     # a FAILED execution's error (ML Metadata)
    interrupted: bool = False       # RUNNING, but no process holds the run lock

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ActiveExecution:
    """An execution of the pipeline still NEW or RUNNING in the store (this run's or an
    earlier one's): in flight when another process holds the work dir's run lock
    (holder), else interrupted (its process died)."""

    run_id: str
    component: str
    state: str
    interrupted: bool
    holder: Optional[str] = None

    @property
    def sentence(self) -> str:
        if self.interrupted:
            return (f"{self.component}: {self.state} in run {self.run_id}, but no process "
                    "holds the run lock: interrupted")
        if self.holder:
            return f"{self.component}: {self.state} in run {self.run_id}, in flight ({self.holder})"
        return f"{self.component}: {self.state} in run {self.run_id}"

    def to_dict(self) -> Dict[str, Any]:
        return dict(dataclasses.asdict(self), text=self.sentence)


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """Run id (the pipeline_run context's name), data root, start time, wall-clock seconds."""

    run_id: Optional[str] = None
    data_root: Optional[str] = None
    started: Optional[str] = None
    wall_seconds: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class DataSection:
    """What ImageExampleGen, StatisticsGen, ExampleValidator and the DataGate left; a field is
    None when its component did not run or left nothing to read."""

    quarantine: Optional[List[Dict[str, str]]] = None
    quarantined_count: Optional[int] = None     # bad files (ImageExampleGen's property)
    skipped_count: Optional[int] = None         # hidden files skipped by choice
    class_counts: Optional[Dict[str, Dict[str, int]]] = None   # {split: {class: examples}}
    anomalies: Optional[List[str]] = None
    report_path: Optional[str] = None           # the DataGate's Markdown data report
    report_text: Optional[str] = None
    warnings: Optional[List[str]] = None        # the DataGate's, when it let the run go on
    split: Optional[Dict[str, Any]] = None      # the DataGate's split.json: groups, leakage

    @property
    def splits(self) -> List[str]:
        return list(self.class_counts or {})

    @property
    def classes(self) -> List[str]:
        """Every class of every split, sorted."""
        return sorted(set().union(*(self.class_counts or {}).values()))

    def count(self, split: str, name: str) -> int:
        return (self.class_counts or {}).get(split, {}).get(name, 0)

    def split_total(self, split: str) -> int:
        return sum((self.class_counts or {}).get(split, {}).values())

    def class_total(self, name: str) -> int:
        return sum(self.count(split, name) for split in self.splits)

    def to_dict(self) -> Dict[str, Any]:
        out = {"quarantine": self.quarantine, "class_counts": self.class_counts,
               "anomalies": self.anomalies, "report": self.report_path,
               "warnings": self.warnings}
        return {k: v for k, v in out.items() if v is not None}


@dataclasses.dataclass(frozen=True)
class Phase:
    """One training phase, from the trainer's report."""

    name: str
    skipped: Optional[str] = None               # why the phase did not run
    epochs_run: Any = None
    seconds: Any = None
    history: Dict[str, List[Optional[float]]] = dataclasses.field(default_factory=dict)
    kept_phase1_weights: str = ""               # set on phase 2 when it did not beat phase 1

    @property
    def best_val_loss(self) -> Optional[float]:
        values = [v for v in self.history.get("val_loss", []) if v is not None]
        return min(values) if values else None

    @property
    def last(self) -> Dict[str, Any]:
        """The last epoch's value of each metric."""
        return {k: v[-1] for k, v in self.history.items() if v}


@dataclasses.dataclass(frozen=True)
class TrainingSection:
    report: Dict[str, Any]                      # the trainer's report as written
    base_weights: str
    base_weights_random: bool
    class_names: List[str]
    strategy: Optional[str]
    config: Dict[str, Any]
    phases: Tuple[Phase, ...]                   # those the report has, in PHASES order
    model_run_uri: Optional[str] = None         # the Trainer's model_run (TensorBoard logs/)
    code_version: Dict[str, str] = dataclasses.field(default_factory=dict)  # what trained it

    def to_dict(self) -> Dict[str, Any]:
        return self.report


@dataclasses.dataclass(frozen=True)
class Headline:
    """The answer a report leads with (run_reading.headline): the candidate's eval accuracy with
    its 95% interval and the number of images, the served model's on the same images, their
    paired difference, and the rule that decided the blessing."""

    accuracy: Optional[float]
    examples: Optional[int]
    interval: Optional[Tuple[float, float]]
    interval_method: str = ""
    baseline_accuracy: Optional[float] = None
    baseline_interval: Optional[Tuple[float, float]] = None
    difference: Optional[float] = None
    difference_interval: Optional[Tuple[float, float]] = None
    difference_verdict: str = ""                # the paired test's: better, worse, ...
    decisive_rule: str = ""                     # the failed rule, or what a blessing met

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EvaluationSection:
    """The Evaluator's verdict on the eval split."""

    metrics: Dict[str, float]                   # overall slice; baseline values are suffixed
    per_class: Dict[str, Dict[str, float]]
    baseline: Optional[Dict[str, Any]]
    blessed: bool
    failures: List[str]                         # one sentence per failed threshold
    validation_ok: Optional[bool]
    class_names: List[str] = dataclasses.field(default_factory=list)
    checks: List[Dict[str, Any]] = dataclasses.field(default_factory=list)  # every threshold
    confusion_matrix: Optional[Dict[str, Any]] = None
    baseline_confusion_matrix: Optional[Dict[str, Any]] = None  # the baseline's, same eval split
    top_k: Optional[int] = None                 # the k of the top-k accuracy (EvalConfig)
    model_uri: Optional[str] = None             # the Evaluator's inputs, for the report's
    examples_uri: Optional[str] = None          # misclassified examples
    uri: Optional[str] = None                   # the evaluation artifact (per-site slices)
    evidence: Optional[Dict[str, Any]] = None   # components/evaluator/evidence_contract.py
    sites: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)  # TFMA's slices
    min_site_accuracy: float = 0.0              # the worst site's floor the Evaluator applied
    headline: Optional[Headline] = None         # the answer first (run_reading.headline)

    def to_dict(self) -> Dict[str, Any]:
        return {"metrics": self.metrics, "per_class": self.per_class, "baseline": self.baseline,
                "blessed": self.blessed, "failures": self.failures,
                "validation_ok": self.validation_ok, "evidence": self.evidence,
                "headline": self.headline.to_dict() if self.headline else None}


@dataclasses.dataclass(frozen=True)
class TestSplitSection:
    """The blessed candidate on the held-out split(s); skipped says why not, else ""."""

    skipped: str
    splits: Optional[List[str]] = None
    metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
    per_class: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
    evidence: Optional[Dict[str, Any]] = None   # components/evaluator/evidence_contract.py

    def to_dict(self) -> Dict[str, Any]:
        if self.skipped:
            return {"skipped": self.skipped}
        return {"skipped": "", "splits": self.splits, "metrics": self.metrics,
                "per_class": self.per_class, "evidence": self.evidence}


@dataclasses.dataclass(frozen=True)
class PushSection:
    pushed: bool
    destination: Optional[str] = None
    version: Optional[int] = None
    pruned_versions: str = ""
    by_this_run: bool = False   # the Pusher executed in this run (not reused from cache)
    already_served: bool = False  # the served version already held the model: nothing copied
    pushed_at: Optional[str] = None  # when the version was published (its push record)

    def to_dict(self) -> Dict[str, Any]:
        out = {"pushed": self.pushed, "destination": self.destination,
               "version": self.version, "pruned_versions": self.pruned_versions,
               "already_served": self.already_served}
        return dict(out, pushed_at=self.pushed_at) if self.pushed_at else out


@dataclasses.dataclass(frozen=True)
class RunRecord:
    pipeline: str
    run: RunInfo = RunInfo()
    components: Tuple[ComponentRun, ...] = ()
    data: Optional[DataSection] = None
    training: Optional[TrainingSection] = None
    evaluation: Optional[EvaluationSection] = None
    test_split: Optional[TestSplitSection] = None
    push: Optional[PushSection] = None
    # NEW/RUNNING executions of the pipeline in the store, this run's and earlier runs'
    active: Tuple[ActiveExecution, ...] = ()

    @property
    def failed_components(self) -> List[str]:
        return [c.component for c in self.components if c.state == "FAILED"]

    @property
    def interrupted_components(self) -> List[str]:
        return [c.component for c in self.components if c.interrupted]

    @property
    def failure(self) -> str:
        """"Component: error" for each failed component that recorded its error."""
        return "; ".join(f"{c.component}: {c.error}" for c in self.components
                         if c.state == "FAILED" and c.error)

    @property
    def published_version(self) -> bool:
        """The run's Pusher (this run's or one reused from cache) published a version."""
        return bool(self.push and self.push.pushed and self.push.destination)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON-ready form (report.json's "summary")."""
        def optional(section):
            return section.to_dict() if section is not None else None

        return {"pipeline": self.pipeline,
                "components": [c.to_dict() for c in self.components],
                "data": self.data.to_dict() if self.data is not None else {},
                "training": optional(self.training), "evaluation": optional(self.evaluation),
                "test_split": optional(self.test_split), "push": optional(self.push),
                "active_executions": [a.to_dict() for a in self.active]}


@dataclasses.dataclass(frozen=True)
class RunReport:
    """A record as the report renders it: plus what run_reading.report_inputs read for it (the
    misclassified eval images, samples, history, the failure the command saw) and, filled in by
    run_rendering.report as it writes, how the run ended and where the files went."""

    record: RunRecord
    generated_at: str
    metadata_path: str
    pipeline_root: str
    misclassified: Optional[Dict[str, Any]] = None
    failure: str = ""
    log_path: str = ""
    report_html: Optional[str] = None
    status: str = ""            # good, warn, bad
    verdict: str = ""           # one sentence
    model_card: Optional[str] = None
    history: Optional[Any] = None   # run_reading.history.History: the work dir's runs, versions
    extras: Dict[str, Any] = dataclasses.field(default_factory=dict)  # report-only additions
