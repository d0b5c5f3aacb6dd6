"""What each `inception-retrain` subcommand accepts, with its help text; main.py says what each
one runs. Only argparse here, so `--help` answers at once."""
import argparse

from inception_retrain.cli import output


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """The options of every subcommand that reads the configuration: its file and overrides."""
    parser.add_argument("--config", metavar="FILE", help="YAML config file (see README)")
    parser.add_argument("--data-root", metavar="DIR",
                        help="<DIR>/<class_name>/<images>; default: the embedded dataset")
    parser.add_argument("--work-dir", metavar="DIR",
                        help="pipeline outputs and metadata (default runs/local)")
    parser.add_argument("--serving-dir", metavar="DIR",
                        help="TF Serving base path (default <work-dir>/serving)")
    parser.add_argument("--base-weights", metavar="imagenet|none|FILE",
                        help="InceptionV3 base weights (default imagenet, falls back to none "
                             "offline with a warning in the summary)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="any config key, e.g. --set training.phase1_epochs=3 (repeatable)")


def add_report_args(parser: argparse.ArgumentParser) -> None:
    """The options of the subcommands that write a run report and log to the console."""
    parser.add_argument("--report-examples", type=int, default=200, metavar="N",
                        help="eval images the report classifies to show misclassified ones "
                             "(default 200; 0 = none)")
    parser.add_argument("--verbose", action="store_true",
                        help="show every TFX, Beam and TensorFlow log line on the console "
                             "(they always go to <work-dir>/logs/)")


def top_level_parser(version: str):
    """The `inception-retrain` parser (with --version) and the action subcommands join."""
    parser = argparse.ArgumentParser(
        prog="inception-retrain",
        description="Retrain InceptionV3 on folders of labeled images with TFX; push blessed "
                    "models to TF Serving.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    parser.add_argument("--verbose", dest="verbose_all", action="store_true",
                        help="before the subcommand: every library log line and warning on "
                             "the console, for any subcommand")
    return parser, parser.add_subparsers(dest="command", required=True)


def add_run_command(subparsers) -> argparse.ArgumentParser:
    """`run`: the whole pipeline locally."""
    run = subparsers.add_parser(
        "run", help="run the whole pipeline locally (LocalDagRunner)",
        description="Runs the pipeline locally, printing each component's start and end, the "
                    "ingest counts and the training epochs; ends with a summary and writes an "
                    "HTML run report under <work-dir>/reports/.")
    add_config_args(run)
    add_report_args(run)
    return run


def add_report_command(subparsers) -> argparse.ArgumentParser:
    """`report`: the HTML run report of the newest run (or a named one), or the list of runs."""
    report = subparsers.add_parser(
        "report", help="write the HTML run report (and JSON summary) for the newest run",
        description="Rebuilds <work-dir>/reports/<run id>/report.html and report.json for the "
                    "newest run recorded in <work-dir>/metadata.sqlite (or the one --run "
                    "names), and the model card of the version it pushed.")
    add_config_args(report)
    add_report_args(report)
    report.add_argument("--run", metavar="RUN_ID", dest="run_id",
                        help="the run to report on (a pipeline_run id, as the report names it); "
                             "default: the newest")
    report.add_argument("--list", dest="list_runs", action="store_true",
                        help="list the runs, newest first (id, start, verdict, accuracy, "
                             "components not complete) instead")
    report.add_argument("--rebuild", action="store_true",
                        help="write the report again even when the one written is up to date")
    output.add_output_args(report)
    return report


def add_config_command(subparsers) -> argparse.ArgumentParser:
    """`config`: the resolved configuration, checked as `run` checks it, or a full example."""
    config = subparsers.add_parser(
        "config", help="validate the configuration, check the data, print it resolved (YAML)",
        description="Validates the configuration, runs the data layout and base weights checks "
                    "`run` makes, and prints the resolved configuration as YAML (the format "
                    "--config reads).")
    add_config_args(config)
    config.add_argument("--example", action="store_true",
                        help="print a complete, commented YAML file of every key with its "
                             "default instead")
    return config


def add_schema_command(subparsers) -> argparse.ArgumentParser:
    """`schema`: a schema draft inferred from the data, diffed against the curated one."""
    schema = subparsers.add_parser(
        "schema", help="infer a schema draft from the data, for review against schema/",
        description="Ingests the data root as the pipeline does, infers a schema with TFDV, "
                    "applies the curation rules and prints the diff to the curated schema.")
    add_config_args(schema)
    schema.add_argument("--output", metavar="FILE", default="schema.draft.pbtxt",
                        help="where the draft is written (default ./schema.draft.pbtxt)")
    return schema


def add_predict_command(subparsers) -> argparse.ArgumentParser:
    """`predict`: image files or folders classified by TF Serving or a local SavedModel."""
    predict = subparsers.add_parser(
        "predict", help="classify image files or folders with TF Serving or a local model",
        description="Sends images to TF Serving (REST :predict with b64 JSON, or gRPC "
                    "PredictionService), or with --model runs a local SavedModel's "
                    "serving_default signature, and prints file, class, score and the top-k "
                    "classes (as a table, CSV or JSON lines: -o). A missing file is an error "
                    "before any model loads.")
    predict.add_argument("paths", nargs="+", metavar="FILE_OR_FOLDER")
    predict.add_argument("--model", metavar="DIR",
                         help="a local SavedModel, or a TF Serving base path (its highest "
                              "version, or --version): loaded here, no server needed")
    predict.add_argument("--protocol", choices=("rest", "grpc"), default="rest")
    predict.add_argument("--server", metavar="ADDRESS",
                         help="REST: http://host:8501 (default localhost:8501); "
                              "gRPC: host:8500 (default localhost:8500)")
    predict.add_argument("--model-name", metavar="NAME",
                         help="TF Serving model name (default: the config's model_name)")
    predict.add_argument("--version", type=int, metavar="N",
                         help="a specific version (default: the one TF Serving serves)")
    predict.add_argument("--batch-size", type=int, default=8, metavar="N",
                         help="images per request (default 8)")
    predict.add_argument("--top-k", type=int, default=3, metavar="K",
                         help="classes listed per image (default 3)")
    predict.add_argument("-o", "--format", dest="output_format", default="table",
                         choices=("table", "csv", "jsonl"),
                         help="table (default, for a person), csv (a header: path, class, "
                              "score, then class_i, score_i of the top k) or jsonl (one JSON "
                              "object per image)")
    predict.add_argument("--output", metavar="FILE",
                         help="write the predictions to FILE instead of stdout")
    predict.add_argument("--heatmap", metavar="OUT.png",
                         help="the paths are whole-slide images (or folders of them): tile "
                              "each on tissue as at ingest, classify the tiles, draw them over "
                              "the thumbnail (one colour per class, opacity by score)")
    predict.add_argument("--tiles", metavar="OUT.csv",
                         help="with whole-slide images: one row per tile (x, y, class, scores)")
    add_config_args(predict)  # the data.slide_* keys: tiles cut as at ingest
    return predict


def add_history_command(subparsers) -> argparse.ArgumentParser:
    """`history`: the runs and pushed versions the work directory records."""
    history = subparsers.add_parser(
        "history", help="the runs and pushed versions recorded in the work dir",
        description="Lists every run in <work-dir>/metadata.sqlite (date, data, examples, base "
                    "weights, eval accuracy with its 95% interval, blessed or why not, the "
                    "version it pushed) and every version under the push destination (with "
                    "its run's accuracy; * marks the one TF Serving serves).")
    add_config_args(history)
    output.add_output_args(history)
    history.add_argument("--json", dest="output_format", action="store_const", const="json",
                         help=argparse.SUPPRESS)  # the older spelling of -o json
    return history


def add_rollback_command(subparsers) -> argparse.ArgumentParser:
    """`rollback`: an earlier version served again, or the list of pushed versions."""
    rollback = subparsers.add_parser(
        "rollback", help="serve an earlier version again, or list the pushed versions",
        description="Without --to: lists the versions under the push destination. With --to N: "
                    "publishes a copy of version N as the new highest version, which TF "
                    "Serving's default (latest) policy then serves; nothing is deleted beyond "
                    "the configured retention.")
    add_config_args(rollback)
    rollback.add_argument("--push-base", metavar="DIR",
                          help="<serving_dir>/<model_name> (default: from the config)")
    rollback.add_argument("--to", type=int, metavar="VERSION",
                          help="the version to serve again")
    rollback.add_argument("--keep-versions", type=int, metavar="N",
                          help="versions kept afterwards (default: the config's keep_versions)")
    rollback.add_argument("--reason", metavar="TEXT", default="",
                          help="why (recorded with the new version and shown in its model card)")
    output.add_output_args(rollback)
    return rollback


def add_compare_command(subparsers) -> argparse.ArgumentParser:
    """`compare`: any two runs' metrics, per-class metrics and class counts side by side."""
    compare = subparsers.add_parser(
        "compare", help="metric and per-class differences of two runs",
        description="Prints the eval metrics, per-class precision and recall and the examples "
                    "per class of two runs of the work dir (ids as `report --list` shows them) "
                    "with the difference B - A, and whether they read the same input files.")
    compare.add_argument("run_a", metavar="RUN_A")
    compare.add_argument("run_b", metavar="RUN_B")
    add_config_args(compare)
    output.add_output_args(compare, limit=False)
    return compare


def add_completion_command(subparsers) -> argparse.ArgumentParser:
    """`completion`: the shell code for tab completion."""
    completion = subparsers.add_parser(
        "completion", help="print the shell code for tab completion (bash, zsh)",
        description="Prints the code that makes the shell complete inception-retrain's "
                    "subcommands and options (argcomplete); source it from your shell's rc "
                    "file.")
    completion.add_argument("shell", choices=("bash", "zsh", "fish", "tcsh"))
    return completion
