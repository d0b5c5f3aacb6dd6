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


def count_records(files: Sequence[str]) -> int:
    """Examples in gzipped TFRecord files (reads records, decodes nothing)."""
    return int(tf.data.TFRecordDataset(list(files), compression_type="GZIP")
               .reduce(np.int64(0), lambda count, _: count + 1))


def run_frozen(model: tf_keras.Model, dataset: tf.data.Dataset, name: str):
    """Runs a frozen model once over (image, label) batches: (outputs, labels) as arrays."""
    outputs, labels, seen, start = [], [], 0, time.time()
    forward = tf.function(lambda images: model(images, training=False))
    for images, batch_labels in dataset:
        outputs.append(forward(images).numpy())
        labels.append(batch_labels.numpy())
        seen += len(batch_labels)
        logging.info("cache %s: %d images, %.1f images/s", name, seen,
                     seen / max(time.time() - start, 1e-9))
    if not outputs:
        raise ValueError(f"the {name} split is empty")
    return np.concatenate(outputs), np.concatenate(labels)


class EpochProgress(tf_keras.callbacks.Callback):
    """Logs each epoch of a phase with its metrics, elapsed time and an ETA for the phase."""

    def __init__(self, phase: str, epochs: int):
        super().__init__()
        self._phase, self._epochs, self._start = phase, epochs, None

    def on_train_begin(self, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.time() - self._start
        eta = elapsed / (epoch + 1) * (self._epochs - epoch - 1)
        metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
        logging.info("%s epoch %d/%d  %s  elapsed %.0fs, ETA %.0fs", self._phase, epoch + 1,
                     self._epochs, metrics, elapsed, eta)


def _keras_class_weight(class_names: Sequence[str],
                        weights_by_name: Optional[Dict[str, float]]) -> Optional[Dict[int, float]]:
    if not weights_by_name:
        return None
    return {i: float(weights_by_name.get(name, 1.0)) for i, name in enumerate(class_names)}


def _history(fit_history, seconds: float, images: int) -> Dict:
    values = {k: [float(v) for v in vs] for k, vs in fit_history.history.items()}
    return {"epochs_run": len(fit_history.epoch), "seconds": round(seconds, 2),
            "images_per_epoch": images, "history": values}


def _callbacks(phase: str, epochs: int, patience: int, backup_dir: Optional[str]):
    callbacks = [tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                  restore_best_weights=True),
                 EpochProgress(phase, epochs)]
    if backup_dir:  # resume a killed phase from its last finished epoch
        callbacks.append(tf_keras.callbacks.BackupAndRestore(f"{backup_dir}/{phase}"))
    return callbacks


def train(train_files: Sequence[str], eval_files: Sequence[str],
          tf_transform_output: tft.TFTransformOutput, config: TrainConfig,
          class_weights: Optional[Dict[str, float]] = None,
          backup_dir: Optional[str] = None) -> TrainResult:
    """Runs phase 1 (new head on a frozen base) and phase 2 (top blocks unfrozen).

    The frozen part of the network runs once per image: when phase 2 will run, images go
    through the blocks below the unfreeze boundary once and both phases train on those cached
    activations; otherwise the pooled features are cached. Without caching (cache_activations
    off, or a cache above max_activation_cache_gb) phase 2 reads the images every epoch.
    """
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

    def images(files, shuffle_seed=None):
        return transformed_dataset(files, tf_transform_output, config.batch_size, shuffle_seed)

    run_phase2 = config.phase2_epochs > 0 and config.unfreeze_blocks > 0
    split = (model_lib.split_at_boundary(base, config.unfreeze_blocks)
             if run_phase2 and config.cache_activations else None)
    cache = "pooled features"
    start = time.time()
    if split is not None:
        bottom, top = split
        examples = count_records(train_files) + count_records(eval_files)
        cache_gb = examples * float(np.prod(bottom.output_shape[1:])) * 4 / 1e9
        if cache_gb > config.max_activation_cache_gb:
            logging.warning("activation cache would take %.1f GB (> max_activation_cache_gb=%s);"
                            " phase 2 reads images every epoch instead", cache_gb,
                            config.max_activation_cache_gb)
            split = None
    if split is not None:
        cache = f"activations at {model_lib.boundary_layer_name(config.unfreeze_blocks)}"
        train_acts, train_y = run_frozen(bottom, images(train_files), "train")
        eval_acts, eval_y = run_frozen(bottom, images(eval_files), "eval")
        train_x = top.predict(train_acts, batch_size=config.batch_size, verbose=0)
        eval_x = top.predict(eval_acts, batch_size=config.batch_size, verbose=0)
    else:
        train_x, train_y = run_frozen(base, images(train_files), "train")
        eval_x, eval_y = run_frozen(base, images(eval_files), "eval")
    cache_seconds = time.time() - start

    # Phase 1: frozen base, new head trained on the cached features.
    model_lib.freeze_for_phase(base, 1, config.unfreeze_blocks)
    head = model_lib.build_head(len(class_names), train_x, config.dropout)
    head.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=config.phase1_learning_rate),
                 loss=loss, metrics=["accuracy"])
    start = time.time()
    fit = head.fit(train_x, train_y, batch_size=config.batch_size, shuffle=True,
                   validation_data=(eval_x, eval_y), epochs=config.phase1_epochs,
                   class_weight=keras_weights, verbose=0,
                   callbacks=_callbacks("phase1", config.phase1_epochs,
                                        config.early_stopping_patience, backup_dir))
    report["phase1"] = dict(_history(fit, time.time() - start, len(train_x)),
                            cache=cache, cache_seconds=round(cache_seconds, 2))

    classifier = model_lib.build_classifier(base, head)
    if not run_phase2:
        report["phase2"] = {"skipped": "phase2_epochs or unfreeze_blocks is 0"}
        return TrainResult(classifier, class_names, report)

    # Phase 2: top blocks unfrozen at a lower learning rate, BatchNorm frozen.
    phase1_best = min(fit.history["val_loss"])
    phase1_weights = classifier.get_weights()
    model_lib.freeze_for_phase(base, 2, config.unfreeze_blocks)
    optimizer = tf_keras.optimizers.Adam(learning_rate=config.phase2_learning_rate)
    callbacks = _callbacks("phase2", config.phase2_epochs, config.early_stopping_patience,
                           backup_dir)
    start = time.time()
    if split is not None:
        acts = tf_keras.Input(shape=top.input_shape[1:], name="boundary_activations")
        top_model = tf_keras.Model(acts, head(top(acts, training=False)))
        top_model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        fit = top_model.fit(train_acts, train_y, batch_size=config.batch_size, shuffle=True,
                            validation_data=(eval_acts, eval_y), epochs=config.phase2_epochs,
                            class_weight=keras_weights, callbacks=callbacks, verbose=0)
    else:
        classifier.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        fit = classifier.fit(images(train_files, shuffle_seed=config.seed),
                             validation_data=images(eval_files), epochs=config.phase2_epochs,
                             class_weight=keras_weights, callbacks=callbacks, verbose=0)
    report["phase2"] = dict(_history(fit, time.time() - start, len(train_x)),
                            trainable_layers=sum(bool(l.trainable_weights) for l in base.layers),
                            cache=cache if split is not None else "none (images every epoch)")
    if min(fit.history["val_loss"]) > phase1_best:
        classifier.set_weights(phase1_weights)
        report["phase2"]["kept_phase1_weights"] = (
            f"phase 2's best val_loss {min(fit.history['val_loss']):.4f} did not beat "
            f"phase 1's {phase1_best:.4f}; the phase-1 model is exported")
        logging.warning("phase 2 did not improve validation loss; keeping phase-1 weights")
    return TrainResult(classifier, class_names, report)


def write_report(report: Dict, path: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
