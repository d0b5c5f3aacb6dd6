"""One small record per task of a Kubeflow run, written by the task's entrypoint and read by the
exit task: the final status a backend hands the exit task names only the sub-DAG (kubeflow/
pipelines 2.14.0 backend/src/v2/driver/resolve.go: state, pipelineTaskName of the DAG, an empty
error), so which task failed, and why, comes from here.

Records live at <run folder>/task_records/<task>.json, where an output artifact's URI is
<run folder>/<task>/<salt>/<output> (driver provisionOutputs, metadata.GenerateOutputURI).
They are written through artifact_files (local paths, gs://, s3://). A minio:// root (KFP's own
object store) gets none: TensorFlow has no minio:// filesystem, and the launcher uploads only
declared outputs (kubeflow/README.md)."""
import json
import os
from typing import Any, Dict, List

from inception_retrain.components import artifact_files

FOLDER = "task_records"
UNWRITABLE_SCHEMES = ("minio://",)
MAX_ERROR_CHARS = 600


def run_folder(output_uri: str) -> str:
    """<run folder> of an output at <run folder>/<task>/<salt>/<output>."""
    return os.path.dirname(os.path.dirname(os.path.dirname(output_uri.rstrip("/"))))


def task_of(output_uri: str) -> str:
    """The task that owns an output at <run folder>/<task>/<salt>/<output>."""
    return os.path.basename(os.path.dirname(os.path.dirname(output_uri.rstrip("/"))))


def writable(folder: str) -> bool:
    return not folder.startswith(UNWRITABLE_SCHEMES)


def error_line(err: BaseException) -> str:
    """An exception as one line: its message with whitespace collapsed (the DataGate's names
    every failed rule on lines of their own), cut to MAX_ERROR_CHARS."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + "..."


def write(folder: str, record: Dict[str, Any]) -> str:
    """Writes one task's record (task, state COMPLETE|FAILED, error, seconds, outputs)."""
    path = f"{folder.rstrip('/')}/{FOLDER}/{record['task']}.json"
    with artifact_files.open_text(path, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
    return path


def read_all(folder: str) -> List[Dict[str, Any]]:
    """Every task record of the run, in the order the tasks finished (oldest first)."""
    if not writable(folder):
        return []
    records = [artifact_files.read_json(path) for path in
               artifact_files.glob(f"{folder.rstrip('/')}/{FOLDER}/*.json")]
    return sorted((r for r in records if r), key=lambda r: r.get("finished", 0.0))
