"""train() on a tiny real fixture: caching changes speed, not results; a killed phase resumes.

The fixture is real: generated tissue-like JPEGs, converted by the ingest code into gzipped
tf.Examples, and a Transform graph written by tf.Transform on Beam.
"""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_transform as tft

from inception_retrain.components.trainer import standalone, train
from inception_retrain.components.trainer.config import TrainConfig
from inception_retrain.pipeline import default_dataset

IMAGE_SIZE = 150
# float32: what these tests check does not depend on the precision, which has its own test
# below; float32 also trains without the bfloat16 run's float32 export copy (seconds a run).
QUICK = TrainConfig(image_size=IMAGE_SIZE, batch_size=8, phase1_epochs=6, phase2_epochs=2,
                    base_weights="none", early_stopping_patience=10, seed=7,
                    precision="float32")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Train/eval TFRecords (every 4th image to eval) and a Transform graph."""
    root = tmp_path_factory.mktemp("tiny")
    images = default_dataset.ensure_default_dataset(str(root / "images"), images_per_class=8)
    paths = sorted(str(p) for p in Path(images).glob("*/*.jpg"))
    files = standalone.write_examples(
        {"train": [p for i, p in enumerate(paths) if i % 4],
         "eval": [p for i, p in enumerate(paths) if i % 4 == 0]}, images, str(root / "examples"))
    transform_dir = standalone.write_transform_graph(files["train"], IMAGE_SIZE,
                                                     str(root / "transform"))
    return files, transform_dir


def _accuracy(result, files, transform_output):
    dataset = train.transformed_dataset([files["eval"]], transform_output, batch_size=16)
    correct = total = 0
    for images, labels in dataset:
        predicted = np.argmax(result.classifier(images, training=False).numpy(), axis=-1)
        correct += int((predicted == labels.numpy()).sum())
        total += len(labels)
    return correct / total


def test_images_are_read_without_the_autotuner(tiny_data):
    files, transform_dir = tiny_data
    dataset = train.transformed_dataset([files["eval"]], tft.TFTransformOutput(transform_dir), 4)
    assert dataset.options().autotune.enabled is False  # see cache.PARALLEL_CALLS
    images, labels = next(iter(dataset))
    assert images.shape == (4, IMAGE_SIZE, IMAGE_SIZE, 3) and labels.shape == (4,)


def test_feature_cache_changes_speed_not_results(tiny_data):
    files, transform_dir = tiny_data
    transform_output = tft.TFTransformOutput(transform_dir)
    cached = train.train([files["train"]], [files["eval"]], transform_output, QUICK)
    uncached = train.train([files["train"]], [files["eval"]], transform_output,
                           dataclasses.replace(QUICK, feature_cache=False))
    assert cached.report["phase2"]["cache"] == "activations at mixed8"
    assert uncached.report["phase1"]["cache"] == "none (images every epoch)"
    assert uncached.report["phase2"]["cache"] == "none (images every epoch)"
    cached_accuracy = _accuracy(cached, files, transform_output)
    uncached_accuracy = _accuracy(uncached, files, transform_output)
    chance = 1 / len(default_dataset.CLASSES)
    assert cached_accuracy > 2 * chance and uncached_accuracy > 2 * chance
    assert abs(cached_accuracy - uncached_accuracy) <= 0.125  # one eval image of eight
    # The head learns the same thing either way: phase-1 validation losses end close.
    ends = [r.report["phase1"]["history"]["val_loss"][-1] for r in (cached, uncached)]
    assert abs(ends[0] - ends[1]) < 0.25 * max(ends) + 0.05


def test_augmentation_needs_the_cache_off():
    with pytest.raises(ValueError, match="feature_cache must be false when augmentation"):
        TrainConfig(augment_flip=True)
    assert TrainConfig(augment_flip=True, feature_cache=False).augments


_KILLED_RUN = """
import json, os, signal, sys
import tensorflow_transform as tft, tf_keras
from inception_retrain.components.trainer import train
from inception_retrain.components.trainer.config import TrainConfig
args = json.loads(sys.argv[1])

class KillInPhase2(tf_keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if self.model.name != "head" and epoch + 1 == args["kill_after"]:
            os.kill(os.getpid(), signal.SIGKILL)   # no cleanup, as when a pod is evicted

train.train([args["train"]], [args["eval"]], tft.TFTransformOutput(args["transform"]),
            TrainConfig(**args["config"]), backup_dir=args["backup"],
            callbacks=[KillInPhase2()] if args["kill_after"] else [])
"""


def test_killed_training_resumes_from_its_checkpoint(tiny_data, tmp_path,
                                                     env_with_legacy_keras):
    files, transform_dir = tiny_data
    config = dataclasses.replace(QUICK, phase1_epochs=1, phase2_epochs=3)
    args = {"train": files["train"], "eval": files["eval"], "transform": transform_dir,
            "backup": str(tmp_path / "backup"), "config": dataclasses.asdict(config),
            "kill_after": 2}
    killed = subprocess.run([sys.executable, "-c", _KILLED_RUN, json.dumps(args)],
                            capture_output=True, text=True, env=env_with_legacy_keras,
                            timeout=900)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (tmp_path / "backup" / "phase2").is_dir(), "no checkpoint was left behind"

    resumed = train.train([files["train"]], [files["eval"]],
                          tft.TFTransformOutput(transform_dir), config,
                          backup_dir=str(tmp_path / "backup"))
    phase2 = resumed.report["phase2"]
    assert phase2["first_epoch"] == 3, phase2  # epochs 1-2 were done before the kill
    assert phase2["epochs_run"] == 1
    assert resumed.report["phase1"]["first_epoch"] == 1  # phase 1 had finished
    # The cache on disk outlived the kill: the resumed run read it instead of recomputing it.
    assert resumed.report["cache"]["reused"], resumed.report["cache"]
    assert not (tmp_path / "backup" / "cache").exists(), "a finished run deletes its cache"


def test_bfloat16_training_serves_float32_within_the_measured_skew(tiny_data):
    """bfloat16 on this CPU (auto picks it where avx512_bf16 or AMX is present), a float32
    export, and the skew between them recorded and bounded.

    Tolerance: bfloat16 keeps 8 significant bits (relative rounding 2**-9, 0.2%); over the 94
    convolutions of InceptionV3 the errors add up to about 1% of the pooled features (measured
    on this fixture: 1.05%). With a random base the features of different images differ only
    in their third or fourth digit, so the head's standardisation magnifies that 1%: the
    largest softmax difference measured here was 0.047 (top-1 agreement 8/8). The bounds are
    about twice the measurement: 3% of the features, 0.1 of a score, at most one flip in 8.
    With ImageNet weights features vary more between images; the skew there is expected to
    be smaller (not measured: no ImageNet weights here).
    """
    import tensorflow as tf

    files, transform_dir = tiny_data
    transform_output = tft.TFTransformOutput(transform_dir)
    config = dataclasses.replace(QUICK, precision="bfloat16", phase1_epochs=3, phase2_epochs=1)
    result = train.train([files["train"]], [files["eval"]], transform_output, config)
    report = result.report
    assert report["precision"]["precision"] == "bfloat16"
    assert report["precision"]["policy"] == "mixed_bfloat16"
    assert "bfloat16" in report["strategy"]
    assert report["cache"]["dtype"] == "bfloat16"
    # 2 bytes a value: the mixed8 activations at 150 px are 3x3x1280.
    assert report["cache"]["bytes_per_image"] < (3 * 3 * 1280 + 2048) * 2 + 200
    # What is exported computes in float32 throughout.
    assert all(layer.compute_dtype == "float32" for layer in result.classifier.layers[1].layers
               if layer.compute_dtype)
    assert tf_keras_policy() == "float32", "train() leaves the global policy as it found it"
    serving = report["precision"]["serving"]
    print("serving agreement", serving)
    assert serving["images"] == 8
    assert serving["feature_relative_error"] < 0.03
    assert serving["max_score_difference"] < 0.1
    assert serving["top1_agreement"] >= 7 / 8
    # And it agrees with the float32 classifier computing the same eval images itself.
    images, _ = next(iter(train.transformed_dataset([files["eval"]], transform_output, 8)))
    scores = tf.nn.softmax(result.classifier(images, training=False)).numpy()
    assert np.isfinite(scores).all()


def tf_keras_policy():
    import tf_keras

    return tf_keras.mixed_precision.global_policy().name


def test_a_failed_training_leaves_no_temporary_cache(tiny_data, tmp_path, monkeypatch):
    """The activation cache (gigabytes at scale) in a fresh temporary directory is removed when
    training fails after it was built, not only when it finishes."""
    import tempfile

    files, transform_dir = tiny_data
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp puts the cache

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train, "_phase2", disk_full)
    with pytest.raises(OSError, match="No space left"):
        train.train([files["train"]], [files["eval"]], tft.TFTransformOutput(transform_dir),
                    dataclasses.replace(QUICK, phase1_epochs=1))
    assert list(tmp_path.glob("inception_cache_*")) == []
