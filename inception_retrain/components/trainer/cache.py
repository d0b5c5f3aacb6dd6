"""The frozen network's outputs on disk: TFRecord shards written as they are computed and read
back as tf.data streams, so the Trainer's memory does not grow with the number of images.

One cache (e.g. "train_activations") is a set of shards <name>-NNNNN.tfrecord of one record per
image (a tf.train.Example: "x" the raw array bytes in the dtype they were computed in, "y" the
label id) and a manifest <name>.json written last (dtype, shape, count, shards, key): a cache
without its manifest is incomplete and never read. The key says what computed it (files,
image size, boundary, precision, seed, worker), so a resumed run reuses a complete cache only
when it would compute the same.

Also here: streaming feature statistics (the head's standardisation) and a progress logger
that logs every few seconds, not every batch.
"""
import json
import logging
import math
import os
import time
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

SHARD_BYTES = 64 * 2 ** 20     # one shard: a few hundred 299-px activations
SHUFFLE_BYTES = 64 * 2 ** 20   # shuffle buffer held in memory while reading, at most
INTERLEAVE = 4                 # shards read at once (in a shuffled order each epoch)
RECORD_OVERHEAD = 48           # bytes of tf.train.Example and TFRecord framing per image
# The trainer's inputs run with tf.data's autotuner off, their parallelism set here: with it
# on, deleting an iterator (at the end of each cache pass and of each Keras epoch) waited up
# to 5 s with the CPU idle: the cache build of 1,215 images took 52 s with it, 40 s without.
PARALLEL_CALLS = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count() or 1)  # a map call per core this process may use
PREFETCH_BATCHES = 2


def record_bytes(shape, dtype) -> int:
    return int(np.prod(shape)) * tf.as_dtype(dtype).size + RECORD_OVERHEAD


class Progress:
    """Logs '<what>: n/total images (p%), r images/s, ETA s' at most every `every` seconds."""

    def __init__(self, what: str, total: Optional[int], every: float = 10.0):
        self.what, self.total, self.every = what, total, every
        self.seen, self.start = 0, time.time()
        self._last = self.start

    def update(self, images: int) -> None:
        self.seen += images
        now = time.time()
        if now - self._last >= self.every:
            self._last = now
            self._log(now)

    def _log(self, now: float, final: bool = False) -> None:
        rate = self.seen / max(now - self.start, 1e-9)
        if final:
            logging.info("%s: %d images in %.1f s, %.1f images/s", self.what, self.seen,
                         now - self.start, rate)
        elif self.total:
            eta = (self.total - self.seen) / rate if rate else float("nan")
            logging.info("%s: %d/%d images (%.0f%%), %.1f images/s, ETA %.0f s", self.what,
                         self.seen, self.total, 100.0 * self.seen / self.total, rate, eta)
        else:
            logging.info("%s: %d images, %.1f images/s", self.what, self.seen, rate)

    def done(self) -> float:
        now = time.time()
        self._log(now, final=True)
        return now - self.start


class FeatureStats:
    """Per-feature count, sum and sum of squares in float64: mergeable across workers."""

    def __init__(self, dim: int):
        self.count = 0.0
        self.sum = np.zeros(dim, np.float64)
        self.sumsq = np.zeros(dim, np.float64)

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, np.float64).reshape(len(batch), -1)
        self.count += len(batch)
        self.sum += batch.sum(axis=0)
        self.sumsq += np.square(batch).sum(axis=0)

    def as_vector(self) -> np.ndarray:
        return np.concatenate([[self.count], self.sum, self.sumsq])

    @classmethod
    def from_vector(cls, vector: np.ndarray) -> "FeatureStats":
        dim = (len(vector) - 1) // 2
        stats = cls(dim)
        stats.count, stats.sum, stats.sumsq = float(vector[0]), vector[1:1 + dim], vector[1 + dim:]
        return stats

    def mean_variance(self):
        if not self.count:
            raise ValueError("no features to standardise: the training split is empty")
        mean = self.sum / self.count
        return mean, np.maximum(self.sumsq / self.count - np.square(mean), 0.0)


class Writer:
    """Appends batches of arrays and labels to TFRecord shards of about SHARD_BYTES each."""

    def __init__(self, directory: str, name: str, key: Dict):
        self.directory, self.name, self.key = directory, name, key
        self.shards: List[str] = []
        self.count, self.dtype, self.shape = 0, None, None
        self._writer, self._in_shard, self._per_shard = None, 0, 1
        tf.io.gfile.makedirs(directory)
        manifest = manifest_path(directory, name)
        if tf.io.gfile.exists(manifest):  # an older, different cache of the same name
            tf.io.gfile.remove(manifest)

    def write(self, arrays: np.ndarray, labels: np.ndarray) -> None:
        if self.dtype is None:
            self.dtype, self.shape = str(arrays.dtype), list(arrays.shape[1:])
            self._per_shard = max(1, SHARD_BYTES // record_bytes(self.shape, self.dtype))
        for array, label in zip(arrays, labels):
            if self._writer is None or self._in_shard >= self._per_shard:
                self._next_shard()
            example = tf.train.Example(features=tf.train.Features(feature={
                "x": tf.train.Feature(bytes_list=tf.train.BytesList(value=[array.tobytes()])),
                "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))}))
            self._writer.write(example.SerializeToString())
            self._in_shard += 1
            self.count += 1

    def _next_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        shard = f"{self.name}-{len(self.shards):05d}.tfrecord"
        self.shards.append(shard)
        self._writer = tf.io.TFRecordWriter(os.path.join(self.directory, shard))
        self._in_shard = 0

    def close(self) -> Dict:
        """Closes the last shard and writes the manifest; returns it."""
        if self._writer is not None:
            self._writer.close()
        manifest = {"name": self.name, "dtype": self.dtype, "shape": self.shape,
                    "count": self.count, "shards": self.shards, "key": self.key,
                    "bytes": sum(tf.io.gfile.stat(os.path.join(self.directory, s)).length
                                 for s in self.shards)}
        with tf.io.gfile.GFile(manifest_path(self.directory, self.name), "w") as f:
            json.dump(manifest, f)
        return dict(manifest, directory=self.directory)


def manifest_path(directory: str, name: str) -> str:
    return os.path.join(directory, f"{name}.json")


def read_manifest(directory: str, name: str, key: Dict) -> Optional[Dict]:
    """The manifest of a complete cache computed with `key`, else None."""
    path = manifest_path(directory, name)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        manifest = json.load(f)
    if manifest.get("key") != json.loads(json.dumps(key)) or not manifest.get("count"):
        return None
    if not all(tf.io.gfile.exists(os.path.join(directory, s)) for s in manifest["shards"]):
        return None
    return dict(manifest, directory=directory)


def dataset(manifest: Dict, batch_size: int, shuffle_seed: Optional[int] = None,
            dtype=None, repeat: bool = False) -> tf.data.Dataset:
    """(x, y) batches read from the shards. With shuffle_seed: shards in a new order each epoch,
    INTERLEAVE of them read at once, and a shuffle buffer of at most SHUFFLE_BYTES, so the
    memory it takes is bounded whatever the number of images. x is cast to dtype if given."""
    files = [os.path.join(manifest["directory"], s) for s in manifest["shards"]]
    stored, shape = tf.as_dtype(manifest["dtype"]), manifest["shape"]
    spec = {"x": tf.io.FixedLenFeature([], tf.string), "y": tf.io.FixedLenFeature([], tf.int64)}
    data = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_seed is not None:
        data = data.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
        data = data.interleave(tf.data.TFRecordDataset, cycle_length=min(INTERLEAVE, len(files)),
                               block_length=1, num_parallel_calls=1, deterministic=True)
        buffer = max(batch_size, min(manifest["count"],
                                     SHUFFLE_BYTES // record_bytes(shape, stored)))
        data = data.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    else:
        data = tf.data.TFRecordDataset(files)
    if repeat:
        data = data.repeat()

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        x = tf.reshape(tf.io.decode_raw(parsed["x"], stored), [-1] + list(shape))
        return (tf.cast(x, dtype) if dtype is not None else x), parsed["y"]

    return batched_map(data, batch_size, parse)


def batched_map(data: tf.data.Dataset, batch_size: int, fn) -> tf.data.Dataset:
    """data in batches mapped by fn, PARALLEL_CALLS at once and PREFETCH_BATCHES ahead, with
    the autotuner off (see PARALLEL_CALLS): every input of the trainer is built by this."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return (data.batch(batch_size).map(fn, num_parallel_calls=PARALLEL_CALLS)
            .prefetch(PREFETCH_BATCHES).with_options(options))


def estimate_gb(examples: int, shapes, dtype) -> float:
    return examples * sum(record_bytes(s, dtype) for s in shapes) / 1e9


def free_gb(directory: str) -> float:
    """Free space on the disk that holds directory (or its nearest existing parent)."""
    import shutil

    path = os.path.abspath(directory)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free / 1e9


def batches(total: int, batch_size: int) -> int:
    return max(1, math.ceil(total / batch_size))
