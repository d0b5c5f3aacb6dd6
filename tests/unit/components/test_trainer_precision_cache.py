"""Precision by hardware (precision.py) and the on-disk cache (cache.py), without training."""
import numpy as np
import pytest
import tensorflow as tf

from inception_retrain.components.trainer import cache, precision
from inception_retrain.components.trainer.config import TrainConfig


@pytest.mark.parametrize("requested, gpus, flags, expected", [
    ("auto", 0, {"avx512f", "avx512_bf16"}, "bfloat16"),
    ("auto", 0, {"amx_bf16", "amx_tile"}, "bfloat16"),
    ("auto", 0, {"avx512f", "avx2"}, "float32"),
    ("auto", 1, set(), "float16"),
    ("auto", 2, {"avx512_bf16"}, "float16"),
    ("float32", 0, {"avx512_bf16"}, "float32"),
    ("bfloat16", 0, set(), "bfloat16"),
    ("float16", 0, set(), "float16"),
])
def test_precision_follows_the_hardware(requested, gpus, flags, expected):
    choice = precision.choose(requested, gpus, flags)
    assert choice["precision"] == expected
    assert choice["policy"] == precision.POLICIES[expected]
    assert choice["reason"]  # recorded in the report: which ran and why


def test_precision_warns_about_emulated_choices():
    assert "slower" in precision.choose("float16", 0, set())["reason"]
    assert "slower" in precision.choose("bfloat16", 0, {"avx2"})["reason"]


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16\n")
    assert {"avx512_bf16", "amx_bf16"} <= precision.cpu_flags(str(info))
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_precision_is_a_validated_setting():
    assert TrainConfig().precision == "auto"
    with pytest.raises(ValueError, match="training.precision must be one of"):
        TrainConfig(precision="int8")


def _write(tmp_path, arrays, labels, key=None):
    writer = cache.Writer(str(tmp_path), "train_pooled", key or {"k": 1})
    for start in range(0, len(arrays), 7):
        writer.write(arrays[start:start + 7], labels[start:start + 7])
    return writer.close()


def test_cache_round_trip_keeps_the_computed_dtype(tmp_path):
    arrays = tf.cast(tf.random.normal([50, 3, 3, 4], seed=1), tf.bfloat16).numpy()
    labels = np.arange(50) % 3
    manifest = _write(tmp_path, arrays, labels)
    assert manifest["dtype"] == "bfloat16" and manifest["count"] == 50
    assert manifest["bytes"] == sum((tmp_path / s).stat().st_size for s in manifest["shards"])
    # 72 bytes of bfloat16 per record (not 144 of float32) and the framing.
    assert manifest["bytes"] <= 50 * cache.record_bytes([3, 3, 4], "bfloat16")
    assert manifest["bytes"] < 50 * 3 * 3 * 4 * 4
    x, y = zip(*[(a.numpy(), b.numpy()) for a, b in cache.dataset(manifest, 16)])
    np.testing.assert_array_equal(np.concatenate(x).view(np.uint16), arrays.view(np.uint16))
    np.testing.assert_array_equal(np.concatenate(y), labels)
    shuffled = np.concatenate([b.numpy() for _, b in cache.dataset(manifest, 16, 3)])
    assert sorted(shuffled.tolist()) == sorted(labels.tolist())
    as_float = next(iter(cache.dataset(manifest, 8, dtype=tf.float32)))[0]
    assert as_float.dtype == tf.float32


def test_cache_shards_bound_the_memory_it_reads_with(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "SHARD_BYTES", 10 * 1024)
    monkeypatch.setattr(cache, "SHUFFLE_BYTES", 20 * 1024)
    arrays = np.random.RandomState(0).rand(400, 256).astype(np.float32)  # 1 KB a record
    manifest = _write(tmp_path, arrays, np.zeros(400, np.int64))
    per_shard = cache.SHARD_BYTES // cache.record_bytes([256], "float32")
    assert per_shard == 9 and len(manifest["shards"]) == -(-400 // per_shard)
    # The shuffle buffer holds what SHUFFLE_BYTES allows (19 records), not the 400 images.
    assert cache.SHUFFLE_BYTES // cache.record_bytes([256], "float32") == 19
    assert sum(len(b) for _, b in cache.dataset(manifest, 32, shuffle_seed=1)) == 400


def test_cache_reads_run_without_the_autotuner(tmp_path):
    # With tf.data's autotuner on, deleting an iterator (each epoch's end) stalled for seconds.
    manifest = _write(tmp_path, np.ones((20, 2), np.float32), np.arange(20) % 2)
    for data in (cache.dataset(manifest, 8), cache.dataset(manifest, 8, shuffle_seed=1)):
        assert data.options().autotune.enabled is False
        assert sum(len(y) for _, y in data) == 20


def test_an_incomplete_or_different_cache_is_not_reused(tmp_path):
    arrays, labels = np.ones((4, 2), np.float32), np.zeros(4, np.int64)
    _write(tmp_path, arrays, labels, {"precision": "bfloat16"})
    assert cache.read_manifest(str(tmp_path), "train_pooled", {"precision": "bfloat16"})
    assert cache.read_manifest(str(tmp_path), "train_pooled", {"precision": "float32"}) is None
    (tmp_path / "train_pooled-00000.tfrecord").unlink()
    assert cache.read_manifest(str(tmp_path), "train_pooled", {"precision": "bfloat16"}) is None


def test_feature_stats_merge_across_workers_as_one_pass():
    data = np.random.RandomState(2).normal(1e-4, 1e-6, size=(300, 5))
    parts = [cache.FeatureStats(5) for _ in range(2)]
    parts[0].update(data[:120])
    parts[1].update(data[120:])
    merged = cache.FeatureStats.from_vector(parts[0].as_vector() + parts[1].as_vector())
    mean, variance = merged.mean_variance()
    np.testing.assert_allclose(mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(variance, data.var(axis=0), rtol=1e-6)


@pytest.mark.parametrize("tf_config, expected", [
    ("", {"workers": 1, "index": 0, "task": "single", "chief": True}),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}',
     {"workers": 2, "index": 1, "task": "worker", "chief": False}),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}',
     {"workers": 2, "index": 0, "task": "worker", "chief": True}),
    ('{"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}',
     {"workers": 2, "index": 1, "task": "worker", "chief": False}),
    ('{"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     {"workers": 2, "index": 0, "task": "chief", "chief": True}),
])
def test_cluster_position_from_tf_config(tf_config, expected):
    from inception_retrain.components.trainer import distribute

    assert distribute.cluster_info(tf_config) == expected
