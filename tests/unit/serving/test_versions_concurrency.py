"""The serving directory under concurrent writers, TF Serving's own version rule, and re-pushes
(issue 13, items 2, 8 and 9). Real processes, real files; no TensorFlow needed: the version
logic never loads a model, so the models here are directories with a saved_model.pb."""
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from inception_retrain.serving import versions

PAIRS = 20
FILES_PER_MODEL = 200


def fake_model(path: Path, name: str, files: int = FILES_PER_MODEL) -> Path:
    """A SavedModel-shaped directory of `files` files told apart by which.txt."""
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"graph of " + name.encode())
    (path / "variables" / "variables.index").write_bytes(b"index of " + name.encode())
    (path / "assets.extra").mkdir()
    (path / "assets.extra" / "which.txt").write_text(name)
    for i in range(files - 3):
        (path / "variables" / f"shard-{i:04d}").write_bytes(os.urandom(2048))
    return path


def _writer(barrier, base: str, models, results) -> None:
    """One pushing process: for each pair, waits for the other writer, then publishes."""
    for model in models:
        barrier.wait(timeout=60)
        try:
            results.put((model, versions.publish(model, base, keep=10_000).version))
        except Exception as err:  # reported to the test, which fails on it
            results.put((model, f"{type(err).__name__}: {err}"))


def test_concurrent_pushes_publish_distinct_complete_versions(tmp_path):
    """Item 2: two processes push at the same moment, 20 times. Every version number is used
    once, every published version holds all its files, and each holds the model that its
    writer was told it published (a writer's staging is never deleted by the other)."""
    base = str(tmp_path / "serving" / "m")
    models = {writer: [str(fake_model(tmp_path / f"{writer}-{i}", f"{writer}-{i}"))
                       for i in range(PAIRS)] for writer in ("a", "b")}
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    writers = [context.Process(target=_writer, args=(barrier, base, models[w], results))
               for w in models]
    for process in writers:
        process.start()
    claimed = [results.get(timeout=120) for _ in range(2 * PAIRS)]
    for process in writers:
        process.join(timeout=60)
        assert process.exitcode == 0

    errors = [outcome for _, outcome in claimed if not isinstance(outcome, int)]
    assert not errors, errors
    numbers = [version for _, version in claimed]
    assert sorted(numbers) == list(range(1, 2 * PAIRS + 1)), "a version number used twice"
    assert versions.list_versions(base) == sorted(numbers)
    for model, version in claimed:
        published = Path(versions.version_path(base, version))
        assert (published / "saved_model.pb").exists(), version
        files = {p.relative_to(published) for p in published.rglob("*") if p.is_file()}
        assert len(files) == FILES_PER_MODEL + 1, version  # + the push record
        assert (published / "assets.extra" / "which.txt").read_text() == Path(model).name
    assert not [name for name in os.listdir(base) if name.startswith(".")]


@pytest.mark.parametrize("name, version", [
    ("5", 5), ("0", 0), (" 7", 7), ("8 \t", 8), ("-3", -3), ("007", 7),
    ("+4", None), ("\u0663", None), ("1_0", None), ("0x10", None), ("1.0", None), ("", None),
    ("-", None), ("9223372036854775807", 2 ** 63 - 1), ("9223372036854775808", None),
    (".incomplete-5", None), ("5a", None), ("a5", None),
])
def test_version_names_are_read_as_tf_serving_reads_them(name, version):
    """Item 8: tsl::strings::safe_strto64, as TF Serving's ParseVersionNumber calls it."""
    assert versions.tf_serving_version(name) == version


def test_a_file_named_like_a_version_is_a_version_and_non_ascii_digits_are_not(tmp_path):
    """Item 8: TF Serving takes files as well as directories; '\u0663' (Arabic-Indic three) is
    no version for it, so none for the project either."""
    base = tmp_path / "m"
    base.mkdir()
    (base / "5").write_text("not a model")
    (base / "\u0663").mkdir()
    assert versions.list_versions(str(base)) == [5]
    assert versions.served_version(str(base)) == 5
    assert not versions.is_complete(str(base), 5)
    published = versions.publish(str(fake_model(tmp_path / "x", "x", files=4)), str(base),
                                 keep=1)
    assert published.version == 6, "a new version must be above every version TF Serving sees"
    assert (base / "5").is_file() and (base / "\u0663").is_dir(), "files not ours stay"


def test_partial_versions_do_not_count_toward_retention(tmp_path):
    """Item 8: a half-copied version directory is no version to keep; good ones are kept."""
    base = tmp_path / "m"
    for i in (1, 2):
        versions.publish(str(fake_model(tmp_path / f"m{i}", f"m{i}", files=4)), str(base), keep=2)
    (base / "3").mkdir()  # partial: no saved_model.pb
    published = versions.publish(str(fake_model(tmp_path / "m4", "m4", files=4)), str(base),
                                 keep=2)
    assert published.version == 4 and published.pruned == [1]
    assert sorted(os.listdir(base)) == ["2", "3", "4"]
    assert [v for v in versions.list_versions(str(base)) if versions.is_complete(str(base), v)] \
        == [2, 4]


_KILL_AFTER_RENAME = """
import os, signal, sys
from inception_retrain.serving import versions
real_rename = os.rename
def rename_then_die(src, dst):
    real_rename(src, dst)
    if os.path.basename(dst).isdigit():
        os.kill(os.getpid(), signal.SIGKILL)
os.rename = rename_then_die
versions.publish(sys.argv[1], sys.argv[2], keep=2, source=sys.argv[3])
"""


def test_push_killed_right_after_the_rename_is_not_pushed_again(tmp_path):
    """Item 9: the rerun finds its model already served: nothing copied, nothing pruned."""
    base = tmp_path / "m"
    for i in (1, 2):
        versions.publish(str(fake_model(tmp_path / f"m{i}", f"m{i}", files=4)), str(base),
                         keep=2, source=f"trainer/model/{i}")
    candidate = fake_model(tmp_path / "m3", "m3", files=4)
    killed = subprocess.run([sys.executable, "-c", _KILL_AFTER_RENAME, str(candidate),
                             str(base), "trainer/model/3"], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert versions.list_versions(str(base)) == [1, 2, 3], "killed before pruning"

    rerun = versions.publish(str(candidate), str(base), keep=2, source="trainer/model/3")
    assert rerun.already_served and rerun.version == 3 and rerun.pruned == []
    assert versions.list_versions(str(base)) == [1, 2, 3]

    other = versions.publish(str(fake_model(tmp_path / "m4", "m4", files=4)), str(base),
                             keep=2, source="trainer/model/4")
    assert not other.already_served and other.version == 4 and other.pruned == [1, 2]


def test_push_refused_when_the_served_version_changed_since_the_gate(tmp_path):
    """Item 3, at push time: compare and swap against the version the gate compared with."""
    base = tmp_path / "m"
    versions.publish(str(fake_model(tmp_path / "m1", "m1", files=4)), str(base), keep=5)
    versions.publish(str(fake_model(tmp_path / "m2", "m2", files=4)), str(base), keep=5)
    candidate = str(fake_model(tmp_path / "m3", "m3", files=4))
    with pytest.raises(versions.ServedVersionChanged,
                       match="serves version 2 now, but the gate compared the candidate with "
                             "version 1: nothing pushed"):
        versions.publish(candidate, str(base), keep=5, check_served=True, expect_served=1)
    assert versions.list_versions(str(base)) == [1, 2]
    assert versions.publish(candidate, str(base), keep=5, check_served=True,
                            expect_served=2).version == 3
    with pytest.raises(versions.ServedVersionChanged, match="compared the candidate with nothing"):
        versions.publish(str(fake_model(tmp_path / "m5", "m5", files=4)), str(base), keep=5,
                         check_served=True, expect_served=None)
