"""Two-phase InceptionV3 fine-tune and export, as plain functions testable without TFX.

Phase 1 trains a new head on a frozen base. The frozen base's pooled features are computed once
per image and the head trains on that cache (the idea of TensorFlow's classic retrain.py), so
phase-1 epochs cost milliseconds instead of a full InceptionV3 forward pass each.
Phase 2 unfreezes the top inception blocks at a lower learning rate, BatchNorm kept frozen; it
trains on the activations cached at the unfreeze boundary by the same single pass
(frozen_features.py). The caches stream to and from TFRecord shards on disk (cache.py), in the
precision the network computed them in (precision.py: bfloat16 on CPUs that have it, float16 on
GPUs); memory does not grow with the number of images. Several workers (TF_CONFIG) each cache
and train on their share of the data under MultiWorkerMirroredStrategy.
"""
import dataclasses
import logging
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from inception_retrain.components import features
from inception_retrain.components.trainer import cache as cache_lib
from inception_retrain.components.trainer import contract, distribute, frozen_features
from inception_retrain.components.trainer import model as model_lib
from inception_retrain.components.trainer import precision as precision_lib
from inception_retrain.components.trainer import step_progress
from inception_retrain.components.trainer.config import TrainConfig
from inception_retrain.components.trainer.frozen_features import FrozenFeatures

NO_CACHE = "none (images every epoch)"  # what a phase that reads the images trains on


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
                        batch_size: int, shuffle_seed: Optional[int] = None,
                        shard: Optional[Tuple[int, int]] = None) -> tf.data.Dataset:
    """Raw tf.Examples -> (image, label id) batches, through the Transform graph.

    shard=(n, i): only every n-th record from the i-th (a worker's share of the data)."""
    raw_spec = tf_transform_output.raw_feature_spec()
    dataset = tf.data.TFRecordDataset(list(files), compression_type="GZIP")
    if shard is not None and shard[0] > 1:
        dataset = dataset.shard(*shard)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(2048, seed=shuffle_seed, reshuffle_each_iteration=True)

    def transform(serialized):
        raw = tf.io.parse_example(serialized, raw_spec)
        xf = tf_transform_output.transform_raw_features(raw, drop_unused_features=True)
        return xf[features.TRANSFORMED_IMAGE_KEY], xf[features.TRANSFORMED_LABEL_KEY]

    return cache_lib.batched_map(dataset, batch_size, transform)


def count_records(files: Sequence[str]) -> int:
    """Examples in gzipped TFRecord files (reads records, decodes nothing)."""
    return int(tf.data.TFRecordDataset(list(files), compression_type="GZIP")
               .reduce(np.int64(0), lambda count, _: count + 1))


class EpochProgress(tf_keras.callbacks.Callback):
    """Logs each epoch of a phase with its metrics, elapsed time and an ETA for the phase, and
    within an epoch a line every step_progress.INTERVAL_SECONDS (steps, images/s, ETAs)."""

    def __init__(self, phase: str, epochs: int, steps: Optional[int] = None, images: int = 0,
                 interval: float = step_progress.INTERVAL_SECONDS):
        super().__init__()
        self._supports_tf_logs = True  # the batch hook reads no metrics: no per-step sync
        self._phase, self._epochs, self._start = phase, epochs, None
        self._steps = step_progress.StepProgress(phase, epochs, steps, images, interval)

    def on_train_begin(self, logs=None):
        self._start = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self._steps.epoch_begin(epoch, time.monotonic())

    def on_train_batch_end(self, batch, logs=None):
        line = self._steps.step_end(batch + 1, time.monotonic())
        if line:
            logging.info("%s", line)

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
               log_dir: Optional[str], extra: Sequence = (), images: int = 0):
    callbacks = [tf_keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True),
        EpochProgress(phase, epochs, cache_lib.batches(images, config.batch_size), images)]
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


def train(train_files: Sequence[str], eval_files: Sequence[str],
          tf_transform_output: tft.TFTransformOutput, config: TrainConfig,
          class_weights: Optional[Dict[str, float]] = None,
          backup_dir: Optional[str] = None, log_dir: Optional[str] = None,
          callbacks: Sequence = ()) -> TrainResult:
    """Runs phase 1 (new head on a frozen base) and phase 2 (top blocks unfrozen).

    With feature_cache on, the frozen part of the network runs once per image: when phase 2
    will run, images go through the blocks below the unfreeze boundary once and both phases
    train on those activations; otherwise on the pooled features. The outputs stream to TFRecord
    shards on disk and back (cache.py), so memory stays flat as the data grows. With it off
    (required for augmentation, whose images differ every epoch), every epoch reads the images.
    The network computes in training.precision (precision.py); the returned classifier, the one
    exported, is float32. backup_dir makes a killed phase resume; log_dir receives TensorBoard
    logs.
    """
    tf_keras.utils.set_random_seed(config.seed)
    strategy, strategy_description, worker = distribute.select_strategy()
    choice = precision_lib.choose(config.precision, len(tf.config.list_physical_devices("GPU")),
                                  precision_lib.cpu_flags())
    previous_policy = tf_keras.mixed_precision.global_policy()
    precision_lib.apply(choice)
    logging.info("precision %s: %s", choice["precision"], choice["reason"])
    try:
        return _train(train_files, eval_files, tf_transform_output, config, class_weights,
                      backup_dir, log_dir, callbacks, strategy, strategy_description, worker,
                      choice)
    finally:
        tf_keras.mixed_precision.set_global_policy(previous_policy)


@dataclasses.dataclass
class _Run:
    """What the steps of one train() call share: its inputs, settings, strategy and sizes."""
    train_files: Sequence[str]
    eval_files: Sequence[str]
    tf_transform_output: tft.TFTransformOutput
    config: TrainConfig
    strategy: tf.distribute.Strategy
    worker: Dict
    choice: Dict
    class_weight: Optional[Dict[int, float]]
    backup_dir: Optional[str]
    log_dir: Optional[str]
    callbacks: Sequence
    train_total: int
    eval_total: int

    @property
    def multi(self) -> bool:
        return self.worker["workers"] > 1

    @property
    def runs_phase2(self) -> bool:
        return self.config.phase2_epochs > 0 and self.config.unfreeze_blocks > 0

    def images(self, files: Sequence[str], shuffle_seed: Optional[int] = None):
        """(image, label id) batches of files: this worker's share when there are several."""
        shard = (self.worker["workers"], self.worker["index"]) if self.multi else None
        return transformed_dataset(files, self.tf_transform_output, self.config.batch_size,
                                   shuffle_seed, shard=shard)

    def fit(self, model, phase: str, epochs: int, learning_rate: float, train_data,
            validation_data):
        """Compiles and trains model for one phase: (Keras history, the phase's report)."""
        config, multi = self.config, self.multi
        loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        with self.strategy.scope():
            model.compile(optimizer=_optimizer(learning_rate, epochs, self.train_total, config),
                          loss=loss, metrics=["accuracy"])
        steps = ({"steps_per_epoch": cache_lib.batches(self.train_total, config.batch_size),
                  "validation_steps": cache_lib.batches(self.eval_total, config.batch_size)}
                 if multi else {})
        start = time.time()
        history = model.fit(distribute.for_fit(train_data, multi), epochs=epochs,
                            validation_data=distribute.for_fit(validation_data, multi),
                            class_weight=self.class_weight, verbose=0,
                            callbacks=_callbacks(phase, epochs, config, self.backup_dir,
                                                 self.log_dir, self.callbacks,
                                                 self.train_total), **steps)
        result = _history(history, time.time() - start, self.train_total)
        result["first_epoch"] = history.epoch[0] + 1 if history.epoch else epochs + 1
        return history, result


@dataclasses.dataclass
class _Networks:
    """The base, the new head, the classifier of both (what is exported) and the classifier
    that trains on images (with the augmentation layers in front, when configured)."""
    base: tf_keras.Model
    head: tf_keras.Model
    classifier: tf_keras.Model
    augmented: tf_keras.Model


def _train(train_files, eval_files, tf_transform_output, config, class_weights, backup_dir,
           log_dir, callbacks, strategy, strategy_description, worker, choice) -> TrainResult:
    """train()'s steps under the chosen precision: the frozen features, the networks on them,
    phase 1, phase 2 and the float32 model to export, each recorded in the report."""
    class_names = [v.decode() if isinstance(v, bytes) else v for v in
                   tf_transform_output.vocabulary_by_name(features.LABEL_VOCABULARY)]
    weights, weights_description = model_lib.resolve_weights(config.base_weights)
    keras_weights = _keras_class_weight(class_names,
                                        class_weights if config.use_class_weights else None)
    report = {contract.BASE_WEIGHTS: weights_description,
              contract.BASE_WEIGHTS_RANDOM: weights is None, "class_names": class_names,
              "class_weights": keras_weights,
              "strategy": f"{strategy_description}; {choice['precision']} ({choice['reason']})",
              "precision": dict(choice), "worker": worker,
              "config": dataclasses.asdict(config)}
    run = _Run(train_files, eval_files, tf_transform_output, config, strategy, worker, choice,
               keras_weights, backup_dir, log_dir, callbacks, count_records(train_files),
               count_records(eval_files))
    with strategy.scope():
        base = model_lib.build_base(config.image_size, weights)
    model_lib.freeze_for_phase(base, 1, config.unfreeze_blocks)
    split = (model_lib.split_at_boundary(base, config.unfreeze_blocks)
             if run.runs_phase2 and config.feature_cache else None)
    frozen = frozen_features.compute(
        base, split, config, choice=choice, worker=worker, strategy=strategy, backup_dir=backup_dir,
        weights_description=weights_description, images=run.images,
        splits=(("train", train_files, run.train_total), ("eval", eval_files, run.eval_total)))
    finished = False
    try:
        networks = _networks(run, base, frozen, len(class_names))
        if config.feature_cache:
            report["cache"] = frozen_features.cache_report(frozen.manifests, frozen.directory,
                                                           frozen.dtype)
        phase1_history, report["phase1"] = _phase1(run, networks, frozen)
        report["phase2"] = (_phase2(run, networks, frozen, phase1_history) if run.runs_phase2
                            else {"skipped": "phase2_epochs or unfreeze_blocks is 0"})
        exported, report["precision"]["serving"] = _for_serving(run, networks)
        finished = True
    finally:
        # The cache is gigabytes at scale: gone when done, and on a failure unless it sits
        # beside the checkpoints, where a resumed run reuses it.
        if frozen.directory and (finished or frozen.temporary) and tf.io.gfile.exists(
                frozen.directory):
            tf.io.gfile.rmtree(frozen.directory)
    return TrainResult(exported, class_names, report)


def _networks(run: _Run, base: tf_keras.Model, frozen: FrozenFeatures,
              num_classes: int) -> _Networks:
    """The new head, standardised by the frozen features' statistics, and the classifiers
    built of it and the base."""
    with run.strategy.scope():
        head = model_lib.build_head_from_stats(num_classes, frozen.mean, frozen.variance,
                                               frozen.count, run.config.dropout)
        classifier = model_lib.build_classifier(base, head)
        augment = model_lib.augmentation(run.config)  # None unless augment_*, stain_jitter
        augmented = (classifier if augment is None
                     else model_lib.build_classifier(base, head, augment))
    return _Networks(base, head, classifier, augmented)


def _cache_name(config: TrainConfig, split) -> str:
    """What phase 1 trains on (phase 2 too, when split), as the report names it."""
    if not config.feature_cache:
        return NO_CACHE
    if split is not None:
        return f"activations at {model_lib.boundary_layer_name(config.unfreeze_blocks)}"
    return "pooled features"


def _phase1(run: _Run, networks: _Networks, frozen: FrozenFeatures):
    """Phase 1, a new head on the frozen base: (Keras history, the phase's report)."""
    config = run.config
    if config.feature_cache:
        history, result = run.fit(
            networks.head, "phase1", config.phase1_epochs, config.phase1_learning_rate,
            frozen.dataset("train_pooled", config.batch_size, config.seed, dtype=tf.float32),
            frozen.dataset("eval_pooled", config.batch_size, dtype=tf.float32))
    else:
        history, result = run.fit(
            networks.augmented, "phase1", config.phase1_epochs, config.phase1_learning_rate,
            run.images(run.train_files, shuffle_seed=config.seed), run.images(run.eval_files))
    return history, dict(result, cache=_cache_name(config, frozen.split),
                         cache_seconds=round(frozen.seconds, 2))


def _phase2(run: _Run, networks: _Networks, frozen: FrozenFeatures, phase1_history) -> Dict:
    """Phase 2, top blocks unfrozen at a lower learning rate, BatchNorm frozen: the phase's
    report. Keeps the phase-1 weights when it does not beat phase 1's validation loss."""
    config, base, head = run.config, networks.base, networks.head
    phase1_best = min(phase1_history.history["val_loss"])
    phase1_weights = networks.classifier.get_weights()
    model_lib.freeze_for_phase(base, 2, config.unfreeze_blocks)
    if frozen.split is not None:
        top = frozen.split[1]
        with run.strategy.scope():
            acts = tf_keras.Input(shape=top.input_shape[1:], name="boundary_activations",
                                  dtype=frozen.dtype)
            top_model = tf_keras.Model(acts, head(top(acts, training=False)))
        history, result = run.fit(
            top_model, "phase2", config.phase2_epochs, config.phase2_learning_rate,
            frozen.dataset("train_activations", config.batch_size, config.seed),
            frozen.dataset("eval_activations", config.batch_size))
    else:
        history, result = run.fit(
            networks.augmented, "phase2", config.phase2_epochs, config.phase2_learning_rate,
            run.images(run.train_files, shuffle_seed=config.seed), run.images(run.eval_files))
    report = dict(result, cache=(_cache_name(config, frozen.split) if frozen.split is not None
                                 else NO_CACHE),
                  trainable_layers=sum(bool(l.trainable_weights) for l in base.layers))
    phase2_best = min(history.history["val_loss"])
    if phase2_best > phase1_best:
        networks.classifier.set_weights(phase1_weights)
        report["kept_phase1_weights"] = (
            f"phase 2's best val_loss {phase2_best:.4f} did not beat phase 1's "
            f"{phase1_best:.4f}; the phase-1 model is exported")
        logging.warning("phase 2 did not improve validation loss; keeping phase-1 weights")
    return report


def _for_serving(run: _Run, networks: _Networks) -> Tuple[tf_keras.Model, Dict]:
    """The model to export, float32 throughout, and how far its scores are from the trained
    model's (report["precision"]["serving"]): the training/serving skew."""
    if run.choice["precision"] != "float32" or run.multi:
        exported = model_lib.float32_copy(networks.classifier, run.config.image_size)
        return exported, serving_agreement(
            networks.classifier, exported, networks.base,
            transformed_dataset(run.eval_files, run.tf_transform_output, AGREEMENT_IMAGES))
    return networks.classifier, {"precision": "float32",
                                 "note": "trained and served in float32"}


AGREEMENT_IMAGES = 32  # eval images both precisions score after training (one batch)


def serving_agreement(trained: tf_keras.Model, served: tf_keras.Model, trained_base,
                      dataset: tf.data.Dataset) -> Dict:
    """What the exported float32 model computes against the training-precision model, on the
    first eval images: relative error of the pooled features, largest score difference, top-1
    agreement. Recorded in the report: the training/serving skew, measured on every run."""
    images, _ = next(iter(dataset))
    served_base, served_head = served.layers[1], served.get_layer("head")
    # Each network once: the base's features, then the (float32) head on them.
    low = tf.cast(trained_base(images, training=False), tf.float32)
    high = served_base(images, training=False)
    low_scores = tf.nn.softmax(trained.get_layer("head")(low, training=False)).numpy()
    high_scores = tf.nn.softmax(served_head(high, training=False)).numpy()
    low, high = low.numpy(), high.numpy()
    return {"precision": "float32", "images": int(len(images)),
            "feature_relative_error": float(np.linalg.norm(low - high)
                                            / max(np.linalg.norm(high), 1e-30)),
            "max_score_difference": float(np.abs(low_scores - high_scores).max()),
            "top1_agreement": float(np.mean(low_scores.argmax(-1) == high_scores.argmax(-1)))}
