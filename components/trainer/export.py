"""The exported SavedModel: what TF Serving loads and what TFMA evaluates.

Signatures: serving_default takes raw encoded image bytes (what a REST client sends as b64) and
returns class names and scores; serving_examples takes serialized tf.Examples (Evaluator);
transform_features applies the Transform graph alone (TFMA's label preprocessing).
"""
import tensorflow as tf
import tensorflow_transform as tft

from components import features
from components.trainer.train import TrainResult


class _ServingModule(tf.Module):
    """The exported signatures: raw bytes, serialized tf.Example, and the transform alone."""

    def __init__(self, classifier, tf_transform_output, class_names):
        super().__init__()
        self.classifier = classifier
        self.tft_layer = tf_transform_output.transform_features_layer()
        self.class_names = tf.constant(class_names)
        self._raw_spec = tf_transform_output.raw_feature_spec()
        self._unlabeled_spec = {k: v for k, v in self._raw_spec.items()
                                if k != features.LABEL_KEY}

    def _scores(self, raw_features):
        transformed = self.tft_layer(raw_features)
        logits = self.classifier(transformed[features.TRANSFORMED_IMAGE_KEY], training=False)
        return tf.nn.softmax(logits, axis=-1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.BYTES_INPUT)])
    def serve_bytes(self, images):
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


def export(result: TrainResult, tf_transform_output: tft.TFTransformOutput,
           serving_model_dir: str) -> None:
    """Writes the SavedModel TF Serving loads, with its three signatures."""
    module = _ServingModule(result.classifier, tf_transform_output, result.class_names)
    tf.saved_model.save(module, serving_model_dir, signatures={
        features.SERVING_BYTES_SIGNATURE: module.serve_bytes,
        features.SERVING_EXAMPLES_SIGNATURE: module.serve_examples,
        features.TRANSFORM_SIGNATURE: module.transform_features,
    })
