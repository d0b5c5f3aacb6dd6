"""A finished run read back from a non-local URI scheme: the flowers run's artifacts copied to
TensorFlow's ram:// filesystem and its metadata store pointed at them. Every reader goes through
the file-access layer (components/artifact_files.py, tf.io.gfile), so the record is the one read
from local disk, and a plain `open` of an artifact URI fails the test instead of silently losing
class counts or anomalies (as it would on a gs:// pipeline root)."""
import builtins
import io
import json
import os
import shutil
import sqlite3

import pytest

from inception_retrain.components.artifact_files import json_safe
from inception_retrain.run_reading import reader
from inception_retrain.run_reading.record import RunReport
from inception_retrain.run_rendering import page

REMOTE_ROOT = "ram://object-store-reading/pipeline_root"


def _copy_tree_to(local_root: str, remote_root: str) -> None:
    import tensorflow as tf

    for folder, _, files in os.walk(local_root):
        target = remote_root + folder[len(local_root):]
        tf.io.gfile.makedirs(target)
        for name in files:
            with open(os.path.join(folder, name), "rb") as source, \
                    tf.io.gfile.GFile(f"{target}/{name}", "wb") as copy:
                copy.write(source.read())


@pytest.fixture()
def remote_run(flowers_run, tmp_path):
    """(local store, store whose artifact URIs are under ram://, the local pipeline root)."""
    config = flowers_run.config
    local_root = os.path.abspath(config.pipeline_root)
    _copy_tree_to(local_root, REMOTE_ROOT)
    store = str(tmp_path / "metadata.sqlite")
    shutil.copy(config.metadata_path, store)
    with sqlite3.connect(store) as db:
        moved = db.execute("UPDATE Artifact SET uri = ? || substr(uri, ?) WHERE uri LIKE ?",
                           (REMOTE_ROOT, len(local_root) + 1, local_root + "%")).rowcount
    assert moved > 10
    return config.metadata_path, store, local_root


def differences(local, remote, path="record"):
    """Where two JSON values differ: one line per differing leaf."""
    if isinstance(local, dict) and isinstance(remote, dict):
        return [line for key in sorted(set(local) | set(remote), key=str)
                for line in differences(local.get(key), remote.get(key), f"{path}.{key}")]
    if isinstance(local, list) and isinstance(remote, list) and len(local) == len(remote):
        return [line for i, (a, b) in enumerate(zip(local, remote))
                for line in differences(a, b, f"{path}[{i}]")]
    return [] if local == remote else [f"{path}: local {local!r:.200} ram {remote!r:.200}"]


def _refusing_plain_open(real_open):
    def checked(file, *args, **kwargs):
        if isinstance(file, str) and file.startswith("ram://"):
            raise AssertionError(f"plain open of an artifact URI: {file}")
        return real_open(file, *args, **kwargs)
    return checked


def test_a_run_on_a_non_local_scheme_reads_as_the_same_record(remote_run, flowers_run,
                                                              monkeypatch):
    local_store, remote_store, local_root = remote_run
    name = flowers_run.config.pipeline_name
    local = reader.read(local_store, name)
    monkeypatch.setattr(builtins, "open", _refusing_plain_open(builtins.open))
    monkeypatch.setattr(io, "open", _refusing_plain_open(io.open))
    remote = reader.read(remote_store, name)

    # NaN (the precision of a class never predicted) is no value: compared as null
    remote_dict = json.loads(json.dumps(json_safe(remote.to_dict())).replace(REMOTE_ROOT,
                                                                            local_root))
    assert differences(json_safe(local.to_dict()), remote_dict) == []
    data = remote.data
    assert data.class_counts and set(data.class_counts["train"]) == set(flowers_run.classes)
    assert data.anomalies == [] and data.report_text and data.split
    assert remote.evaluation is not None and remote.evaluation.metrics
    assert remote.evaluation.uri.startswith(REMOTE_ROOT)
    assert remote.training is not None and remote.training.phases
    html = page.render_html(RunReport(record=remote, generated_at="now", metadata_path="",
                                      pipeline_root=""))
    assert "Split" in html and all(c in html for c in flowers_run.classes)
