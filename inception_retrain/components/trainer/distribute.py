"""Where this process sits in the cluster TF_CONFIG describes, and the tf.distribute strategy
it trains under: several workers (MultiWorkerMirroredStrategy), several GPUs, or one device.
"""
import json
import os
from typing import Dict, Optional

import tensorflow as tf


def cluster_info(tf_config: Optional[str] = None) -> Dict:
    """This process's place in the cluster TF_CONFIG describes (what Kubeflow's training
    operator and Vertex AI inject): workers (chief included), index (the chief is 0), chief."""
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG", "")
    config = json.loads(tf_config or "{}")
    cluster, task = config.get("cluster") or {}, config.get("task") or {}
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    kind, index = task.get("type"), int(task.get("index", 0))
    if kind == "chief":
        position = 0
    elif kind == "worker":
        position = index + chiefs
    else:
        position = 0
    return {"workers": max(1, chiefs + workers), "index": position, "task": kind or "single",
            "chief": position == 0}


_STRATEGIES: Dict = {}


def select_strategy():
    """(strategy, description, cluster info). MultiWorkerMirroredStrategy when TF_CONFIG names
    more than one worker (create it before any other TensorFlow work: run_fn does), else
    MirroredStrategy across several GPUs, else the default strategy. One per TF_CONFIG."""
    info = cluster_info()
    key = os.environ.get("TF_CONFIG") or ""
    if key not in _STRATEGIES:
        gpus = tf.config.list_physical_devices("GPU")
        if info["workers"] > 1:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            description = (f"MultiWorkerMirroredStrategy over {info['workers']} workers "
                           f"(TF_CONFIG), this is {info['task']} {info['index']}")
        elif len(gpus) > 1:
            strategy = tf.distribute.MirroredStrategy()
            description = f"MirroredStrategy over {len(gpus)} GPUs"
        else:
            strategy = tf.distribute.get_strategy()
            description = "one GPU" if gpus else "CPU"
        _STRATEGIES[key] = (strategy, description)
    return _STRATEGIES[key] + (info,)


def for_fit(dataset: tf.data.Dataset, multi_worker: bool) -> tf.data.Dataset:
    """Across workers each reads its own share (sharded explicitly), repeated: fit() then runs
    a fixed number of steps, so workers with one image more or less never wait for each other."""
    if not multi_worker:
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.repeat().with_options(options)
