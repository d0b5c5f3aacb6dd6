"""The training report the Trainer writes into its model_run artifact, and how to read it back
(run report, model card). No TensorFlow or TFX import."""
import json
import os
from typing import Any, Dict, Optional

from inception_retrain.components import artifact_files

REPORT_FILE = "training_report.json"
BASE_WEIGHTS = "base_weights"                 # a description for people
BASE_WEIGHTS_RANDOM = "base_weights_random"   # bool: the base network started from random weights
CODE_VERSION = "code_version"                 # {"package", "commit"} of the code that trained


def report_path(model_run_uri: str) -> str:
    return os.path.join(model_run_uri, REPORT_FILE)


def write_training_report(report: Dict[str, Any], model_run_uri: str) -> None:
    with artifact_files.open_text(report_path(model_run_uri), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)


def read_training_report(model_run_uri: str) -> Optional[Dict[str, Any]]:
    """The training report, or None when the Trainer left none (it failed)."""
    return artifact_files.read_json(report_path(model_run_uri))


def base_weights_random(report: Dict[str, Any]) -> bool:
    """Whether training started from random weights. Reports written before the flag existed
    say so only in the description ("random initialisation ...", "RANDOM INITIALISATION: ...")."""
    flag = report.get(BASE_WEIGHTS_RANDOM)
    if isinstance(flag, bool):
        return flag
    return str(report.get(BASE_WEIGHTS, "")).lower().startswith("random")


def code_version(report: Dict[str, Any]) -> Dict[str, str]:
    """The package version and commit that trained the model; {} in reports written before the
    Trainer recorded them."""
    recorded = report.get(CODE_VERSION)
    return {k: str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}
