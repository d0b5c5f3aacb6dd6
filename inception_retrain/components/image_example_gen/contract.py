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
GROUPED_PROPERTY = "grouped"   # 1: split by group (slide); 0: by image (no group key)
INDEX_DIR = "index"            # <examples uri>/index/<split>.index.jsonl: one line per example
INDEX_FILE = "index.jsonl"     # (path, label, group, site, sha256; no image bytes)


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


def write_index(records: Iterable[Dict[str, str]], path: str) -> None:
    """One split's index records as JSON lines sorted by path (read back by read_index)."""
    with artifact_files.open_text(path, "w") as f:
        for record in sorted(records, key=lambda r: r["path"]):
            f.write(json.dumps(record, sort_keys=True) + "\n")


def read_index(examples_uri: str) -> Dict[str, List[Dict[str, str]]]:
    """{split: index records} written beside an Examples artifact's splits ({} before this
    index existed)."""
    index = {}
    suffix = "." + INDEX_FILE
    for path in sorted(artifact_files.glob(posixpath.join(examples_uri, INDEX_DIR, "*"))):
        name = posixpath.basename(path)
        if not name.endswith(suffix):
            continue
        with artifact_files.open_text(path) as f:
            index[name[:-len(suffix)]] = [json.loads(line) for line in f if line.strip()]
    return index


# The split: how ImageExampleGen assigned groups to splits (split_assignment), for the DataGate
# and the report; and the ledger of every group's split, kept across runs (pipeline.config's
# split_ledger: beside the model base path).
SPLIT_DIR = "split"                    # <examples uri>/split/assignment.json
ASSIGNMENT_FILE = "assignment.json"    # method, ledger, counts per split and class
SLIDES_FILE = "slides.json"            # <split dir>/<input pattern>.slides.json: per slide tiled
SPLIT_LEDGER_PARAMETER = "split_ledger"  # ImageExampleGen's parameter: the ledger's path or URI


def assignment_path(examples_uri: str) -> str:
    return posixpath.join(examples_uri, SPLIT_DIR, ASSIGNMENT_FILE)


def read_assignment(examples_uri: str) -> Dict[str, Any]:
    """The split record ImageExampleGen wrote ({} for user split folders or older runs)."""
    return artifact_files.read_json(assignment_path(examples_uri)) or {}


def write_slides(accounts: Iterable[Dict[str, Any]], path: str) -> None:
    """The slides' tiling accounts (slides.SlideAccount.as_dict()), sorted by slide."""
    with artifact_files.open_text(path, "w") as f:
        json.dump(sorted(accounts, key=lambda a: a["slide"]), f, indent=1, sort_keys=True)


def read_slides(examples_uri: str) -> List[Dict[str, Any]]:
    """Every tiled slide's account (tiles kept, background skipped, dropped, level and scale
    read), sorted by slide; [] when no slide was ingested."""
    accounts = []
    pattern = posixpath.join(examples_uri, SPLIT_DIR, "*." + SLIDES_FILE)
    for path in artifact_files.glob(pattern):
        accounts.extend(artifact_files.read_json(path) or [])
    return sorted(accounts, key=lambda a: a["slide"])


def read_ledger(path: str) -> Dict[str, Dict[str, str]]:
    """{group: {"split", "stratum", "assigned"}} of earlier ingests ({} when there is none)."""
    if not path:
        return {}
    try:
        ledger = artifact_files.read_json(path)
    except ValueError as err:
        raise ValueError(f"split ledger {path} is not valid JSON ({err}); restore it from a "
                         "backup, or delete it to assign every group afresh") from err
    return (ledger or {}).get("groups", {})
