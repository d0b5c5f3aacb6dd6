"""The gate record the Evaluators write beside TFMA's output (<evaluation>/gate.json: baseline,
class names; for the test split whether it was skipped), and how to read it back. No TensorFlow
or TFX import."""
import json
import os
from typing import Any, Dict, Optional

from inception_retrain.components import artifact_files

GATE_RECORD = "gate.json"
BLESSED_PROPERTY = "blessed"             # TFX's, on the ModelBlessing
SKIPPED_PROPERTY = "skipped"             # on the test split's ModelEvaluation: why it did not run
# On the blessing, with the served-model baseline: the version TF Serving served when the gate
# ran ("none" when nothing was), so the Pusher can push only if that is still what is served.
SERVED_AT_GATE_PROPERTY = "served_version_at_gate"
NOTHING_SERVED = "none"


def served_at_gate(text: str) -> Optional[int]:
    """SERVED_AT_GATE_PROPERTY's value back as a version number (None: nothing was served)."""
    return None if text == NOTHING_SERVED else int(text)


def write_gate_record(evaluation_uri: str, record: Dict[str, Any],
                      indent: Optional[int] = None) -> None:
    with artifact_files.open_text(os.path.join(evaluation_uri, GATE_RECORD), "w") as f:
        f.write(json.dumps(record, indent=indent))


def read_gate_record(evaluation_uri: str) -> Optional[Dict[str, Any]]:
    """The gate record, or None when the Evaluator wrote none."""
    return artifact_files.read_json(os.path.join(evaluation_uri, GATE_RECORD))
