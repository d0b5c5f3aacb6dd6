"""Two Trainer workers on loopback: MultiWorkerMirroredStrategy from TF_CONFIG, as Kubeflow's
training operator and Vertex AI inject it.

Each worker process runs the TFX run_fn on a tiny real fixture (ingested JPEGs, a Transform
graph written by tf.Transform): both cache and train on their share of the images, in step
(the same losses every epoch), and only the chief exports a model.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from inception_retrain.components.trainer import contract, standalone
from inception_retrain.pipeline import default_dataset

IMAGE_SIZE = 75
CONFIG = {"image_size": IMAGE_SIZE, "batch_size": 8, "phase1_epochs": 2, "phase2_epochs": 1,
          "base_weights": "none", "early_stopping_patience": 10, "seed": 3}

_WORKER = """
import json, sys
from types import SimpleNamespace
from inception_retrain.components.trainer import run
args = json.loads(sys.argv[1])
run.run_fn(SimpleNamespace(custom_config=args["config"], transform_output=args["transform"],
                           hyperparameters={}, train_files=[args["train"]],
                           eval_files=[args["eval"]], model_run_dir=args["model_run"],
                           serving_model_dir=args["serving"][int(sys.argv[2])]))
"""


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_together_and_the_chief_alone_exports(tmp_path,
                                                                env_with_legacy_keras):
    images = default_dataset.ensure_default_dataset(str(tmp_path / "images"),
                                                    images_per_class=6)
    paths = sorted(str(p) for p in Path(images).glob("*/*.jpg"))
    files = standalone.write_examples(
        {"train": [p for i, p in enumerate(paths) if i % 4],
         "eval": [p for i, p in enumerate(paths) if i % 4 == 0]}, images, str(tmp_path / "ex"))
    transform = standalone.write_transform_graph(files["train"], IMAGE_SIZE,
                                                 str(tmp_path / "transform"))
    model_run = tmp_path / "root" / "Trainer" / "model_run" / "7"
    # Each worker is given its own serving dir, as if it exported: only the chief's must fill.
    serving = [str(tmp_path / f"serving{i}") for i in range(2)]
    args = {"config": CONFIG, "transform": transform, "train": files["train"],
            "eval": files["eval"], "model_run": str(model_run), "serving": serving}
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(env_with_legacy_keras, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(
            [sys.executable, "-c", _WORKER, json.dumps(args), str(index)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=900)[0])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for index, (worker, output) in enumerate(zip(workers, outputs)):
        assert worker.returncode == 0, f"worker {index}:\n{output[-4000:]}"

    chief = contract.read_training_report(str(model_run))
    other = contract.read_training_report(str(model_run / "workers" / "1"))
    assert chief is not None and other is not None, "both workers must write their report"
    assert chief["worker"] == {"workers": 2, "index": 0, "task": "worker", "chief": True}
    assert other["worker"]["index"] == 1 and not other["worker"]["chief"]
    assert "MultiWorkerMirroredStrategy over 2 workers" in chief["strategy"]
    # Both took part: each cached its own share, together every image once.
    total = len(paths)
    shares = [r["cache"]["images"] for r in (chief, other)]
    assert all(shares) and sum(shares) == total, shares
    # In step: the losses are all-reduced, so both saw the same history.
    for phase in ("phase1", "phase2"):
        assert chief[phase]["history"]["loss"] == other[phase]["history"]["loss"]
        assert chief[phase]["epochs_run"] == CONFIG[f"{phase}_epochs"]
    # One model: the chief's.
    assert (Path(serving[0]) / "saved_model.pb").is_file()
    assert not os.path.exists(serving[1])
    models = [p for p in tmp_path.rglob("saved_model.pb") if "transform" not in p.parts]
    assert len(models) == 1, models  # (the Transform graph is a SavedModel too)
