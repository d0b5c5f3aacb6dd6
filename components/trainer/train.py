"""Two-phase InceptionV3 fine-tune and export, as plain functions testable without TFX.

Phase 1 trains a new head on a frozen base. The frozen base's pooled features are computed once
per image and the head trains on that cache (the idea of TensorFlow's classic retrain.py), so
phase-1 epochs cost milliseconds instead of a full InceptionV3 forward pass each.
Phase 2 unfreezes the top inception blocks at a lower learning rate, BatchNorm kept frozen.
"""
import dataclasses
import json
import logging
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from components import features
from components.trainer import model as model_lib
from components.trainer.config import TrainConfig


@dataclasses.dataclass
class TrainResult:
    classifier: tf_keras.Model
    class_names: List[str]
    report: Dict


def list_files(patterns: Sequence[str]) -> List[str]:
    files = sorted(f for p in patterns for f in tf.io.gfile.glob(p))
    if not files:
        raise FileNotFoundError(f"no example files match {list(patterns)}")
    return files


def transformed_dataset(files: Sequence[str], tf_transform_output: tft.TFTransformOutput,
                        batch_size: int, shuffle_seed: Optional[int] = None) -> tf.data.Dataset:
    """Raw tf.Examples -> (image, label id) batches, through the Transform graph."""
    raw_spec = tf_transform_output.raw_feature_spec()
    dataset = tf.data.TFRecordDataset(list(files), compression_type="GZIP")
    if shuffle_seed is not None:
        dataset = dataset.shuffle(2048, seed=shuffle_seed, reshuffle_each_iteration=True)

    def transform(serialized):
        raw = tf.io.parse_example(serialized, raw_spec)
        xf = tf_transform_output.transform_raw_features(raw, drop_unused_features=True)
        return xf[features.TRANSFORMED_IMAGE_KEY], xf[features.TRANSFORMED_LABEL_KEY]

    return (dataset.batch(batch_size).map(transform, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def extract_features(base: tf_keras.Model, dataset: tf.data.Dataset, name: str):
    """Runs the frozen base once over a dataset: (pooled features, labels) as arrays."""
    feats, labels, seen, start = [], [], 0, time.time()
    for images, batch_labels in dataset:
        feats.append(base(images, training=False).numpy())
        labels.append(batch_labels.numpy())
        seen += len(batch_labels)
        logging.info("feature cache %s: %d images, %.1f images/s", name, seen,
                     seen / max(time.time() - start, 1e-9))
    if not feats:
        raise ValueError(f"the {name} split is empty")
    return np.concatenate(feats), np.concatenate(labels)


def _keras_class_weight(class_names: Sequence[str],
                        weights_by_name: Optional[Dict[str, float]]) -> Optional[Dict[int, float]]:
    if not weights_by_name:
        return None
    return {i: float(weights_by_name.get(name, 1.0)) for i, name in enumerate(class_names)}


def _history(fit_history, seconds: float, images: int) -> Dict:
    values = {k: [float(v) for v in vs] for k, vs in fit_history.history.items()}
    return {"epochs_run": len(fit_history.epoch), "seconds": round(seconds, 2),
            "images_per_epoch": images, "history": values}


def _early_stopping(patience: int):
    return tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                            restore_best_weights=True)


def train(train_files: Sequence[str], eval_files: Sequence[str],
          tf_transform_output: tft.TFTransformOutput, config: TrainConfig,
          class_weights: Optional[Dict[str, float]] = None) -> TrainResult:
    """Runs phase 1 (cached features, new head) and phase 2 (top blocks unfrozen)."""
    tf_keras.utils.set_random_seed(config.seed)
    class_names = [v.decode() if isinstance(v, bytes) else v for v in
                   tf_transform_output.vocabulary_by_name(features.LABEL_VOCABULARY)]
    weights, weights_description = model_lib.resolve_weights(config.base_weights)
    base = model_lib.build_base(config.image_size, weights)
    keras_weights = _keras_class_weight(class_names,
                                        class_weights if config.use_class_weights else None)
    loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    report = {"base_weights": weights_description, "class_names": class_names,
              "class_weights": keras_weights, "config": dataclasses.asdict(config)}

    # Phase 1: frozen base; features computed once, head trained on the cache.
    model_lib.freeze_for_phase(base, 1, config.unfreeze_blocks)
    start = time.time()
    train_x, train_y = extract_features(
        base, transformed_dataset(train_files, tf_transform_output, config.batch_size), "train")
    eval_x, eval_y = extract_features(
        base, transformed_dataset(eval_files, tf_transform_output, config.batch_size), "eval")
    cache_seconds = time.time() - start
    head = model_lib.build_head(len(class_names), train_x, config.dropout)
    head.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=config.phase1_learning_rate),
                 loss=loss, metrics=["accuracy"])
    start = time.time()
    fit = head.fit(
        tf.data.Dataset.from_tensor_slices((train_x, train_y))
        .shuffle(len(train_x), seed=config.seed).batch(config.batch_size),
        validation_data=(eval_x, eval_y), epochs=config.phase1_epochs,
        class_weight=keras_weights, callbacks=[_early_stopping(config.early_stopping_patience)],
        verbose=2)
    report["phase1"] = dict(_history(fit, time.time() - start, len(train_x)),
                            feature_cache_seconds=round(cache_seconds, 2))

    classifier = model_lib.build_classifier(base, head)
    if config.phase2_epochs > 0 and config.unfreeze_blocks > 0:
        model_lib.freeze_for_phase(base, 2, config.unfreeze_blocks)
        classifier.compile(
            optimizer=tf_keras.optimizers.Adam(learning_rate=config.phase2_learning_rate),
            loss=loss, metrics=["accuracy"])
        start = time.time()
        fit = classifier.fit(
            transformed_dataset(train_files, tf_transform_output, config.batch_size,
                                shuffle_seed=config.seed),
            validation_data=transformed_dataset(eval_files, tf_transform_output,
                                                config.batch_size),
            epochs=config.phase2_epochs, class_weight=keras_weights,
            callbacks=[_early_stopping(config.early_stopping_patience)], verbose=2)
        report["phase2"] = dict(_history(fit, time.time() - start, len(train_x)),
                                trainable_layers=sum(l.trainable for l in base.layers))
    else:
        report["phase2"] = {"skipped": "phase2_epochs or unfreeze_blocks is 0"}
    return TrainResult(classifier, class_names, report)


def write_report(report: Dict, path: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
