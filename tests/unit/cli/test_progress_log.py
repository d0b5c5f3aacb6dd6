"""Issue 14: the log file the README calls complete lacked the progress lines, the ingest counts
and the run summary; and two runs started in the same second wrote into one log file."""
import logging
import os

from inception_retrain.cli import progress


def test_log_names_are_unique_within_a_second(tmp_path):
    """Item 14: log names carry microseconds and the pid."""
    first, second = (progress.default_log_path(str(tmp_path)) for _ in range(2))
    assert first != second
    assert os.path.basename(first).startswith("run-")
    assert first.endswith(f"-{os.getpid()}.log")


def test_progress_lines_counts_and_summary_go_into_the_log_file(tmp_path, capsys):
    """Item 14: every console line of a run is in its log file too."""
    log = tmp_path / "logs" / "run.log"
    with progress.RunProgress(str(log)) as tracker:
        tracker.begin(["ImageExampleGen", "Trainer"])
        logging.getLogger("absl").info(progress.RUNNING_TEMPLATE, "ImageExampleGen")
        logging.getLogger("absl").info(progress.FINISHED_TEMPLATE, "ImageExampleGen")
        logging.getLogger("absl").info("TFX detail only the log shows")
        tracker.echo("Run summary: p\n  examples: train 21")
    console, text = capsys.readouterr().out, log.read_text()
    for line in ("pipeline of 2 components: ImageExampleGen, Trainer",
                 "[1/2] ImageExampleGen started", "[1/2] ImageExampleGen done in",
                 "Run summary: p\n  examples: train 21\n"):
        assert line in console and line in text, line
    assert "TFX detail only the log shows" in text and "TFX detail" not in console
