"""Two-phase InceptionV3 fine-tune and export, as plain functions testable without TFX.

Phase 1 trains a new head on a frozen base. The frozen base's pooled features are computed once
per image and the head trains on that cache (the idea of TensorFlow's classic retrain.py), so
phase-1 epochs cost milliseconds instead of a full InceptionV3 forward pass each.
Phase 2 unfreezes the top inception blocks at a lower learning rate, BatchNorm kept frozen.
"""
import dataclasses
import logging
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from inception_retrain.components import features
from inception_retrain.components.trainer import contract, model as model_lib
from inception_retrain.components.trainer.config import TrainConfig


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


def _callbacks(phase: str, epochs: int, config: TrainConfig, backup_dir: Optional[str],
               log_dir: Optional[str], extra: Sequence = ()):
    callbacks = [tf_keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True),
        EpochProgress(phase, epochs)]
    if backup_dir:  # a killed phase resumes from its last finished epoch
        callbacks.append(tf_keras.callbacks.BackupAndRestore(f"{backup_dir}/{phase}"))
    if log_dir:
        callbacks.append(tf_keras.callbacks.TensorBoard(f"{log_dir}/{phase}", profile_batch=0))
    return callbacks + list(extra)


def _optimizer(learning_rate: float, epochs: int, examples: int, config: TrainConfig):
    """Adam with the phase's schedule: cosine decay to zero over the phase, or constant."""
    if config.lr_schedule == "cosine":
        steps = epochs * max(1, -(-examples // config.batch_size))
        learning_rate = tf_keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    return tf_keras.optimizers.Adam(learning_rate=learning_rate)


def select_strategy():
    """MirroredStrategy across several GPUs, the default strategy otherwise; mixed precision on
    GPU only (float16 math slows x86 CPUs down)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        tf_keras.mixed_precision.set_global_policy("mixed_float16")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), f"MirroredStrategy over {len(gpus)} GPUs"
    return tf.distribute.get_strategy(), ("one GPU, mixed precision" if gpus else "CPU")


def train(train_files: Sequence[str], eval_files: Sequence[str],
          tf_transform_output: tft.TFTransformOutput, config: TrainConfig,
          class_weights: Optional[Dict[str, float]] = None,
          backup_dir: Optional[str] = None, log_dir: Optional[str] = None,
          callbacks: Sequence = ()) -> TrainResult:
    """Runs phase 1 (new head on a frozen base) and phase 2 (top blocks unfrozen).

    With feature_cache on, the frozen part of the network runs once per image: when phase 2
    will run, images go through the blocks below the unfreeze boundary once and both phases
    train on those activations; otherwise on the pooled features. With it off (required for
    augmentation, whose images differ every epoch), every epoch reads the images.
    backup_dir makes a killed phase resume; log_dir receives TensorBoard logs.
    """
    tf_keras.utils.set_random_seed(config.seed)
    strategy, strategy_description = select_strategy()
    class_names = [v.decode() if isinstance(v, bytes) else v for v in
                   tf_transform_output.vocabulary_by_name(features.LABEL_VOCABULARY)]
    weights, weights_description = model_lib.resolve_weights(config.base_weights)
    keras_weights = _keras_class_weight(class_names,
                                        class_weights if config.use_class_weights else None)
    loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    report = {contract.BASE_WEIGHTS: weights_description,
              contract.BASE_WEIGHTS_RANDOM: weights is None, "class_names": class_names,
              "class_weights": keras_weights, "strategy": strategy_description,
              "config": dataclasses.asdict(config)}

    def images(files, shuffle_seed=None):
        return transformed_dataset(files, tf_transform_output, config.batch_size, shuffle_seed)

    def fit(model, phase, epochs, learning_rate, train_data, validation_data, examples):
        with strategy.scope():
            model.compile(optimizer=_optimizer(learning_rate, epochs, examples, config),
                          loss=loss, metrics=["accuracy"])
        start = time.time()
        kwargs = ({"batch_size": config.batch_size, "shuffle": True}
                  if isinstance(train_data, tuple) else {})
        x, y = train_data if isinstance(train_data, tuple) else (train_data, None)
        history = model.fit(x, y, validation_data=validation_data, epochs=epochs,
                            class_weight=keras_weights, verbose=0,
                            callbacks=_callbacks(phase, epochs, config, backup_dir, log_dir,
                                                 callbacks), **kwargs)
        result = _history(history, time.time() - start, examples)
        result["first_epoch"] = history.epoch[0] + 1 if history.epoch else epochs + 1
        return history, result

    with strategy.scope():
        base = model_lib.build_base(config.image_size, weights)
    model_lib.freeze_for_phase(base, 1, config.unfreeze_blocks)
    run_phase2 = config.phase2_epochs > 0 and config.unfreeze_blocks > 0
    split = (model_lib.split_at_boundary(base, config.unfreeze_blocks)
             if run_phase2 and config.feature_cache else None)
    if split is not None:
        examples = count_records(train_files) + count_records(eval_files)
        cache_gb = examples * float(np.prod(split[0].output_shape[1:])) * 4 / 1e9
        if cache_gb > config.max_activation_cache_gb:
            logging.warning("activation cache would take %.1f GB (> max_activation_cache_gb=%s);"
                            " phase 2 reads images every epoch instead", cache_gb,
                            config.max_activation_cache_gb)
            split = None

    # The frozen network, once per image: boundary activations or pooled features. The
    # pooled training features also give the head its standardisation statistics.
    start = time.time()
    if split is not None:
        bottom, top = split
        cache = f"activations at {model_lib.boundary_layer_name(config.unfreeze_blocks)}"
        train_acts, train_y = run_frozen(bottom, images(train_files), "train")
        eval_acts, eval_y = run_frozen(bottom, images(eval_files), "eval")
        train_x = top.predict(train_acts, batch_size=config.batch_size, verbose=0)
        eval_x = top.predict(eval_acts, batch_size=config.batch_size, verbose=0)
    else:
        cache = "pooled features" if config.feature_cache else "none (images every epoch)"
        train_x, train_y = run_frozen(base, images(train_files), "train")
        if config.feature_cache:
            eval_x, eval_y = run_frozen(base, images(eval_files), "eval")
    cache_seconds = time.time() - start
    examples = len(train_y)

    with strategy.scope():
        head = model_lib.build_head(len(class_names), train_x, config.dropout)
        classifier = model_lib.build_classifier(base, head)
        augmented = model_lib.build_classifier(base, head, model_lib.augmentation(config))

    # Phase 1: frozen base, new head.
    if config.feature_cache:
        phase1 = fit(head, "phase1", config.phase1_epochs, config.phase1_learning_rate,
                     (train_x, train_y), (eval_x, eval_y), examples)
    else:
        phase1 = fit(augmented, "phase1", config.phase1_epochs, config.phase1_learning_rate,
                     images(train_files, shuffle_seed=config.seed), images(eval_files), examples)
    report["phase1"] = dict(phase1[1], cache=cache, cache_seconds=round(cache_seconds, 2))
    if not run_phase2:
        report["phase2"] = {"skipped": "phase2_epochs or unfreeze_blocks is 0"}
        return TrainResult(classifier, class_names, report)

    # Phase 2: top blocks unfrozen at a lower learning rate, BatchNorm frozen.
    phase1_best = min(phase1[0].history["val_loss"])
    phase1_weights = classifier.get_weights()
    model_lib.freeze_for_phase(base, 2, config.unfreeze_blocks)
    if split is not None:
        with strategy.scope():
            acts = tf_keras.Input(shape=top.input_shape[1:], name="boundary_activations")
            top_model = tf_keras.Model(acts, head(top(acts, training=False)))
        phase2 = fit(top_model, "phase2", config.phase2_epochs, config.phase2_learning_rate,
                     (train_acts, train_y), (eval_acts, eval_y), examples)
    else:
        phase2 = fit(augmented, "phase2", config.phase2_epochs, config.phase2_learning_rate,
                     images(train_files, shuffle_seed=config.seed), images(eval_files), examples)
    report["phase2"] = dict(phase2[1], cache=cache if split is not None else
                            "none (images every epoch)",
                            trainable_layers=sum(bool(l.trainable_weights) for l in base.layers))
    phase2_best = min(phase2[0].history["val_loss"])
    if phase2_best > phase1_best:
        classifier.set_weights(phase1_weights)
        report["phase2"]["kept_phase1_weights"] = (
            f"phase 2's best val_loss {phase2_best:.4f} did not beat phase 1's "
            f"{phase1_best:.4f}; the phase-1 model is exported")
        logging.warning("phase 2 did not improve validation loss; keeping phase-1 weights")
    return TrainResult(classifier, class_names, report)
