"""Issue 13, items 1 and 14, with real failure injections through the command line on one small
work dir (75 px images): a corrupt base weights file makes the Trainer fail, then a read-only
serving dir makes the Pusher fail. Each failed run ends with a summary and an HTML report that
name the failed component with its error and show everything that ran before it; the served
model is untouched; `report --run` rebuilds the report of either run, `report --list` lists
them; the log file holds the progress lines and the summary, and report.json names it."""
import contextlib
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import write_class_images
from inception_retrain.cli import main as cli

QUICK = ["--set", "training.image_size=75", "--set", "training.phase1_epochs=1",
         "--set", "training.phase2_epochs=0", "--set", "training.batch_size=8",
         "--set", "data.min_examples_per_class=1", "--set", "evaluation.accuracy_floor=0",
         "--set", "evaluation.baseline=none", "--report-examples", "0",
         # a few images per class: below the default minimum evidence for a blessing
         "--set", "evaluation.min_eval_examples_per_class=1",
         "--set", "evaluation.min_eval_groups_per_class=1"]


@contextlib.contextmanager
def read_only(path: Path):
    """path refuses new entries, also to root (chattr +i), else by its mode."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root and chattr +i is not available here")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(mode)


def _tree(path: Path):
    """What TF Serving could serve under path: every file and folder but the split ledger
    (a record of the data's split, which an ingest updates before any later step fails)."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(path.rglob("*"))
            if not p.name.endswith(".split_ledger.json")}


def _run(argv, capsys):
    code = cli.main(["run", *argv])
    out, err = capsys.readouterr()
    lines = dict(line.split(": ", 1) for line in out.splitlines()
                 if line.startswith("[run] ") and ": " in line)
    return code, out, err, lines


def _check_failed_run(component, out, lines):
    """The failed component with its error: console progress, summary, report, report.json,
    and the log file; returns the report's data."""
    error = re.search(rf"\] {component} FAILED after [0-9.]+ s: (.+)", out).group(1)
    assert f"FAILED: {component}: {error}" in out, out
    assert "Traceback" not in out and "KeyError" not in out
    html_path = Path(lines["[run] report"])
    data = json.loads((html_path.parent / "report.json").read_text())
    assert data["verdict"] == {"status": "bad", "text": f"Failed at {component}: {error}"}
    states = {c["component"]: c["state"] for c in data["summary"]["components"]}
    assert states[component] == "FAILED"
    assert all(state in ("COMPLETE", "CACHED") for node, state in states.items()
               if node != component), states
    assert f"Failed at {component}: " in html_path.read_text()
    assert data["log_path"] == lines["[run] full log"]
    log = Path(data["log_path"]).read_text()
    assert f"] {component} FAILED after" in log and "Run summary:" in log
    assert f"FAILED: {component}: {error}" in log and "    examples: train " in log
    return data


def test_trainer_and_pusher_failures_end_with_summary_and_report(tmp_path, capsys):
    """Items 1 and 14: failed runs (Trainer, then Pusher) get a summary and a report naming the
    component and its error; the served model stays as it was."""
    data_root = write_class_images(tmp_path / "data", {"a": 8, "b": 8, "c": 8})
    work, serving = tmp_path / "work", tmp_path / "serving"
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not an HDF5 file")
    common = ["--data-root", str(data_root), "--work-dir", str(work), *QUICK]

    code, out, err, lines = _run(common + ["--base-weights", str(corrupt)], capsys)
    assert code == 1, out + err
    first = _check_failed_run("Trainer", out, lines)
    assert "Examples per split and class:" in out, "what ran before the Trainer is shown"
    assert first["summary"]["training"] is None

    served = serving / "inception_v3"
    (served / "1" / "variables").mkdir(parents=True)
    (served / "1" / "saved_model.pb").write_bytes(b"the served model")
    before = _tree(serving)
    with read_only(served):
        code, out, err, lines = _run(common + ["--base-weights", "none", "--serving-dir",
                                               str(serving)], capsys)
    assert code == 1, out + err
    second = _check_failed_run("Pusher", out, lines)
    assert "Training phase1:" in out and "Evaluation (eval split):" in out
    assert "Pushed: no (the run ended before the Pusher finished" in out
    assert second["summary"]["evaluation"]["blessed"] is True
    assert _tree(serving) == before, "a failed run leaves the served model untouched"
    assert second["model_card"] is None

    # Either run again, by its id; and the list of runs.
    assert cli.main(["report", "--work-dir", str(work), "--run", first["run"]["run_id"]]) == 0
    out = capsys.readouterr().out
    again = json.loads(Path(out.split("summary for machines: ")[1].split()[0]).read_text())
    assert again["verdict"] == first["verdict"] and again["log_path"] == first["log_path"]
    assert cli.main(["report", "--work-dir", str(work), "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[:3] == ["RUN", "STARTED", "VERDICT"]  # the table's header
    assert [line.split()[0] for line in listed[1:]] == [second["run"]["run_id"],
                                                        first["run"]["run_id"]]  # newest first
    assert "Trainer FAILED" in listed[2] and "Pusher FAILED" in listed[1]
