"""The frozen part of the network, run once per image: its outputs cached on disk for both phases
(cache.py's shards), and the head's standardisation statistics from its pooled features.

Across workers each caches its own share of the data, and the statistics are merged so that
every worker standardises alike.
"""
import dataclasses
import logging
import os
import shutil
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from inception_retrain.components.trainer import cache as cache_lib
from inception_retrain.components.trainer import precision as precision_lib
from inception_retrain.components.trainer.config import TrainConfig


@dataclasses.dataclass
class FrozenFeatures:
    """The frozen network's outputs: the split at the unfreeze boundary when phase 2 trains on
    cached activations (else None), the caches' manifests and place, and the statistics that
    standardise the head's input."""
    split: Optional[Tuple[tf_keras.Model, tf_keras.Model]]
    manifests: Dict[str, Dict]
    directory: Optional[str]
    dtype: str
    mean: np.ndarray
    variance: np.ndarray
    count: int
    seconds: float
    temporary: bool = False   # a fresh temporary directory (not beside checkpoints to resume)

    def dataset(self, name: str, batch_size: int, shuffle_seed: Optional[int] = None,
                dtype=None) -> tf.data.Dataset:
        """Batches of the cache `name` (e.g. "train_pooled") read back from disk."""
        return cache_lib.dataset(self.manifests[name], batch_size, shuffle_seed, dtype=dtype)


def compute(base: tf_keras.Model, split, config: TrainConfig, *, choice: Dict, worker: Dict,
            strategy, backup_dir: Optional[str], weights_description: str,
            splits: Sequence[Tuple[str, Sequence[str], int]],
            images: Callable[[Sequence[str]], tf.data.Dataset]) -> FrozenFeatures:
    """Runs the frozen network once per image and caches its outputs (feature_cache on), or
    only takes the head's statistics from it (off: the phases read the images every epoch).

    split: (bottom, top) at the unfreeze boundary, to cache the activations there for phase 2
    (dropped when they would not fit on disk), or None; splits: ("train", files, total) and
    ("eval", ...); images(files): this worker's share of their (image, label id) batches."""
    multi = worker["workers"] > 1
    dtype = precision_lib.compute_dtype(choice)
    directory, reusable = (_cache_location(backup_dir, worker)
                           if config.feature_cache else (None, False))
    if split is not None and not _activations_fit(split, base, dtype, directory,
                                                  sum(total for _, _, total in splits),
                                                  config.max_activation_cache_gb):
        split = None

    # The frozen network, once per image: boundary activations and pooled features, streamed to
    # disk. The pooled training features give the head its standardisation statistics.
    start = time.time()
    try:
        manifests, (mean, variance, count) = _frozen_pass(
            base, split, config, dtype, directory, reusable, choice, worker, strategy,
            weights_description, images, splits)
    except BaseException:
        if directory and not reusable:  # nothing can reuse a half-built temporary cache
            shutil.rmtree(os.path.dirname(directory) if multi else directory,
                          ignore_errors=True)
        raise
    return FrozenFeatures(split, manifests, directory, dtype, mean, variance, count,
                          time.time() - start, temporary=bool(directory) and not reusable)


def _frozen_pass(base, split, config, dtype, directory, reusable, choice, worker, strategy,
                 weights_description, images, splits):
    """compute()'s pass over the images: (the caches' manifests, the head's statistics)."""
    multi = worker["workers"] > 1
    manifests: Dict[str, Dict] = {}
    if config.feature_cache:
        bottom, top = split if split is not None else (base, None)
        key_settings = {"image_size": config.image_size,
                        "unfreeze_blocks": config.unfreeze_blocks if split is not None else None,
                        "precision": choice["precision"], "seed": config.seed,
                        "base_weights": weights_description,
                        "worker": [worker["index"], worker["workers"]]}
        manifests = _cache_splits(frozen_forward(bottom, top, config.image_size),
                                  ["activations", "pooled"] if split is not None else ["pooled"],
                                  splits, images, directory, reusable, key_settings,
                                  worker["workers"])
        return manifests, _cached_standardisation(manifests["train_pooled"],
                                                  config.batch_size, strategy, multi)
    train_files = next(files for name, files, _ in splits if name == "train")
    return manifests, _uncached_standardisation(base, images(train_files), strategy, multi)


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


def _cache_location(backup_dir: Optional[str], worker: Dict) -> Tuple[str, bool]:
    """(directory, reusable): beside the checkpoints on a local backup_dir, so a killed and
    resumed run reuses a complete cache; a fresh temporary directory otherwise. Each worker
    of several has its own subdirectory, as each caches its own share."""
    if backup_dir and "://" not in backup_dir:
        directory, reusable = os.path.join(backup_dir, "cache"), True
    else:
        directory, reusable = tempfile.mkdtemp(prefix="inception_cache_"), False
    if worker["workers"] > 1:
        directory = os.path.join(directory, f"worker-{worker['index']}-of-{worker['workers']}")
    return directory, reusable


def _activations_fit(split, base: tf_keras.Model, dtype: str, directory: str, examples: int,
                    max_gb: float) -> bool:
    """Whether the boundary activations and pooled features of `examples` images stay under
    max_gb and 90% of the free disk at directory; logs why phase 2 reads images when not."""
    shapes = [split[0].output_shape[1:], base.output_shape[1:]]
    cache_gb = cache_lib.estimate_gb(examples, shapes, dtype)
    room = cache_lib.free_gb(directory) * 0.9
    if cache_gb > min(max_gb, room):
        logging.warning("activation cache would take %.1f GB on disk (max_activation_cache_gb"
                        "=%s, %.1f GB free at %s); phase 2 reads images every epoch instead",
                        cache_gb, max_gb, room / 0.9, directory)
        return False
    return True


def _cache_splits(forward, kinds: Sequence[str], splits: Sequence[Tuple[str, Sequence[str], int]],
                 images: Callable[[Sequence[str]], tf.data.Dataset], directory: str,
                 reusable: bool, key_settings: Dict, workers: int) -> Dict[str, Dict]:
    """{"<split>_<kind>": manifest} for each (split, files, total): a complete cache computed
    from the same files and key_settings is reused when reusable, else built from images(files)
    (this worker's share: total / workers images)."""
    manifests: Dict[str, Dict] = {}
    for name, files, total in splits:
        names = [f"{name}_{kind}" for kind in kinds]
        key = {"files": sorted(files), **key_settings}
        found = [cache_lib.read_manifest(directory, n, key) for n in names] if reusable else []
        if found and all(found):
            logging.info("cache %s: reusing %s (complete, same inputs)", name, directory)
            built = [dict(m, reused=True) for m in found]
        else:
            built = build_cache(forward, images(files), directory, names, key, name,
                                -(-total // workers))
        manifests.update(zip(names, built))
    return manifests


def feature_stats(manifest: Dict, batch_size: int) -> cache_lib.FeatureStats:
    """Mean and variance of the cached pooled features, streamed from disk."""
    stats = cache_lib.FeatureStats(int(np.prod(manifest["shape"])))
    for x, _ in cache_lib.dataset(manifest, max(batch_size, 256), dtype=tf.float32):
        stats.update(x.numpy())
    return stats


def _standardisation(stats: cache_lib.FeatureStats, strategy, multi: bool):
    """(mean, variance, count) for the head; across workers from all of theirs (counts, sums
    and sums of squares added up), so that every worker standardises alike."""
    if multi:
        local = tf.constant(stats.as_vector(), tf.float64)
        stats = cache_lib.FeatureStats.from_vector(strategy.reduce(
            tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(local)),
            axis=None).numpy())
    mean, variance = stats.mean_variance()
    return mean, variance, int(stats.count)


def _cached_standardisation(manifest: Dict, batch_size: int, strategy, multi: bool):
    """The head's standardisation statistics from the cached pooled training features."""
    return _standardisation(feature_stats(manifest, batch_size), strategy, multi)


def _uncached_standardisation(base: tf_keras.Model, dataset: tf.data.Dataset, strategy,
                             multi: bool):
    """Standardisation statistics without a cache: one pass of the frozen base (streamed)."""
    stats = None
    forward = frozen_forward(base, None, base.input_shape[1])
    for images, _ in dataset:
        (pooled,) = forward(images)
        stats = stats or cache_lib.FeatureStats(pooled.shape[-1])
        stats.update(tf.cast(pooled, tf.float32).numpy())
    return _standardisation(stats, strategy, multi)


def cache_report(manifests: Dict[str, Dict], directory: str, dtype: str) -> Dict:
    """The training report's "cache": where, in what dtype, its size, whether reused, and the
    rate it was built at (also without each split's first batch)."""
    images_cached = sum(m["count"] for n, m in manifests.items() if n.endswith("_pooled"))
    cache_bytes = sum(m["bytes"] for m in manifests.values())
    report = {
        "directory": directory, "dtype": dtype, "images": images_cached,
        "bytes": cache_bytes, "bytes_per_image": round(cache_bytes / max(images_cached, 1)),
        "reused": all(m.get("reused", False) for m in manifests.values()),
        "build_seconds": round(sum(m.get("seconds", 0.0) for n, m in manifests.items()
                                   if n.endswith("_pooled")), 2),
        "shards": sum(len(m["shards"]) for m in manifests.values())}
    if not report["reused"]:
        report["images_per_second"] = round(images_cached / max(report["build_seconds"], 1e-9),
                                            2)
        steady = [m["steady"] for n, m in manifests.items()
                  if n.endswith("_pooled") and "steady" in m]
        # Without each split's first batch (tracing, warm-up): the rate to compare with a bare
        # forward pass measured after its warm-up.
        report["steady_images_per_second"] = round(
            sum(i for i, _ in steady) / max(sum(t for _, t in steady), 1e-9), 2)
    return report
