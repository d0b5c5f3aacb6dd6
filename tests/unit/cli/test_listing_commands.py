"""The listing commands through `inception-retrain` on a work dir whose ML Metadata store holds
real runs (tests/mlmd_runs.py writes them as LocalDagRunner does, StatisticsGen's files
included): `compare RUN_A RUN_B` in both formats and with an unknown id, `--limit N` on
`history`, `report --list` and `rollback`, and the run index rebuilt when it is missing or
stale. Each run's index line is what the CLI's `run` appends (history.record_run), from the
record read back from the store plus the evaluation the Evaluator would have left."""
import dataclasses
import json
import os
from pathlib import Path

import pytest
from mlmd_runs import FakeRun, write_statistics

from inception_retrain.cli import help_text
from inception_retrain.cli.help_text import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from inception_retrain.cli.main import main
from inception_retrain.pipeline import config as config_lib
from inception_retrain.run_reading import history, index_contract, reader
from inception_retrain.run_reading.record import EvaluationSection
from inception_retrain.serving import versions

PIPELINE = config_lib.PipelineConfig().pipeline_name
RUNS = {  # run id: (examples per split and class, eval accuracy, recall per class)
    "run-a": ({"train": {"daisy": 6, "roses": 5}, "eval": {"daisy": 2, "roses": 2}}, 0.5,
              {"daisy": 0.5, "roses": 0.5}),
    "run-b": ({"train": {"daisy": 8, "roses": 5}, "eval": {"daisy": 3, "roses": 2}}, 0.8,
              {"daisy": 1.0, "roses": 0.5}),
    "run-c": ({"train": {"daisy": 8, "roses": 6}, "eval": {"daisy": 3, "roses": 3}}, 0.7,
              {"daisy": 2 / 3, "roses": 2 / 3})}


def add_run(store: FakeRun, run_id: str, counts) -> None:
    """One run of ImageExampleGen and StatisticsGen (its statistics files written)."""
    if store.run.name != run_id:
        store.next_run(run_id)
    statistics = store.folder(run_id, "statistics")
    write_statistics(statistics, counts)
    store.execution("ImageExampleGen", properties={"input_base": "/data"})
    store.execution("StatisticsGen", outputs={"statistics": (str(statistics), {}, list(counts))})


def index_run(metadata_path: str, run_id: str, accuracy: float, recall) -> None:
    """The run's line in the run index, as `run` appends it: its record read from the store,
    with an evaluation."""
    record = reader.read(metadata_path, PIPELINE, run_id)
    evaluation = EvaluationSection(
        metrics={"sparse_categorical_accuracy": accuracy, "example_count": 4.0},
        per_class={name: {"top1_recall": value, "top1_precision": 0.5}
                   for name, value in recall.items()},
        baseline=None, blessed=True, failures=[], validation_ok=True)
    history.record_run(metadata_path, dataclasses.replace(record, evaluation=evaluation))


@dataclasses.dataclass
class WorkDir:
    dir: Path
    store: FakeRun   # what wrote its runs, for a later one


@pytest.fixture
def work(tmp_path):
    """A work dir with three indexed runs (a, b, c, in that order) and three versions."""
    (tmp_path / "work").mkdir()
    store = FakeRun(tmp_path / "work", pipeline=PIPELINE, run_id="run-a")
    for run_id, (counts, accuracy, recall) in RUNS.items():
        add_run(store, run_id, counts)
        index_run(store.path, run_id, accuracy, recall)
    model = tmp_path / "model"
    model.mkdir()
    base = str(tmp_path / "work" / "serving" / "inception_v3")
    for n in (1, 2, 3):
        (model / "saved_model.pb").write_bytes(b"model %d" % n)
        versions.publish(str(model), base, keep=5, source="run")
    return WorkDir(tmp_path / "work", store)


def _cli(capsys, *argv, work):
    code = main(list(argv) + ["--work-dir", str(work.dir)])
    out, err = capsys.readouterr()
    return code, out, err


def _index_lines(work):
    return (work.dir / index_contract.INDEX_FILE).read_text().splitlines()


def test_compare_prints_metric_per_class_and_count_differences_as_json(work, capsys):
    code, out, err = _cli(capsys, "compare", "run-a", "run-b", "-o", "json", work=work)
    assert (code, err) == (0, "")
    found = json.loads(out)
    assert (found["a"]["run_id"], found["b"]["run_id"]) == ("run-a", "run-b")
    accuracy = {r["name"]: r for r in found["metrics"]}["sparse_categorical_accuracy"]
    assert (accuracy["a"], accuracy["b"]) == (0.5, 0.8)
    assert accuracy["change"] == pytest.approx(0.3)
    recall = {(r["class"], r["name"]): r for r in found["per_class"]}
    assert recall["daisy", "recall"]["change"] == pytest.approx(0.5)
    assert recall["roses", "recall"]["change"] == pytest.approx(0.0)
    counts = {(r["name"], r["class"]): (r["a"], r["b"], r["change"])
              for r in found["class_counts"]}
    assert counts == {("eval", "daisy"): (2, 3, 1), ("eval", "roses"): (2, 2, 0),
                      ("train", "daisy"): (6, 8, 2), ("train", "roses"): (5, 5, 0)}


def test_compare_prints_the_same_as_a_table(work, capsys):
    code, out, err = _cli(capsys, "compare", "run-a", "run-b", work=work)
    assert (code, err) == (0, "")
    rows = [line.split() for line in out.splitlines()]
    assert ["sparse_categorical_accuracy", "0.5000", "0.8000", "0.3000"] in rows
    assert ["daisy", "recall", "0.5000", "1.0000", "0.5000"] in rows
    assert ["daisy", "train", "6", "8", "2"] in rows
    assert out.splitlines()[0].startswith("A run-a") and out.splitlines()[1].startswith("B run-b")


def test_compare_with_an_unknown_run_exits_non_zero_naming_it(work, capsys):
    code, out, err = _cli(capsys, "compare", "run-a", "run-x", work=work)
    assert code == EXIT_FAILED and out == ""
    assert err.startswith("compare error: no run 'run-x' of inception-retrain in ")


def test_limit_keeps_the_newest_entries_of_every_listing(work, capsys):
    code, out, _ = _cli(capsys, "history", "--limit", "2", "-o", "json", work=work)
    found = json.loads(out)
    assert code == 0 and [r["run_id"] for r in found["runs"]] == ["run-c", "run-b"]
    assert [v["version"] for v in found["versions"]] == [3, 2]
    code, out, _ = _cli(capsys, "history", "--limit", "1", work=work)
    assert code == 0 and "Runs (1 of 3), newest first:" in out and "run-a" not in out
    code, out, _ = _cli(capsys, "report", "--list", "--limit", "1", "-o", "json", work=work)
    assert code == 0 and [r["run_id"] for r in json.loads(out)] == ["run-c"]
    code, out, _ = _cli(capsys, "rollback", "--limit", "2", "-o", "json", work=work)
    assert code == 0 and [v["version"] for v in json.loads(out)["versions"]] == [3, 2]
    code, out, _ = _cli(capsys, "rollback", "--limit", "1", work=work)
    assert code == 0 and len([line for line in out.splitlines()[2:] if line.strip()]) == 1


def test_a_deleted_index_is_rebuilt_from_ml_metadata(work, capsys):
    os.remove(work.dir / index_contract.INDEX_FILE)
    code, out, err = _cli(capsys, "history", "-o", "json", work=work)
    assert (code, err) == (0, "")
    runs = json.loads(out)["runs"]
    assert [r["run_id"] for r in runs] == ["run-c", "run-b", "run-a"]
    assert runs[2]["class_counts"] == RUNS["run-a"][0], "read from StatisticsGen's files"
    assert runs[2]["data_root"] == "/data" and runs[2]["states"] == {
        "ImageExampleGen": "COMPLETE", "StatisticsGen": "COMPLETE"}
    assert sorted(json.loads(line)["run_id"] for line in _index_lines(work)) == [
        "run-a", "run-b", "run-c"]
    _cli(capsys, "history", "-o", "json", work=work)
    assert len(_index_lines(work)) == 3, "in step now: nothing appended again"


def test_a_run_added_to_the_store_after_the_index_is_listed_and_indexed(work, capsys):
    lines = len(_index_lines(work))
    add_run(work.store, "run-d", {"train": {"daisy": 1, "roses": 1}})  # a later run, unindexed
    code, out, _ = _cli(capsys, "report", "--list", "-o", "json", work=work)
    assert code == 0 and [r["run_id"] for r in json.loads(out)][0] == "run-d"
    added = [json.loads(line) for line in _index_lines(work)[lines:]]
    assert [line["run_id"] for line in added] == ["run-d"]
    assert added[0]["class_counts"] == {"train": {"daisy": 1, "roses": 1}}


def test_a_run_whose_executions_changed_since_its_line_is_read_again(work, capsys):
    """A run's line is stale when one of its executions was updated after it (a component
    that ends later, a state the local runner corrects): the run is read again."""
    from mlmd_runs import FAILED

    store = work.store.store
    context = store.get_context_by_type_and_name("pipeline_run", "run-b")
    (execution, *_) = store.get_executions_by_context(context.id)
    execution.last_known_state = FAILED
    store.put_executions([execution])
    code, out, _ = _cli(capsys, "history", "-o", "json", work=work)
    verdicts = {r["run_id"]: r["verdict"] for r in json.loads(out)["runs"]}
    assert code == 0 and verdicts == {"run-a": "blessed", "run-b": "failed", "run-c": "blessed"}
    assert json.loads(_index_lines(work)[-1])["run_id"] == "run-b"


# The exit codes help_text declares, for the cases each names, as the inspection commands
# return them: (argv, exit code, how stderr starts); argv runs with --work-dir of the work dir
# above ({empty}: a work dir without a store).
EXIT_CASES = [
    (["history"], EXIT_OK, ""),
    (["history", "--work-dir", "{empty}"], EXIT_FAILED, "history error: no metadata store at"),
    (["history", "--set", "training.batch_size=0"], EXIT_CONFIG,
     "config error: training.batch_size must be at least 1"),
    (["history", "--limit", "0"], EXIT_CONFIG, "usage: "),
    (["report", "--list"], EXIT_OK, ""),
    (["report", "--work-dir", "{empty}"], EXIT_FAILED, "report error: no metadata store at"),
    (["report", "--run", "run-x"], EXIT_FAILED,
     "report error: no run 'run-x' of pipeline 'inception-retrain'"),
    (["report", "--list", "--set", "nope=1"], EXIT_CONFIG, "config error: "),
    (["rollback"], EXIT_OK, ""),
    (["rollback", "--to", "7"], EXIT_FAILED, "rollback error: version 7 is not under"),
    (["rollback", "--push-base", "{empty}/none"], EXIT_FAILED, "rollback error: "),
    (["rollback", "--to", "two"], EXIT_CONFIG, "usage: "),
    (["compare", "run-a", "run-c"], EXIT_OK, ""),
    (["compare", "run-a", "run-x"], EXIT_FAILED, "compare error: no run 'run-x'"),
    (["compare", "run-a"], EXIT_CONFIG, "usage: "),
]


@pytest.mark.parametrize("argv, expected, stderr", EXIT_CASES,
                         ids=[" ".join(case[0]) for case in EXIT_CASES])
def test_the_documented_exit_codes_are_returned(work, tmp_path, capsys, argv, expected, stderr):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [arg.replace("{empty}", str(empty)) for arg in argv]
    if "--work-dir" not in argv:
        argv += ["--work-dir", str(work.dir)]
    try:
        code = main(argv)
    except SystemExit as exit:   # argparse refuses bad arguments itself
        code = exit.code
    err = capsys.readouterr().err
    assert code == expected and err.startswith(stderr), err
    assert code in help_text.COMMANDS[argv[0]][0], f"{argv[0]} --help does not list {code}"


def test_every_code_the_inspection_commands_document_is_tested():
    for command in ("history", "report", "rollback", "compare"):
        tested = {code for argv, code, _ in EXIT_CASES if argv[0] == command}
        assert set(help_text.COMMANDS[command][0]) == tested, command
