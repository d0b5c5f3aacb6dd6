"""What ImageExampleGen leaves for its readers (DataGate, the run report, console progress):
the quarantine list beside the splits and the custom properties of the Examples artifact.
No TensorFlow or TFX import: readers load this module without the pipeline's stack."""
import json
import posixpath
from typing import Any, Dict, Iterable, List

from inception_retrain.components import artifact_files

QUARANTINE_DIR = "quarantine"                   # <examples uri>/quarantine/*.quarantine.jsonl
QUARANTINE_FILE = "quarantine.jsonl"
QUARANTINED_PROPERTY = "quarantined_count"      # bad files (counted against the bad fraction)
SKIPPED_PROPERTY = "skipped_count"              # hidden files skipped by choice
PREVIOUS_SPAN_PROPERTY = "previous_span"
PREVIOUS_SPAN_COUNTS_PROPERTY = "previous_span_class_counts"   # JSON {class: files}


def write_quarantine(records: Iterable[Any], path: str) -> None:
    """Quarantine records (ingest.Quarantined: relative_path, as_dict()) as JSON lines sorted
    by path (read back by read_quarantine)."""
    with artifact_files.open_text(path, "w") as f:
        for record in sorted(records, key=lambda r: r.relative_path):
            f.write(json.dumps(record.as_dict()) + "\n")


def read_quarantine(examples_uri: str) -> List[Dict[str, str]]:
    """The quarantine records written beside an Examples artifact's splits, sorted by path."""
    records = []
    for path in artifact_files.glob(posixpath.join(examples_uri, QUARANTINE_DIR, "*")):
        with artifact_files.open_text(path) as f:
            records.extend(json.loads(line) for line in f if line.strip())
    return sorted(records, key=lambda r: r["relative_path"])
