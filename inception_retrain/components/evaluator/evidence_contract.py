"""The files the Evaluators write beside TFMA's output for their evidence: the per-example
predictions of the candidate and the baseline on the same examples (predictions.jsonl) and
the evidence record built from them (evidence.json; keys in components/evaluator/
evidence_rules.build_record). No TensorFlow or TFX import: the report reads these alone."""
import json
import posixpath
from typing import Any, Dict, Iterable, List, Optional

from inception_retrain.components import artifact_files

EVIDENCE_FILE = "evidence.json"
PREDICTIONS_FILE = "predictions.jsonl"
# On the blessing: why the Evaluator refused it (a JSON list of sentences; "[]" when blessed).
REASONS_PROPERTY = "blessing_reasons"
# evaluation.regression_rule: the paired difference's point estimate, or its interval's bound.
REGRESSION_RULES = ("point", "bound")
# evaluation.group_aggregation: a slide's class from its tiles' mean score or majority vote.
AGGREGATIONS = ("mean", "majority")


def write_evidence(uri: str, record: Dict[str, Any]) -> None:
    with artifact_files.open_text(posixpath.join(uri, EVIDENCE_FILE), "w") as f:
        f.write(json.dumps(artifact_files.json_safe(record), indent=2, allow_nan=False))


def read_evidence(uri: str) -> Optional[Dict[str, Any]]:
    """The evidence record of an evaluation artifact, or None when it has none."""
    return artifact_files.read_json(posixpath.join(uri, EVIDENCE_FILE))


def write_predictions(uri: str, rows: Iterable[Dict[str, Any]]) -> None:
    """One JSON line per example: path, label, group, site, candidate (scores) and baseline
    (scores, or null), scores in the order of the candidate's class names."""
    with artifact_files.open_text(posixpath.join(uri, PREDICTIONS_FILE), "w") as f:
        for row in rows:
            f.write(json.dumps(artifact_files.json_safe(row), allow_nan=False) + "\n")


def read_predictions(uri: str) -> List[Dict[str, Any]]:
    """The rows write_predictions wrote ([] when there is no such file)."""
    text = artifact_files.read_text(posixpath.join(uri, PREDICTIONS_FILE))
    return [json.loads(line) for line in (text or "").splitlines() if line.strip()]
