"""TF Serving version directories: atomic publish, interrupted pushes, retention, rollback.

Uses a real (small) SavedModel and real processes; TF Serving's own rule for what it loads is
restated in `tf_serving_versions` (FileSystemStoragePathSource: children whose name parses as
an integer)."""
import filecmp
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from inception_retrain.serving import versions
from inception_retrain.cli import main as cli


def tf_serving_versions(base: Path):
    """The versions TF Serving would try to load: children named like an int64 (strto64 accepts
    surrounding whitespace and a sign)."""
    if not base.exists():
        return []
    return sorted(int(p.name) for p in base.iterdir()
                  if re.fullmatch(r"\s*[+-]?\d+\s*", p.name))


def tree_digest(path: Path):
    """{relative file: sha256} of a directory, to prove it was not touched."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A real SavedModel with a ~400 KB variables file (to interrupt a copy inside it)."""
    import tensorflow as tf

    class Doubler(tf.Module):
        def __init__(self):
            super().__init__()
            self.weights = tf.Variable(tf.range(100_000, dtype=tf.float32))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return {"y": 2.0 * x + 0.0 * tf.reduce_sum(self.weights)}

    path = tmp_path_factory.mktemp("saved_model") / "model"
    module = Doubler()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return path


def model_variant(saved_model: Path, tmp_path: Path, name: str) -> Path:
    """A copy of the SavedModel told apart by a file in assets.extra/."""
    variant = tmp_path / name
    shutil.copytree(saved_model, variant)
    (variant / "assets.extra").mkdir(exist_ok=True)
    (variant / "assets.extra" / "which.txt").write_text(name)
    return variant


def same_model(published: Path, source: Path) -> bool:
    """Every file of the source is in the version, byte for byte (push_record.json is added)."""
    comparison = filecmp.dircmp(source, published)
    files = [str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()]
    match, mismatch, errors = filecmp.cmpfiles(source, published, files, shallow=False)
    return comparison.left_only == [] and not mismatch and not errors and len(match) == len(files)


def test_publish_numbers_versions_and_keeps_the_newest(saved_model, tmp_path):
    base = tmp_path / "serving" / "flowers"
    published = [versions.publish(str(model_variant(saved_model, tmp_path, f"m{i}")),
                                  str(base), keep=2, source=f"candidate-{i}")
                 for i in range(1, 5)]

    assert [p.version for p in published] == [1, 2, 3, 4]
    assert [p.pruned for p in published] == [[], [], [1], [2]]
    assert tf_serving_versions(base) == [3, 4] == versions.list_versions(str(base))
    assert versions.served_version(str(base)) == 4
    assert sorted(p.name for p in base.iterdir()) == ["3", "4"], "no staging or trash left"
    assert same_model(base / "4", tmp_path / "m4")
    record = versions.read_push_record(str(base), 4)
    assert record["version"] == 4 and record["source"] == "candidate-4"
    assert record["rollback_of"] is None


def test_published_version_loads(saved_model, tmp_path):
    import tensorflow as tf

    base = tmp_path / "m"
    published = versions.publish(str(saved_model), str(base), keep=3)
    loaded = tf.saved_model.load(published.path)
    y = loaded.signatures["serving_default"](tf.constant([1.0, 2.5]))["y"].numpy()
    assert y.tolist() == [2.0, 5.0]


def test_failed_copy_leaves_served_version_alone(saved_model, tmp_path):
    base = tmp_path / "m"
    versions.publish(str(saved_model), str(base), keep=3)
    before = tree_digest(base)
    broken = model_variant(saved_model, tmp_path, "broken")
    os.mkfifo(broken / "variables" / "a_pipe")  # copytree fails on it, after copying the rest

    with pytest.raises(shutil.Error, match="a_pipe"):
        versions.publish(str(broken), str(base), keep=3)

    assert tf_serving_versions(base) == [1]
    assert tree_digest(base) == before
    assert [p.name for p in base.iterdir()] == ["1"], "the staging copy was removed"


def test_killed_push_is_invisible_to_tf_serving_and_cleaned_up(saved_model, tmp_path):
    """A writer killed mid-copy (SIGXFSZ from a file-size limit, inside the variables file)
    leaves only a dot-named staging directory; the next push removes it."""
    base = tmp_path / "m"
    versions.publish(str(saved_model), str(base), keep=3)
    before = tree_digest(base / "1")
    largest = max(p.stat().st_size for p in saved_model.rglob("*") if p.is_file())
    limit = largest // 2
    script = ("import resource, signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default\n"
              f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
              "from inception_retrain.serving import versions\n"
              "versions.publish(sys.argv[1], sys.argv[2], keep=3)\n")
    second = model_variant(saved_model, tmp_path, "second")
    killed = subprocess.run([sys.executable, "-c", script, str(second), str(base)],
                            capture_output=True, text=True)

    assert killed.returncode == -signal.SIGXFSZ, killed.stderr
    leftovers = [p for p in base.iterdir() if p.name != "1"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(versions.INCOMPLETE_PREFIX)
    partial = [p for p in leftovers[0].rglob("*") if p.is_file() and p.stat().st_size == limit]
    assert partial, "the writer died inside a file"
    assert tf_serving_versions(base) == [1]
    assert tree_digest(base / "1") == before

    nxt = versions.publish(str(second), str(base), keep=3)
    assert nxt.version == 2
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]


def test_rollback_serves_an_earlier_version_as_the_newest(saved_model, tmp_path):
    base = tmp_path / "m"
    for i in (1, 2, 3):
        versions.publish(str(model_variant(saved_model, tmp_path, f"m{i}")), str(base), keep=3,
                         source=f"candidate-{i}")

    rolled = versions.rollback(str(base), 1, keep=3)

    assert rolled.version == 4 and rolled.pruned == [1]
    assert versions.served_version(str(base)) == 4
    assert same_model(base / "4", tmp_path / "m1")
    record = versions.read_push_record(str(base), 4)
    assert record["rollback_of"] == 1 and record["source"] == "candidate-1"
    assert tf_serving_versions(base) == [2, 3, 4]


@pytest.mark.parametrize("target, message", [
    (7, r"version 7 is not under .*; available: 1, 2"),
    (2, r"version 2 is already the served version"),
])
def test_rollback_refuses_impossible_targets(saved_model, tmp_path, target, message):
    base = tmp_path / "m"
    for i in range(2):
        versions.publish(str(model_variant(saved_model, tmp_path, f"m{i}")), str(base), keep=3)
    before = tree_digest(base)
    with pytest.raises(versions.ServingDirError, match=message):
        versions.rollback(str(base), target, keep=3)
    assert tree_digest(base) == before


def test_rollback_and_publish_refuse_bad_inputs(tmp_path):
    with pytest.raises(versions.ServingDirError, match="no versions under"):
        versions.rollback(str(tmp_path / "empty"), 1, keep=3)
    (tmp_path / "not_a_model").mkdir()
    with pytest.raises(versions.ServingDirError, match="not_a_model holds no saved_model.pb"):
        versions.publish(str(tmp_path / "not_a_model"), str(tmp_path / "m"), keep=3)
    with pytest.raises(versions.ServingDirError, match="keep_versions must be at least 1"):
        versions.publish(str(tmp_path / "not_a_model"), str(tmp_path / "m"), keep=0)
    assert not (tmp_path / "m").exists()


def test_rollback_command(saved_model, tmp_path, capsys):
    base = tmp_path / "m"
    for i in (1, 2):
        versions.publish(str(model_variant(saved_model, tmp_path, f"m{i}")), str(base), keep=5)

    assert cli.main(["rollback", "--push-base", str(base), "--to", "1", "--reason",
                     "version 2 misses daisies"]) == 0
    out = capsys.readouterr().out
    assert "version 1 is served again, as version 3" in out
    assert same_model(base / "3", tmp_path / "m1")
    record = versions.read_push_record(str(base), 3)
    assert (record["rollback_of"], record["replaced"], record["reason"]) == (
        1, 2, "version 2 misses daisies")
    card = base / "model_cards" / "3.md"
    assert f"model card: {card}" in out
    assert card.read_text().startswith("# Model card: version 3 (rollback of version 1)\n")
    assert "- Reason: version 2 misses daisies\n" in card.read_text()
    assert versions.read_push_record(str(base), 2)["replaced"] == 1

    assert cli.main(["rollback", "--push-base", str(base)]) == 0
    listing = capsys.readouterr().out
    assert "(TF Serving serves the highest: 3)" in listing
    assert re.search(r"^3\s+\*\s.*rollback to version 1$", listing, re.M)

    assert cli.main(["rollback", "--push-base", str(base), "--to", "9"]) == 1
    assert "version 9 is not under" in capsys.readouterr().err


def test_object_store_publish_and_retention(saved_model, tmp_path):
    """On filesystems without atomic rename (here TensorFlow's in-memory ram://), files are
    copied into the version directory; retention works the same."""
    base = f"ram://serving-{tmp_path.name}/m"
    for i in range(3):
        model = model_variant(saved_model, tmp_path, f"m{i}")
        published = versions.publish(str(model), base, keep=2)
    assert published.version == 3 and published.pruned == [1]
    assert versions.list_versions(base) == [2, 3]
    fs = versions._GFileFs()
    expected = {str(p.relative_to(model)) for p in model.rglob("*") if p.is_file()}
    assert set(fs.files(published.path)) == expected | {versions.PUSH_RECORD}
    assert json.loads(fs.read_text(f"{published.path}/{versions.PUSH_RECORD}"))["version"] == 3


def test_object_store_publish_failing_midway_leaves_no_version(saved_model, tmp_path):
    broken = model_variant(saved_model, tmp_path, "broken")
    (broken / "variables" / "dangling").symlink_to(tmp_path / "nowhere")
    base = f"ram://serving-{tmp_path.name}/m"
    versions.publish(str(saved_model), base, keep=2)
    with pytest.raises(Exception, match="dangling"):
        versions.publish(str(broken), base, keep=2)
    assert versions.list_versions(base) == [1]
