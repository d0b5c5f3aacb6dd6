"""The Evaluators' own pass over a split, after TFMA's: every example scored by the candidate
and the baseline through the serving_examples signature (what TFMA and TF Serving call), the
predictions and the evidence record written beside TFMA's output, and the blessing rewritten
when the evidence rules refuse what TFMA blessed."""
import json
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.components.evaluator import constants as evaluator_constants
from tfx.types import artifact_utils
from tfx.utils import io_utils

from inception_retrain.components import features
from inception_retrain.components.evaluator import evidence_contract, evidence_rules
from inception_retrain.components.image_example_gen.contract import GROUPED_PROPERTY

BATCH_SIZE = 32


def read_split(examples: List[types.Artifact], splits: Sequence[str]) -> List[bytes]:
    """The serialized tf.Examples of the splits (gzipped TFRecords), in file order."""
    records = []
    for split in splits:
        for uri in artifact_utils.get_split_uris(examples, split):
            for path in sorted(tf.io.gfile.glob(os.path.join(uri, "*"))):
                records += [r.numpy() for r in
                            tf.data.TFRecordDataset(path, compression_type="GZIP")]
    return records


def _text(example: tf.train.Example, key: str) -> str:
    values = example.features.feature[key].bytes_list.value
    return values[0].decode() if values else ""


def score(serving_dir: str, records: Sequence[bytes]) -> np.ndarray:
    """[examples, classes] scores from the model's serving_examples signature, 32 at a time."""
    model = tf.saved_model.load(serving_dir)
    signature = model.signatures[features.SERVING_EXAMPLES_SIGNATURE]
    batches = [signature(examples=tf.constant(list(records[i:i + BATCH_SIZE])))["scores"]
               .numpy() for i in range(0, len(records), BATCH_SIZE)]
    return np.concatenate(batches) if batches else np.zeros((0, 0), np.float32)


def prediction_rows(records: Sequence[bytes], candidate_dir: str,
                    baseline_dir: Optional[str]) -> List[Dict[str, Any]]:
    """One row per example: path, label, group, site, and both models' scores."""
    candidate = score(candidate_dir, records)
    baseline = score(baseline_dir, records) if baseline_dir else None
    rows = []
    for i, record in enumerate(records):
        example = tf.train.Example.FromString(record)
        rows.append({"path": _text(example, features.PATH_KEY),
                     "label": _text(example, features.LABEL_KEY),
                     "group": _text(example, features.GROUP_KEY),
                     "site": _text(example, features.SITE_KEY),
                     "candidate": candidate[i].tolist(),
                     "baseline": baseline[i].tolist() if baseline is not None else None})
    return rows


def is_grouped(examples: types.Artifact, rows: Sequence[Dict[str, Any]]) -> bool:
    """Whether the split's images come in groups (slides): ImageExampleGen's grouped property;
    for Examples without it (imported), whether any group differs from its image's path."""
    if examples.has_custom_property(GROUPED_PROPERTY):
        return bool(examples.get_int_custom_property(GROUPED_PROPERTY))
    return any(row["group"] and row["group"] != row["path"] for row in rows)


def evaluate_evidence(examples: List[types.Artifact], splits: Sequence[str],
                      class_names: Sequence[str], candidate_dir: str,
                      baseline_dir: Optional[str], baseline_name: str,
                      settings: evidence_rules.EvidenceSettings, evaluation_uri: str,
                      gating: bool) -> Dict[str, Any]:
    """Scores the splits, writes predictions.jsonl, returns the evidence record (without the
    final verdict when gating)."""
    rows = prediction_rows(read_split(examples, splits), candidate_dir, baseline_dir)
    evidence_contract.write_predictions(evaluation_uri, rows)
    predictions = evidence_rules.Predictions.from_rows(rows, class_names)
    return evidence_rules.build_record(
        class_names, predictions, is_grouped(examples[0], rows), "+".join(splits), settings,
        baseline_name=baseline_name, gating=gating)


def tfma_failures(evaluation_uri: str, class_names: Sequence[str]) -> List[str]:
    """TFMA's failed thresholds, one short sentence each."""
    import tensorflow_model_analysis as tfma

    if not tf.io.gfile.glob(os.path.join(evaluation_uri, "validations*")):
        return ["TFMA validated no thresholds"]
    reasons = []
    for per_slice in tfma.load_validation_result(evaluation_uri).metric_validations_per_slice:
        for failure in per_slice.failures:
            key = failure.metric_key
            name = key.name + (" change" if key.is_diff else "")
            if key.sub_key.HasField("class_id"):
                class_id = key.sub_key.class_id.value
                name += (f" [class {class_names[class_id]}]" if class_id < len(class_names)
                         else f" [class id {class_id}]")
            reasons.append(f"TFMA threshold failed: {name} = "
                           f"{failure.metric_value.double_value.value:.4f}")
    return reasons


def set_blessing(blessing: types.Artifact, blessed: bool, reasons: Sequence[str]) -> None:
    """The blessing as TFX's Evaluator executor writes it (the BLESSED or NOT_BLESSED marker
    file in its URI, the `blessed` custom property), plus the reasons against it."""
    for name in (evaluator_constants.BLESSED_FILE_NAME,
                 evaluator_constants.NOT_BLESSED_FILE_NAME):
        path = os.path.join(blessing.uri, name)
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
    marker = (evaluator_constants.BLESSED_FILE_NAME if blessed
              else evaluator_constants.NOT_BLESSED_FILE_NAME)
    io_utils.write_string_file(os.path.join(blessing.uri, marker), "")
    blessing.set_int_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        evaluator_constants.BLESSED_VALUE if blessed else evaluator_constants.NOT_BLESSED_VALUE)
    blessing.set_string_custom_property(evidence_contract.REASONS_PROPERTY,
                                        json.dumps(list(reasons)))


def gate(blessing: types.Artifact, record: Dict[str, Any], evaluation_uri: str,
         class_names: Sequence[str]) -> Dict[str, Any]:
    """The final verdict: TFMA's blessing AND the evidence rules; rewrites the blessing and
    writes evidence.json. Returns the decided record."""
    tfma_blessed = (blessing.has_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY)
                    and blessing.get_int_custom_property(
                        evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY)
                    == evaluator_constants.BLESSED_VALUE)
    decided = evidence_rules.decide(
        record, tfma_blessed, [] if tfma_blessed else tfma_failures(evaluation_uri, class_names))
    set_blessing(blessing, decided["blessed"], decided["reasons"])
    evidence_contract.write_evidence(evaluation_uri, decided)
    return decided
