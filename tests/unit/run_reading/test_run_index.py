"""The run index file: appended lines read back as entries, the last line of a run wins, a torn
or foreign-schema line is skipped (that run then counts as not indexed), other pipelines' lines
are left out."""
import json

from inception_retrain.run_reading import index_contract
from inception_retrain.run_reading.index_contract import RunEntry


def _entry(run_id, started, accuracy=0.5, pipeline="p", **kwargs):
    return RunEntry(run_id=run_id, started=started, data_root="/d", span=None, examples={},
                    base_weights=None, accuracy=accuracy, eval_examples=10,
                    interval=(0.2, 0.8), blessed=True, why="", pushed_version=1, reused=False,
                    pipeline=pipeline, states={"Pusher": "COMPLETE"}, **kwargs)


def test_lines_round_trip_newest_line_of_a_run_wins_and_bad_lines_are_skipped(tmp_path):
    path = str(tmp_path / index_contract.INDEX_FILE)
    assert index_contract.read_index(path, "p") is None
    index_contract.append(path, [_entry("b", "2026-01-02"), _entry("a", "2026-01-01")])
    index_contract.append(path, [_entry("b", "2026-01-02", accuracy=0.9),
                                 _entry("x", "2026-01-03", pipeline="other")])
    with open(path, "a") as f:
        f.write(json.dumps({"schema": 99, "run_id": "c", "pipeline": "p"}) + "\n")
        f.write('{"schema": 1, "run_id": "d", "pipel')  # torn by a crash mid-write
    entries = index_contract.read_index(path, "p")
    assert [(e.run_id, e.accuracy) for e in entries] == [("a", 0.5), ("b", 0.9)]
    assert entries[0].interval == (0.2, 0.8) and entries[0].verdict == "pushed"


def test_an_entry_missing_newer_fields_still_reads(tmp_path):
    path = tmp_path / index_contract.INDEX_FILE
    path.write_text(json.dumps({"schema": 1, "run_id": "old", "pipeline": "p"}) + "\n")
    (entry,) = index_contract.read_index(str(path), "p")
    assert entry.run_id == "old" and entry.blessed is None and entry.verdict == "stopped"


def test_a_class_never_predicted_is_indexed_with_a_null_precision(tmp_path):
    """TFMA gives NaN precision for a class the model never predicts (common on tiny eval
    splits); the run's line is still written, with null there."""
    path = str(tmp_path / index_contract.INDEX_FILE)
    index_contract.append(path, [_entry("a", "2026-01-01", per_class={
        "daisy": {"top1_precision": float("nan"), "top1_recall": 0.0}})])
    (entry,) = index_contract.read_index(path, "p")
    assert entry.per_class == {"daisy": {"top1_precision": None, "top1_recall": 0.0}}
