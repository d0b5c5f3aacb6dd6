"""What the DataGate writes for its readers (the Trainer, the run report): the data facts
(class counts and weights, warnings) and the Markdown data report. No TensorFlow or TFX."""
import os
from typing import Any, Dict, Optional

from inception_retrain.components import artifact_files

DATA_FACTS_FILE = "data_facts.json"   # the only file: TFX's Trainer reads its directory's one file
REPORT_FILE = "data_report.md"
SPLIT_FILE = "split.json"   # beside the report: the split, leakage, verdict (also when it failed)


def report_path(data_report_uri: str) -> str:
    return os.path.join(data_report_uri, REPORT_FILE)


def facts_path(data_facts_uri: str) -> str:
    return os.path.join(data_facts_uri, DATA_FACTS_FILE)


def read_data_facts(data_facts_uri: str) -> Optional[Dict[str, Any]]:
    """The data facts, or None when the gate wrote none (it stopped the run)."""
    return artifact_files.read_json(facts_path(data_facts_uri))


def read_report(data_report_uri: str) -> Optional[str]:
    """The data report's Markdown text, or None when it is missing."""
    return artifact_files.read_text(report_path(data_report_uri))


def split_path(data_report_uri: str) -> str:
    return os.path.join(data_report_uri, SPLIT_FILE)


def read_split(data_report_uri: str) -> Optional[Dict[str, Any]]:
    """{"split", "leakage", "failures", "warnings"} the gate wrote beside its report, or None
    (a run before issue 14, or data without ImageExampleGen's index)."""
    return artifact_files.read_json(split_path(data_report_uri))
