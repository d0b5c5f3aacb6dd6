"""Console progress for a local run, and a full log file for when something goes wrong.

The console shows each component's start and end with its duration, the ingest counts, the
Trainer's epochs with their ETA and, inside a long epoch, a line every 15 s (steps, images/s,
ETAs: components.trainer.train.EpochProgress), and every warning or error from this project's
code. TFX, Beam and TensorFlow INFO/WARNING lines go to the log file
only (`verbose=True` shows everything). LocalDagRunner runs components one after another in
this process and announces each through absl logging ("Component X is running." / "... is
finished."); a logging handler turns those records into progress lines, so nothing polls the
metadata store while a component writes to it. Counts are read from ML Metadata right after
the component that produced them has finished, in the pipeline's own thread.
"""
import datetime
import logging
import os
import sys
import time
from typing import IO, Dict, List, Optional, Sequence

import inception_retrain
from inception_retrain.components import node_ids

# The messages of tfx.orchestration.local.local_dag_runner and portable.launcher (TFX 1.16),
# matched on the unformatted template; tests/unit/cli/test_cli.py checks they still exist in TFX.
RUNNING_TEMPLATE = "Component %s is running."
FINISHED_TEMPLATE = "Component %s is finished."
CACHED_TEMPLATE = "A cached execution %d is used."

_PROJECT_DIR = os.path.dirname(os.path.abspath(inception_retrain.__file__)) + os.sep
_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(filename)s:%(lineno)d] %(message)s"


def is_project_record(record: logging.LogRecord) -> bool:
    """True for log records emitted by this repository's own code."""
    return os.path.abspath(record.pathname).startswith(_PROJECT_DIR)


def default_log_path(work_dir: str, command: str = "run") -> str:
    """<work_dir>/logs/<command>-<local time to the microsecond>-<pid>.log: one file per
    command invocation, also for two started in the same second."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return os.path.join(work_dir, "logs", f"{command}-{stamp}-{os.getpid()}.log")


class _ConsoleHandler(logging.Handler):
    """Hands every record to RunProgress, which decides what the console shows."""

    def __init__(self, progress: "RunProgress"):
        super().__init__(logging.INFO)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._progress.on_record(record)
        except (OSError, ValueError) as err:  # a closed stream must not stop the run
            sys.__stderr__.write(f"[progress] cannot print: {err}\n")


class RunProgress:
    """Context manager around a local run: installs the console and file logging, prints
    progress lines, restores the previous logging setup on exit.

    metadata_path and pipeline_name let it print the ingest counts after ImageExampleGen and
    StatisticsGen; without them only names and durations are shown.
    """

    def __init__(self, log_path: str, verbose: bool = False, stream: Optional[IO] = None,
                 metadata_path: str = "", pipeline_name: str = ""):
        self.log_path = log_path
        self.verbose = verbose
        self._stream = stream
        self._metadata_path, self._pipeline_name = metadata_path, pipeline_name
        self._total = 0
        self._current: Optional[str] = None
        self._cached = False
        self._started = 0.0
        self._count = 0
        self.finished: Dict[str, str] = {}    # component id -> "done" | "cached"
        self._saved = None
        self._file: Optional[logging.Handler] = None

    # -- setup -------------------------------------------------------------------------------
    def __enter__(self) -> "RunProgress":
        os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)
        from absl import logging as absl_logging

        root = logging.getLogger()
        self._saved = (root.handlers[:], root.level, absl_logging.get_verbosity())
        file_handler = logging.FileHandler(self.log_path, encoding="utf-8")
        file_handler.setLevel(logging.INFO)
        file_handler.setFormatter(logging.Formatter(_FILE_FORMAT))
        self._file = file_handler
        root.handlers = [file_handler, _ConsoleHandler(self)]
        root.setLevel(logging.INFO)
        # The component start/finish records are absl INFO. Set through absl's flag, not the
        # logger: TensorFlow resets the absl logger to the flag's value (WARNING by default)
        # each time it saves a SavedModel (autotrackable.py), which would hide them mid-run.
        absl_logging.set_verbosity(absl_logging.INFO)
        logging.captureWarnings(True)
        self._print(f"full log: {self.log_path}")
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc is not None and self._current is not None:  # e.g. Ctrl-C inside a component
            self.failed(exc)
        from absl import logging as absl_logging

        root = logging.getLogger()
        self._file.close()
        self._file = None
        handlers, level, absl_level = self._saved
        root.handlers = handlers
        root.setLevel(level)
        absl_logging.set_verbosity(absl_level)
        logging.captureWarnings(False)

    @property
    def components_started(self) -> int:
        """How many components this run has started so far."""
        return self._count

    def begin(self, component_ids: Sequence[str]) -> None:
        """The pipeline's components (for the [n/total] counter)."""
        self._total = len(component_ids)
        self._print(f"pipeline of {self._total} components: {', '.join(component_ids)}")

    def failed(self, error: BaseException) -> None:
        """Says which component failed and where the traceback is; logs the traceback."""
        if self._file is not None:  # the traceback goes to the log file only
            self._file.handle(logging.getLogger(__name__).makeRecord(
                __name__, logging.ERROR, __file__, 0, "run failed", (),
                (type(error), error, error.__traceback__)))
        where = (f"{self._label(self._current)} FAILED after "
                 f"{time.time() - self._started:.1f} s" if self._current else "FAILED")
        self._print(f"{where}: {type(error).__name__}: {error}")
        self._print(f"traceback and every component's log lines: {self.log_path}")
        self._current = None

    # -- records -----------------------------------------------------------------------------
    def on_record(self, record: logging.LogRecord) -> None:
        """Turns one log record into a console line, or nothing."""
        if record.msg == RUNNING_TEMPLATE and record.args:
            self._current, self._cached, self._started = str(record.args[0]), False, time.time()
            self._count += 1
            self._print(f"{self._label(self._current)} started")
        elif record.msg == FINISHED_TEMPLATE and record.args:
            node = str(record.args[0])
            seconds = time.time() - self._started
            state = "cached" if self._cached else "done"
            self.finished[node] = state
            self._current = None
            self._print(f"{self._label(node)} {'reused from cache' if self._cached else 'done'}"
                        f" in {seconds:.1f} s")
            for line in self._counts_after(node):
                self._print(f"    {line}")
        elif record.msg == CACHED_TEMPLATE:
            self._cached = True
        elif (self.verbose or record.levelno >= logging.ERROR
              or is_project_record(record)):
            self._print(self._format(record))

    def _label(self, node: str) -> str:
        total = str(self._total or "?")
        return f"[{self._count:>{len(total)}}/{total}] {node}"

    def _format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and self.verbose:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        prefix = "" if record.levelno == logging.INFO else f"{record.levelname}: "
        source = f"{record.name}: " if self.verbose and record.name != "root" else ""
        return f"{prefix}{source}{message}"

    def _print(self, line: str) -> None:
        self.echo(f"{time.strftime('%H:%M:%S')} {line}")

    def echo(self, text: str) -> None:
        """Prints text on the console and writes it into the log file too (progress lines,
        ingest counts, the run summary): the log is the complete record of the run."""
        stream = self._stream or sys.stdout
        stream.write(f"{text}\n")
        stream.flush()
        if self._file is not None:
            self._file.acquire()
            try:
                self._file.stream.write(f"{text}\n")
                self._file.flush()
            finally:
                self._file.release()

    # -- counts ------------------------------------------------------------------------------
    def _counts_after(self, node: str) -> List[str]:
        if not self._metadata_path or node not in (node_ids.EXAMPLE_GEN, node_ids.STATISTICS_GEN):
            return []
        from ml_metadata import errors

        from inception_retrain.components.data_gate.checks import DataValidationError

        try:
            return ingest_counts(self._metadata_path, self._pipeline_name, node)
        except (OSError, LookupError, ValueError, errors.StatusError,
                DataValidationError) as err:
            return [f"(counts unavailable: {err})"]


def ingest_counts(metadata_path: str, pipeline_name: str, node: str) -> List[str]:
    """Lines describing what ImageExampleGen read or StatisticsGen counted in the newest run."""
    from inception_retrain.pipeline import mlmd
    from inception_retrain.run_reading import reader
    from inception_retrain.run_reading.artifacts import RunArtifacts

    store = mlmd.open_store(metadata_path)
    execution = mlmd.latest_run_executions(store, pipeline_name).get(node)
    if execution is None:
        return []
    data = reader.read_data(RunArtifacts.from_store(store, {node: execution}))
    if node == node_ids.EXAMPLE_GEN:
        return [f"quarantined files: {data.quarantined_count or 0}"
                f", skipped by choice: {data.skipped_count or 0}"]
    counts = data.class_counts or {}
    lines = ["examples: " + ", ".join(f"{split} {data.split_total(split)}" for split in counts)]
    train = counts.get("train") or next(iter(counts.values()), {})
    if train:
        lines.append(f"classes ({len(train)}): " + ", ".join(
            f"{name} {count}" for name, count in sorted(train.items())) + " in train")
    return lines
