"""The misclassified eval images of the run report: the candidate's serving signature (raw image
bytes in, what TF Serving clients send) run on the Evaluator's eval split, with thumbnails.
The one part of the report that runs the model; TensorFlow is imported only here."""
import base64
import io
import os
from typing import Any, Dict, List, Optional, Tuple

from inception_retrain.run_reading.record import EvaluationSection

MAX_EXAMPLES = 200       # eval examples classified for the misclassified thumbnails
MAX_THUMBNAILS = 24
THUMBNAIL_PX = 128


def thumbnail(image_bytes: bytes) -> Optional[str]:
    """A small JPEG of an encoded image as a data: URI; None if PIL cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=80)
    except (UnidentifiedImageError, OSError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _examples(examples_uri: str, split: str, limit: int):
    """(image bytes, label, relative path) of the first `limit` examples of one split."""
    import tensorflow as tf

    from inception_retrain.components import features

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        return
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        yield (feature[features.IMAGE_KEY].bytes_list.value[0],
               feature[features.LABEL_KEY].bytes_list.value[0].decode("utf-8"),
               feature[features.PATH_KEY].bytes_list.value[0].decode("utf-8"))


def misclassified(evaluation: EvaluationSection, max_examples: int = MAX_EXAMPLES,
                  max_thumbnails: int = MAX_THUMBNAILS, batch_size: int = 16) -> Dict[str, Any]:
    """Runs the candidate's serving signature on up to max_examples examples of the Evaluator's
    eval split; returns the misclassified ones, with thumbnails for at most max_thumbnails of
    them, balanced across classes and grouped by (true, predicted) pair (select)."""
    result: Dict[str, Any] = {"examined": 0, "misclassified": 0, "items": [], "skipped": ""}
    if max_examples <= 0:
        result["skipped"] = "turned off (--report-examples 0)"
        return result
    if not evaluation.model_uri or not evaluation.examples_uri:
        result["skipped"] = "the Evaluator's inputs are not recorded"
        return result
    import tensorflow as tf
    from tfx.utils import path_utils

    from inception_retrain.components import features

    model_dir = path_utils.serving_model_path(evaluation.model_uri)
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        result["skipped"] = f"no SavedModel in {model_dir}"
        return result
    serve = tf.saved_model.load(model_dir).signatures[features.SERVING_BYTES_SIGNATURE]
    batch: List[Tuple[bytes, str, str]] = []
    wrong: List[Dict[str, Any]] = []

    def flush():
        outputs = serve(**{features.BYTES_INPUT: tf.constant([b[0] for b in batch])})
        predicted = [p.decode("utf-8") for p in outputs["predicted_class"].numpy()]
        scores = outputs["scores"].numpy().max(axis=-1)
        for (image, label, path), guess, score in zip(batch, predicted, scores):
            result["examined"] += 1
            if guess == label:
                continue
            result["misclassified"] += 1
            wrong.append({"path": path, "label": label, "predicted": guess,
                          "score": round(float(score), 4), "image": image})
        batch.clear()

    for example in _examples(evaluation.examples_uri, "eval", max_examples):
        batch.append(example)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    for item in select(wrong, max_thumbnails):
        image = item.pop("image")
        result["items"].append(dict(item, thumbnail=thumbnail(image)))
    return result


def select(wrong: List[Dict[str, Any]], limit: int) -> List[Dict[str, Any]]:
    """At most limit misclassified items, balanced across true classes (round robin, each
    class's most confident mistakes first), returned grouped by (true, predicted) pair with
    the pairs in class order and each pair's items by descending confidence."""
    by_class: Dict[str, List[Dict[str, Any]]] = {}
    for item in sorted(wrong, key=lambda i: (-i["score"], i["path"])):
        by_class.setdefault(item["label"], []).append(item)
    chosen: List[Dict[str, Any]] = []
    queues = [by_class[name] for name in sorted(by_class)]
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return sorted(chosen, key=lambda i: (i["label"], i["predicted"], -i["score"], i["path"]))
