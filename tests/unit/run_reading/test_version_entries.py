"""A served version is credited to the run that published it, not to a later run whose Pusher
found the same model already served (that run records the version too)."""
from inception_retrain.run_reading import history
from inception_retrain.run_reading.index_contract import RunEntry
from inception_retrain.serving import versions


def _entry(run_id, started, accuracy, version=1):
    return RunEntry(run_id=run_id, started=started, data_root="/data", span=None, examples={},
                    base_weights="none", accuracy=accuracy, eval_examples=8, interval=None,
                    blessed=True, why="", pushed_version=version, reused=False,
                    training_config={}, pipeline="p", wall_seconds=None, states={},
                    class_counts={}, data_fingerprint=None)


def test_a_version_keeps_its_publishing_run_when_a_later_run_finds_it_already_served(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"x")
    base = str(tmp_path / "serving" / "m")
    versions.publish(str(model), base, keep=5, source="run")
    publisher = _entry("r1", "2026-12-01T10:00:00", 0.6)
    later = _entry("r2", "2026-12-02T10:00:00", 0.7)  # same model, "already served: version 1"
    for runs in ([publisher, later], [later, publisher]):
        (entry,) = history.version_entries(runs, base)
        assert (entry.version, entry.run_id, entry.accuracy) == (1, "r1", 0.6)
