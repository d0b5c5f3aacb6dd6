"""The exit codes of `inception-retrain`, declared once, and the epilog of each subcommand's
--help: the codes it can return and examples to copy. Only argparse here."""
import argparse
from typing import Dict, Sequence, Tuple

EXIT_OK = 0
EXIT_FAILED = 1       # a component, or the command, failed
EXIT_CONFIG = 2       # a config, data or argument error, before anything ran
EXIT_LOCKED = 3       # another run holds the work directory's run lock
EXIT_NOT_BLESSED = 4  # the run completed, but the gate did not bless the model: nothing pushed

MEANINGS = {
    EXIT_OK: "done",
    EXIT_FAILED: "failed (a component, a request, a missing store or run)",
    EXIT_CONFIG: "bad arguments, configuration or data, found before anything ran",
    EXIT_LOCKED: "another run holds the work directory's run lock",
    EXIT_NOT_BLESSED: "the run completed but the gate did not bless the model; nothing pushed",
}

_COMMON = (EXIT_OK, EXIT_FAILED, EXIT_CONFIG)

# {command path: (exit codes, examples)}
COMMANDS: Dict[str, Tuple[Sequence[int], Sequence[str]]] = {
    "run": ((EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED, EXIT_NOT_BLESSED), (
        "inception-retrain run",
        "inception-retrain run --data-root ~/tiles --set training.phase1_epochs=3",
        "inception-retrain run --config my.yaml --verbose")),
    "report": (_COMMON, (
        "inception-retrain report",
        "inception-retrain report --list --limit 5",
        "inception-retrain report --list -o json | jq '.[0].verdict'",
        "inception-retrain report --run 2026-12-07T13:21:35.512013")),
    "config": (_COMMON, (
        "inception-retrain config --data-root ~/tiles",
        "inception-retrain config --example > my.yaml")),
    "schema": (_COMMON, ("inception-retrain schema --data-root ~/tiles",)),
    "compile": (_COMMON, (
        "inception-retrain compile --target kfp --image registry/inception-retrain:1",)),
    "schedule": (_COMMON, (
        "inception-retrain schedule list --host http://localhost:8080",
        "inception-retrain schedule list -o json")),
    "schedule create": (_COMMON, (
        "inception-retrain schedule create --package build/kubeflow/inception-retrain-kfp.yaml "
        "--experiment nightly --cron '0 0 3 * * *'",
        "inception-retrain schedule create --package pipeline.yaml --experiment nightly "
        "--interval 24h --dry-run")),
    "schedule list": (_COMMON, (
        "inception-retrain schedule list --experiment nightly",
        "inception-retrain schedule list -o json --limit 3")),
    "schedule disable": (_COMMON, ("inception-retrain schedule disable --name nightly-run",)),
    "schedule enable": (_COMMON, ("inception-retrain schedule enable --name nightly-run",)),
    "schedule delete": (_COMMON, ("inception-retrain schedule delete --id 6f1c...",)),
    "predict": (_COMMON, (
        "inception-retrain predict --model runs/local/serving/inception_v3 tile.png",
        "inception-retrain predict --server http://localhost:8501 folder/")),
    "history": (_COMMON, (
        "inception-retrain history",
        "inception-retrain history --limit 3",
        "inception-retrain history -o json | jq '.runs[0].accuracy'")),
    "rollback": (_COMMON, (
        "inception-retrain rollback",
        "inception-retrain rollback -o json",
        "inception-retrain rollback --to 3 --reason 'v4 misses stroma'")),
    "compare": (_COMMON, (
        "inception-retrain compare RUN_A RUN_B",
        "inception-retrain compare RUN_A RUN_B -o json")),
    "completion": ((EXIT_OK,), (
        'eval "$(inception-retrain completion bash)"',
        "inception-retrain completion bash > ~/.local/share/bash-completion/completions/"
        "inception-retrain")),
}


def epilog(command: str) -> str:
    """The --help epilog of one command: its exit codes, then its examples."""
    codes, examples = COMMANDS[command]
    lines = ["exit codes:"] + [f"  {code}  {MEANINGS[code]}" for code in codes]
    lines += ["", "examples:"] + [f"  {example}" for example in examples]
    return "\n".join(lines)


class Formatter(argparse.HelpFormatter):
    """argparse's formatter, except that a text with line breaks (an epilog) is kept as
    written."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line + "\n" for line in text.splitlines())
        return super()._fill_text(text, width, indent)


def add_epilogs(subparsers, prefix: str = "") -> None:
    """Gives every subcommand under subparsers (nested ones too) its epilog."""
    for name, parser in subparsers.choices.items():
        path = f"{prefix}{name}"
        if path in COMMANDS:
            parser.epilog = epilog(path)
            parser.formatter_class = Formatter
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                add_epilogs(action, path + " ")
