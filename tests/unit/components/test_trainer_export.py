"""The exported SavedModel's signatures and assets.extra, on a tiny real model.

A real Transform graph (tf.Transform's Beam analysis with the pipeline's preprocessing_fn and
schema) over real flower photos, an InceptionV3 classifier built by components.trainer.model
at image_size 75 (untrained: the contract is under test, not the accuracy), exported by
components.trainer.export.
"""
import io

import numpy as np
import pytest

from inception_retrain.components import features
from inception_retrain.components.image_example_gen import conversion, ingest
from conftest import FLOWERS, require_dataset

CLASSES = ("daisy", "roses", "tulips")
IMAGE_SIZE = 75


def _examples(data_root):
    """(relative path, tf.Example) for two real photos per class, through the real ingest."""
    found = []
    for name in CLASSES:
        for path in sorted((data_root / name).iterdir(), key=lambda p: p.stat().st_size)[:2]:
            example = conversion.example_or_quarantine(str(path), str(data_root),
                                                       ingest.IngestOptions())
            assert not isinstance(example, ingest.Quarantined), example
            found.append((f"{name}/{path.name}", example))
    return found


def _instances(examples, feature_spec):
    import tensorflow as tf

    rows = []
    for _, example in examples:
        row = {}
        for key, spec in feature_spec.items():
            feature = example.features.feature[key]
            row[key] = list(feature.bytes_list.value if spec.dtype == tf.string
                            else feature.int64_list.value)
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{"dir", "examples", "class_names"} of a model exported by export.export."""
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import metadata_io, schema_utils

    from inception_retrain.components.trainer import export, model, train
    from inception_retrain.components.transform import preprocessing
    from inception_retrain.pipeline.pipeline import default_schema_path

    work = tmp_path_factory.mktemp("export")
    examples = _examples(require_dataset(FLOWERS))
    with open(default_schema_path()) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    metadata = tft.DatasetMetadata(schema)
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    transform_dir = str(work / "transform_graph")
    with tft_beam.Context(temp_dir=str(work / "tmp")):
        transform_fn = (_instances(examples, spec), metadata) | tft_beam.AnalyzeDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, {"image_size": IMAGE_SIZE}))
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    metadata_io.write_metadata(metadata, f"{transform_dir}/metadata")
    tf_transform_output = tft.TFTransformOutput(transform_dir)
    class_names = [v.decode() for v in
                   tf_transform_output.vocabulary_by_name(features.LABEL_VOCABULARY)]

    base = model.build_base(IMAGE_SIZE, None)
    images = tf_transform_output.transform_raw_features(tf.io.parse_example(
        [e.SerializeToString() for _, e in examples], spec))[features.TRANSFORMED_IMAGE_KEY]
    head = model.build_head(len(class_names), base(images, training=False).numpy(), 0.2)
    classifier = model.build_classifier(base, head)
    # In graph mode, as the Trainer's Keras predict and TF Serving run it: grappler fuses
    # convolutions with their batch norms, which rounds differently from op-by-op eager
    # execution (up to ~6e-5 in these scores, depending on the random weights).
    expected = tf.nn.softmax(classifier.predict(images, verbose=0)).numpy()
    model_dir = str(work / "model")
    export.export(train.TrainResult(classifier, class_names, {}), tf_transform_output, model_dir)
    return {"dir": model_dir, "examples": examples, "class_names": class_names,
            "expected_scores": expected}


@pytest.fixture(scope="module")
def loaded(exported):
    import tensorflow as tf

    return tf.saved_model.load(exported["dir"])


def _image_bytes(examples):
    return [e.features.feature[features.IMAGE_KEY].bytes_list.value[0] for _, e in examples]


def test_signatures_have_the_serving_shapes(loaded):
    import tensorflow as tf

    by_bytes = loaded.signatures[features.SERVING_BYTES_SIGNATURE]
    (inputs,) = by_bytes.structured_input_signature[1].values()
    assert inputs.name == features.BYTES_INPUT and inputs.dtype == tf.string
    assert inputs.shape.as_list() == [None]
    assert set(by_bytes.structured_outputs) == {"scores", "classes", "predicted_class"}
    assert set(loaded.signatures) == {features.SERVING_BYTES_SIGNATURE,
                                      features.SERVING_EXAMPLES_SIGNATURE,
                                      features.TRANSFORM_SIGNATURE}


def test_bytes_signature_answers_a_batch_of_formats(loaded, exported):
    """JPEG, PNG, GIF and BMP encodings of real photos, batched; class names come back."""
    import tensorflow as tf
    from PIL import Image

    jpegs = _image_bytes(exported["examples"])
    photo = Image.open(io.BytesIO(jpegs[0])).convert("RGB")
    encoded = []
    for fmt in ("PNG", "GIF", "BMP"):
        buffer = io.BytesIO()
        photo.save(buffer, fmt)
        encoded.append(buffer.getvalue())
    batch = jpegs + encoded
    out = loaded.signatures[features.SERVING_BYTES_SIGNATURE](images=tf.constant(batch))

    scores = out["scores"].numpy()
    assert scores.shape == (len(batch), len(CLASSES))
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    classes = out["classes"].numpy()
    assert all([c.decode() for c in row] == exported["class_names"] for row in classes)
    assert [c.decode() for c in out["predicted_class"].numpy()] == \
        [exported["class_names"][i] for i in scores.argmax(axis=1)]


def test_loaded_model_scores_as_the_trained_classifier(loaded, exported):
    """The SavedModel, loaded back, computes what the classifier computed before export: the
    same graph on the same pixels, so the same floats up to the last bits of float32."""
    import tensorflow as tf

    scores = loaded.signatures[features.SERVING_BYTES_SIGNATURE](
        images=tf.constant(_image_bytes(exported["examples"])))["scores"].numpy()
    np.testing.assert_allclose(scores, exported["expected_scores"], rtol=1e-6, atol=1e-7)


def test_bytes_and_example_signatures_agree(loaded, exported):
    """TFMA scores serving_examples; clients call serving_default: same model, same scores."""
    import tensorflow as tf

    examples = exported["examples"]
    by_bytes = loaded.signatures[features.SERVING_BYTES_SIGNATURE](
        images=tf.constant(_image_bytes(examples)))["scores"].numpy()
    by_example = loaded.signatures[features.SERVING_EXAMPLES_SIGNATURE](
        examples=tf.constant([e.SerializeToString() for _, e in examples]))["scores"].numpy()
    np.testing.assert_allclose(by_bytes, by_example, rtol=1e-5, atol=1e-6)


def test_transform_signature_labels_follow_labels_txt(loaded, exported):
    """The label ids TFMA compares with the scores index the same class list as labels.txt."""
    import tensorflow as tf

    from inception_retrain.components.trainer import export

    labels = export.read_labels(exported["dir"])
    assert labels == exported["class_names"]
    out = loaded.signatures[features.TRANSFORM_SIGNATURE](
        examples=tf.constant([e.SerializeToString() for _, e in exported["examples"]]))
    ids = out[features.TRANSFORMED_LABEL_KEY].numpy().reshape(-1).tolist()
    assert [labels[i] for i in ids] == [path.split("/")[0] for path, _ in exported["examples"]]


@pytest.mark.parametrize("bad, indices", [
    ([b"", b"GIF8 with no image after the signature"], "[1]"),
    ([b"%PDF-1.4 a document", b"hello"], "[1 2]"),
])
def test_bytes_that_are_no_image_fail_with_a_clear_error(loaded, exported, bad, indices):
    """The format check runs before decoding and names the bad positions in the batch; the
    model goes on answering."""
    import tensorflow as tf

    good = _image_bytes(exported["examples"])[:1]
    serve = loaded.signatures[features.SERVING_BYTES_SIGNATURE]
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        serve(images=tf.constant(good + bad))
    message = caught.value.message
    assert "input is not a JPEG, PNG, GIF or BMP image" in message
    assert f"batch:] {indices}" in message, message
    assert serve(images=tf.constant(good))["scores"].shape == (1, len(CLASSES))


def test_truncated_jpeg_fails_as_invalid_argument(loaded, exported):
    """A JPEG cut short passes the format check; TensorFlow's decoder refuses it."""
    import tensorflow as tf

    truncated = _image_bytes(exported["examples"])[0][:200]
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures[features.SERVING_BYTES_SIGNATURE](images=tf.constant([truncated]))


def test_warmup_file_holds_predict_requests_the_model_answers(loaded, exported):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from inception_retrain.components.trainer import export

    path = f"{exported['dir']}/{export.ASSETS_EXTRA}/{export.WARMUP_FILE}"
    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
               for r in tf.data.TFRecordDataset(path)]
    assert [r.WhichOneof("log_type") for r in records] == ["predict_log"] * 2
    batches = []
    for record in records:
        request = record.predict_log.request
        assert request.model_spec.signature_name == features.SERVING_BYTES_SIGNATURE
        images = tf.make_ndarray(request.inputs[features.BYTES_INPUT])
        out = loaded.signatures[request.model_spec.signature_name](images=tf.constant(images))
        assert out["scores"].shape == (len(images), len(CLASSES))
        batches.append(len(images))
    assert batches == list(export.WARMUP_BATCH_SIZES)
