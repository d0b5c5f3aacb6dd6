"""The exported SavedModel: what TF Serving loads and what TFMA evaluates.

Signatures: serving_default takes raw encoded image bytes (what a REST client sends as b64) and
returns class names and scores; serving_examples takes serialized tf.Examples (Evaluator);
transform_features applies the Transform graph alone (TFMA's label preprocessing).
Beside the graph, assets.extra/ holds the TF Serving warm-up requests and the class names.
"""
import os
from typing import List, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from inception_retrain.components import features
from inception_retrain.components.trainer.train import TrainResult

ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"   # the name TF Serving looks for in assets.extra/
LABELS_FILE = "labels.txt"                   # class names, one per line, in score order
WARMUP_BATCH_SIZES = (1, 8)                  # 8 = the predict client's default batch

# Leading bytes of the formats tf.io.decode_image reads (JPEG, PNG, GIF, BMP).
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")
NOT_AN_IMAGE_MESSAGE = ("input is not a JPEG, PNG, GIF or BMP image; "
                        f"indices in the '{features.BYTES_INPUT}' batch:")


def _check_image_bytes(images: tf.Tensor) -> tf.Tensor:
    """Fails the request with a clear InvalidArgument naming the bad batch indices.

    Without it, bytes that are no image reach decode_image deep inside map_fn, whose error names
    a graph node, not the input."""
    recognised = tf.zeros_like(images, dtype=tf.bool)
    for magic in _IMAGE_MAGIC:
        recognised = recognised | tf.equal(tf.strings.substr(images, 0, len(magic)), magic)
    check = tf.debugging.Assert(
        tf.reduce_all(recognised),
        [NOT_AN_IMAGE_MESSAGE, tf.reshape(tf.where(tf.logical_not(recognised)), [-1])],
        summarize=32)
    with tf.control_dependencies([check]):
        return tf.identity(images)


class _ServingModule(tf.Module):
    """The exported signatures: raw bytes, serialized tf.Example, and the transform alone."""

    def __init__(self, classifier, tf_transform_output, class_names):
        super().__init__()
        # Only the classifier's variables are tracked, and it is called through a closure:
        # tracking the Keras model itself makes tf.saved_model.save trace every layer's call
        # (InceptionV3: over a minute) for a Keras loading path TF Serving and TFMA never use.
        self.classifier_variables = list(classifier.variables)
        self._classify = lambda images: classifier(images, training=False)
        self.tft_layer = tf_transform_output.transform_features_layer()
        self.class_names = tf.constant(class_names)
        self._raw_spec = tf_transform_output.raw_feature_spec()
        self._unlabeled_spec = {k: v for k, v in self._raw_spec.items()
                                if k != features.LABEL_KEY}

    def _scores(self, raw_features):
        transformed = self.tft_layer(raw_features)
        logits = self._classify(transformed[features.TRANSFORMED_IMAGE_KEY])
        return tf.nn.softmax(logits, axis=-1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.BYTES_INPUT)])
    def serve_bytes(self, images):
        images = _check_image_bytes(images)
        scores = self._scores({features.IMAGE_KEY: tf.reshape(images, [-1, 1])})
        batch = tf.shape(scores)[0]
        return {
            "scores": scores,
            "classes": tf.tile(self.class_names[tf.newaxis, :], [batch, 1]),
            "predicted_class": tf.gather(self.class_names, tf.argmax(scores, axis=-1)),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, serialized):
        image_only = {features.IMAGE_KEY: self._unlabeled_spec[features.IMAGE_KEY]}
        return {"scores": self._scores(tf.io.parse_example(serialized, image_only))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, serialized):
        return self.tft_layer(tf.io.parse_example(serialized, self._raw_spec))


def warmup_image() -> bytes:
    """A small deterministic JPEG (a colour gradient): warm-up only needs a decodable image."""
    ramp = np.linspace(0, 255, 64, dtype=np.float32)
    pixels = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 128.0), axis=-1)
    return tf.io.encode_jpeg(tf.constant(pixels.astype(np.uint8))).numpy()


def write_warmup_requests(path: str, batch_sizes: Sequence[int] = WARMUP_BATCH_SIZES) -> None:
    """PredictionLog records (TFRecord) that TF Serving replays when it loads the model.

    One serving_default request per batch size, so the first real requests do not pay for
    graph initialisation."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    image = warmup_image()
    with tf.io.TFRecordWriter(path) as writer:
        for batch_size in batch_sizes:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = features.SERVING_BYTES_SIGNATURE
            request.inputs[features.BYTES_INPUT].CopyFrom(
                tf.make_tensor_proto([image] * batch_size, dtype=tf.string, shape=[batch_size]))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def write_assets_extra(serving_model_dir: str, class_names: Sequence[str]) -> None:
    """The warm-up requests and labels.txt (read by the Evaluator and by people)."""
    extra = os.path.join(serving_model_dir, ASSETS_EXTRA)
    tf.io.gfile.makedirs(extra)
    write_warmup_requests(os.path.join(extra, WARMUP_FILE))
    with tf.io.gfile.GFile(os.path.join(extra, LABELS_FILE), "w") as f:
        f.write("".join(f"{name}\n" for name in class_names))


def read_labels(serving_model_dir: str) -> List[str]:
    """Class names of an exported model, in score order."""
    path = os.path.join(serving_model_dir, ASSETS_EXTRA, LABELS_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} is missing: the model was not exported by "
                                "inception_retrain.components.trainer.export")
    with tf.io.gfile.GFile(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def export(result: TrainResult, tf_transform_output: tft.TFTransformOutput,
           serving_model_dir: str) -> None:
    """Writes the SavedModel TF Serving loads, with its three signatures and assets.extra/."""
    module = _ServingModule(result.classifier, tf_transform_output, result.class_names)
    tf.saved_model.save(module, serving_model_dir, signatures={
        features.SERVING_BYTES_SIGNATURE: module.serve_bytes,
        features.SERVING_EXAMPLES_SIGNATURE: module.serve_examples,
        features.TRANSFORM_SIGNATURE: module.transform_features,
    })
    write_assets_extra(serving_model_dir, result.class_names)
