"""Two-phase InceptionV3 fine-tune and export, as plain functions testable without TFX.

Phase 1 trains a new head on a frozen base. The frozen base's pooled features are computed once
per image and the head trains on that cache (the idea of TensorFlow's classic retrain.py), so
phase-1 epochs cost milliseconds instead of a full InceptionV3 forward pass each.
Phase 2 unfreezes the top inception blocks at a lower learning rate, BatchNorm kept frozen; it
trains on the activations cached at the unfreeze boundary by the same single pass.
The caches stream to and from TFRecord shards on disk (cache.py), in the precision the network
computed them in (precision.py: bfloat16 on CPUs that have it, float16 on GPUs); memory does
not grow with the number of images. Several workers (TF_CONFIG) each cache and train on their
share of the data under MultiWorkerMirroredStrategy.
"""
import dataclasses
import logging
import os
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from inception_retrain.components import features
from inception_retrain.components.trainer import cache as cache_lib, contract, model as model_lib
from inception_retrain.components.trainer import distribute, precision as precision_lib
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

    return (dataset.batch(batch_size).map(transform, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def count_records(files: Sequence[str]) -> int:
    """Examples in gzipped TFRecord files (reads records, decodes nothing)."""
    return int(tf.data.TFRecordDataset(list(files), compression_type="GZIP")
               .reduce(np.int64(0), lambda count, _: count + 1))


def frozen_forward(bottom: tf_keras.Model, top: Optional[tf_keras.Model], image_size: int):
    """One tf.function: images -> (boundary activations, pooled features), or (pooled,) when
    top is None. A batch dimension of None: the last, partial batch does not retrace."""
    spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32)

    @tf.function(input_signature=[spec])
    def forward(images):
        outputs = bottom(images, training=False)
        if top is None:
            return (outputs,)
        return outputs, top(outputs, training=False)

    return forward


def build_cache(forward, dataset: tf.data.Dataset, directory: str, names: Sequence[str],
                key: Dict, what: str, total: Optional[int]) -> List[Dict]:
    """Runs the frozen network once over (image, label) batches and streams each output to its
    shards on disk as it comes (cache.Writer), in the dtype it was computed in. Memory holds
    one batch. Logs rate and ETA every few seconds. Returns the manifests."""
    writers = [cache_lib.Writer(directory, name, key) for name in names]
    progress = cache_lib.Progress(f"cache {what}", total)
    first = None  # (images, time) after the first batch: it pays for tracing and warm-up
    for images, labels in dataset:
        labels = labels.numpy()
        for writer, output in zip(writers, forward(images)):
            writer.write(output.numpy(), labels)
        progress.update(len(labels))
        first = first or (progress.seen, time.time())
    seconds = progress.done()
    if not progress.seen:
        raise ValueError(f"the {what} split is empty")
    manifests = [w.close() for w in writers]
    steady = time.time() - first[1]
    for m in manifests:
        m["seconds"] = round(seconds, 2)
        m["steady"] = [progress.seen - first[0], round(steady, 3)]  # images, s after batch 1
    return manifests


def feature_stats(manifest: Dict, batch_size: int) -> cache_lib.FeatureStats:
    """Mean and variance of the cached pooled features, streamed from disk."""
    stats = cache_lib.FeatureStats(int(np.prod(manifest["shape"])))
    for x, _ in cache_lib.dataset(manifest, max(batch_size, 256), dtype=tf.float32):
        stats.update(x.numpy())
    return stats


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


def _cache_dir(backup_dir: Optional[str]) -> Tuple[str, bool]:
    """(directory, reusable): beside the checkpoints on a local backup_dir, so a killed and
    resumed run reuses a complete cache; a fresh temporary directory otherwise."""
    if backup_dir and "://" not in backup_dir:
        return os.path.join(backup_dir, "cache"), True
    return tempfile.mkdtemp(prefix="inception_cache_"), False


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


def _train(train_files, eval_files, tf_transform_output, config, class_weights, backup_dir,
           log_dir, callbacks, strategy, strategy_description, worker, choice) -> TrainResult:
    class_names = [v.decode() if isinstance(v, bytes) else v for v in
                   tf_transform_output.vocabulary_by_name(features.LABEL_VOCABULARY)]
    weights, weights_description = model_lib.resolve_weights(config.base_weights)
    keras_weights = _keras_class_weight(class_names,
                                        class_weights if config.use_class_weights else None)
    loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    multi = worker["workers"] > 1
    shard = (worker["workers"], worker["index"]) if multi else None
    report = {contract.BASE_WEIGHTS: weights_description,
              contract.BASE_WEIGHTS_RANDOM: weights is None, "class_names": class_names,
              "class_weights": keras_weights,
              "strategy": f"{strategy_description}; {choice['precision']} ({choice['reason']})",
              "precision": dict(choice), "worker": worker,
              "config": dataclasses.asdict(config)}
    train_total, eval_total = count_records(train_files), count_records(eval_files)

    def images(files, shuffle_seed=None):
        return transformed_dataset(files, tf_transform_output, config.batch_size, shuffle_seed,
                                   shard=shard)

    def fit(model, phase, epochs, learning_rate, train_data, validation_data):
        with strategy.scope():
            model.compile(optimizer=_optimizer(learning_rate, epochs, train_total, config),
                          loss=loss, metrics=["accuracy"])
        steps = ({"steps_per_epoch": cache_lib.batches(train_total, config.batch_size),
                  "validation_steps": cache_lib.batches(eval_total, config.batch_size)}
                 if multi else {})
        start = time.time()
        history = model.fit(distribute.for_fit(train_data, multi), epochs=epochs,
                            validation_data=distribute.for_fit(validation_data, multi),
                            class_weight=keras_weights, verbose=0,
                            callbacks=_callbacks(phase, epochs, config, backup_dir, log_dir,
                                                 callbacks), **steps)
        result = _history(history, time.time() - start, train_total)
        result["first_epoch"] = history.epoch[0] + 1 if history.epoch else epochs + 1
        return history, result

    with strategy.scope():
        base = model_lib.build_base(config.image_size, weights)
    model_lib.freeze_for_phase(base, 1, config.unfreeze_blocks)
    run_phase2 = config.phase2_epochs > 0 and config.unfreeze_blocks > 0
    split = (model_lib.split_at_boundary(base, config.unfreeze_blocks)
             if run_phase2 and config.feature_cache else None)
    cache_dtype = precision_lib.compute_dtype(choice)
    cache_dir, reusable = _cache_dir(backup_dir) if config.feature_cache else (None, False)
    if multi and cache_dir:
        cache_dir = os.path.join(cache_dir, f"worker-{worker['index']}-of-{worker['workers']}")
    if split is not None:
        shapes = [split[0].output_shape[1:], base.output_shape[1:]]
        cache_gb = cache_lib.estimate_gb(train_total + eval_total, shapes, cache_dtype)
        room = cache_lib.free_gb(cache_dir) * 0.9
        if cache_gb > min(config.max_activation_cache_gb, room):
            logging.warning("activation cache would take %.1f GB on disk (max_activation_cache_gb"
                            "=%s, %.1f GB free at %s); phase 2 reads images every epoch instead",
                            cache_gb, config.max_activation_cache_gb, room / 0.9, cache_dir)
            split = None

    # The frozen network, once per image: boundary activations and pooled features, streamed to
    # disk. The pooled training features give the head its standardisation statistics.
    start = time.time()
    manifests: Dict[str, Dict] = {}
    if config.feature_cache:
        bottom, top = split if split is not None else (base, None)
        kinds = ["activations", "pooled"] if split is not None else ["pooled"]
        forward = frozen_forward(bottom, top, config.image_size)
        for name, files, total in (("train", train_files, train_total),
                                   ("eval", eval_files, eval_total)):
            names = [f"{name}_{kind}" for kind in kinds]
            key = {"files": sorted(files), "image_size": config.image_size,
                   "unfreeze_blocks": config.unfreeze_blocks if split is not None else None,
                   "precision": choice["precision"], "seed": config.seed,
                   "base_weights": weights_description, "worker": [worker["index"],
                                                                   worker["workers"]]}
            found = [cache_lib.read_manifest(cache_dir, n, key) for n in names] if reusable \
                else []
            if found and all(found):
                logging.info("cache %s: reusing %s (complete, same inputs)", name, cache_dir)
                built = [dict(m, reused=True) for m in found]
            else:
                built = build_cache(forward, images(files), cache_dir, names, key, name,
                                    -(-total // worker["workers"]))
            manifests.update(zip(names, built))
        stats = feature_stats(manifests["train_pooled"], config.batch_size)
        if multi:  # one standardisation for all workers: merge count, sum, sum of squares
            local = tf.constant(stats.as_vector(), tf.float64)
            stats = cache_lib.FeatureStats.from_vector(strategy.reduce(
                tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(local)),
                axis=None).numpy())
        mean, variance = stats.mean_variance()
        count = int(stats.count)
    else:
        mean, variance, count = _uncached_stats(base, images(train_files), strategy, multi)
    cache_seconds = time.time() - start

    with strategy.scope():
        head = model_lib.build_head_from_stats(len(class_names), mean, variance, count,
                                               config.dropout)
        classifier = model_lib.build_classifier(base, head)
        augment = model_lib.augmentation(config)  # None unless augment_* (then no cache)
        augmented = (classifier if augment is None
                     else model_lib.build_classifier(base, head, augment))

    if config.feature_cache:
        cache_name = (f"activations at {model_lib.boundary_layer_name(config.unfreeze_blocks)}"
                      if split is not None else "pooled features")
        images_cached = sum(m["count"] for n, m in manifests.items() if n.endswith("_pooled"))
        cache_bytes = sum(m["bytes"] for m in manifests.values())
        report["cache"] = {
            "directory": cache_dir, "dtype": cache_dtype, "images": images_cached,
            "bytes": cache_bytes, "bytes_per_image": round(cache_bytes / max(images_cached, 1)),
            "reused": all(m.get("reused", False) for m in manifests.values()),
            "build_seconds": round(sum(m.get("seconds", 0.0) for n, m in manifests.items()
                                       if n.endswith("_pooled")), 2),
            "shards": sum(len(m["shards"]) for m in manifests.values())}
        if not report["cache"]["reused"]:
            report["cache"]["images_per_second"] = round(
                images_cached / max(report["cache"]["build_seconds"], 1e-9), 2)
            steady = [m["steady"] for n, m in manifests.items()
                      if n.endswith("_pooled") and "steady" in m]
            # Without each split's first batch (tracing, warm-up): the rate to compare with a
            # bare forward pass measured after its warm-up.
            report["cache"]["steady_images_per_second"] = round(
                sum(i for i, _ in steady) / max(sum(t for _, t in steady), 1e-9), 2)
    else:
        cache_name = "none (images every epoch)"

    # Phase 1: frozen base, new head.
    if config.feature_cache:
        pooled = lambda name, seed=None: cache_lib.dataset(  # noqa: E731
            manifests[f"{name}_pooled"], config.batch_size, seed, dtype=tf.float32)
        phase1 = fit(head, "phase1", config.phase1_epochs, config.phase1_learning_rate,
                     pooled("train", config.seed), pooled("eval"))
    else:
        phase1 = fit(augmented, "phase1", config.phase1_epochs, config.phase1_learning_rate,
                     images(train_files, shuffle_seed=config.seed), images(eval_files))
    report["phase1"] = dict(phase1[1], cache=cache_name, cache_seconds=round(cache_seconds, 2))
    if not run_phase2:
        report["phase2"] = {"skipped": "phase2_epochs or unfreeze_blocks is 0"}
    else:
        # Phase 2: top blocks unfrozen at a lower learning rate, BatchNorm frozen.
        phase1_best = min(phase1[0].history["val_loss"])
        phase1_weights = classifier.get_weights()
        model_lib.freeze_for_phase(base, 2, config.unfreeze_blocks)
        if split is not None:
            top = split[1]
            with strategy.scope():
                acts = tf_keras.Input(shape=top.input_shape[1:], name="boundary_activations",
                                      dtype=cache_dtype)
                top_model = tf_keras.Model(acts, head(top(acts, training=False)))
            activations = lambda name, seed=None: cache_lib.dataset(  # noqa: E731
                manifests[f"{name}_activations"], config.batch_size, seed)
            phase2 = fit(top_model, "phase2", config.phase2_epochs, config.phase2_learning_rate,
                         activations("train", config.seed), activations("eval"))
        else:
            phase2 = fit(augmented, "phase2", config.phase2_epochs, config.phase2_learning_rate,
                         images(train_files, shuffle_seed=config.seed), images(eval_files))
        report["phase2"] = dict(phase2[1], cache=cache_name if split is not None else
                                "none (images every epoch)",
                                trainable_layers=sum(bool(l.trainable_weights)
                                                     for l in base.layers))
        phase2_best = min(phase2[0].history["val_loss"])
        if phase2_best > phase1_best:
            classifier.set_weights(phase1_weights)
            report["phase2"]["kept_phase1_weights"] = (
                f"phase 2's best val_loss {phase2_best:.4f} did not beat phase 1's "
                f"{phase1_best:.4f}; the phase-1 model is exported")
            logging.warning("phase 2 did not improve validation loss; keeping phase-1 weights")

    exported = classifier
    if choice["precision"] != "float32" or multi:
        exported = model_lib.float32_copy(classifier, config.image_size)
        report["precision"]["serving"] = serving_agreement(
            classifier, exported, base, transformed_dataset(eval_files, tf_transform_output,
                                                            AGREEMENT_IMAGES))
    else:
        report["precision"]["serving"] = {"precision": "float32",
                                          "note": "trained and served in float32"}
    if cache_dir and tf.io.gfile.exists(cache_dir):  # done: the cache is gigabytes at scale
        tf.io.gfile.rmtree(cache_dir)
    return TrainResult(exported, class_names, report)


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


def _uncached_stats(base, dataset, strategy, multi):
    """Standardisation statistics without a cache: one pass of the frozen base (streamed)."""
    stats = None
    forward = frozen_forward(base, None, base.input_shape[1])
    for images, _ in dataset:
        (pooled,) = forward(images)
        stats = stats or cache_lib.FeatureStats(pooled.shape[-1])
        stats.update(tf.cast(pooled, tf.float32).numpy())
    if multi:
        local = tf.constant(stats.as_vector(), tf.float64)
        stats = cache_lib.FeatureStats.from_vector(strategy.reduce(
            tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(local)),
            axis=None).numpy())
    mean, variance = stats.mean_variance()
    return mean, variance, int(stats.count)
