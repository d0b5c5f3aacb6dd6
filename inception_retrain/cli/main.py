"""`inception-retrain`: the one command line. Heavy imports (TFX, TensorFlow) happen only inside
the subcommands that need them, so `--help`, config checks and the listings answer at once.
PYTHON_ARGCOMPLETE_OK (argcomplete completes what this parser accepts)."""
import argparse
import contextlib
import logging
import os
import sys
from typing import List, Optional

from inception_retrain.cli import arguments, help_text, quiet
from inception_retrain.components.image_example_gen.ingest import LayoutError
from inception_retrain.pipeline import config as config_lib


def _load_config(args) -> config_lib.PipelineConfig:
    overrides = config_lib.parse_overrides(args.overrides)
    flat = {("data", "root"): args.data_root, ("work_dir",): args.work_dir,
            ("serving_dir",): args.serving_dir, ("training", "base_weights"): args.base_weights}
    for path, value in flat.items():
        if value is not None:
            target = overrides
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = value
    return config_lib.load(args.config, overrides)


# Exit codes: declared in help_text (each --help lists its own).
EXIT_FAILED = help_text.EXIT_FAILED
EXIT_CONFIG = help_text.EXIT_CONFIG
EXIT_LOCKED = help_text.EXIT_LOCKED
EXIT_NOT_BLESSED = help_text.EXIT_NOT_BLESSED


def package_version() -> str:
    """This package's version (setup.py), as installed."""
    from importlib import metadata

    try:
        return metadata.version("inception-retrain")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def not_blessed_advice(record) -> str:
    """What to do next after a run whose model the gate did not bless."""
    evaluation = record.evaluation
    first = evaluation.failures[0] if evaluation and evaluation.failures else "a threshold failed"
    return ("[run] NOT BLESSED: " + first + ". Nothing was pushed; the served model is "
            "unchanged.\n[run] next: open the report's \"Blessing decision\" and \"Candidate "
            "against the served model\" sections; add or fix training images of the weak "
            "classes, or train longer (training.phase1_epochs, phase2_epochs); change a "
            "threshold (evaluation.*) only knowingly. Exit code "
            f"{EXIT_NOT_BLESSED}.")


def _cmd_run(args) -> int:
    from inception_retrain.pipeline import local_runner, run_lock

    config = _load_config(args)
    with _held_log_records() as preflight_records:  # nothing created before the checks pass
        data_root = local_runner.preflight(config)
        local_runner.make_work_dir(config.work_dir)
    with contextlib.ExitStack() as stack:
        try:  # before any log file: a refused run writes nothing and reads no other run
            stack.enter_context(run_lock.run_lock(config.work_dir))
        except run_lock.RunLockedError as err:
            print(f"run error: {err}", file=sys.stderr)
            return EXIT_LOCKED
        local_runner.make_work_dir(config.work_dir, "logs")
        return _locked_run(args, config, data_root, preflight_records)


def _locked_run(args, config, data_root: str, preflight_records) -> int:
    """The run, its summary and its report, under the work directory's run lock."""
    from inception_retrain.cli import progress
    from inception_retrain.pipeline import local_runner

    failure = None
    run_id = local_runner.new_run_id()
    with progress.RunProgress(progress.default_log_path(config.work_dir), args.verbose,
                              metadata_path=config.metadata_path,
                              pipeline_name=config.pipeline_name) as tracker:
        for record in preflight_records:  # into the run's log (and console) after all
            logging.getLogger().handle(record)
        tracker.echo(f"[run] data: {data_root}\n[run] work dir: {config.work_dir}\n"
                     "[run] loading TFX and TensorFlow (about a minute on a cold start)")
        # ML Metadata: after the checks
        from inception_retrain.run_reading import reader
        from inception_retrain.run_rendering import summary
        try:
            quiet.keras_messages_to_log(args.verbose)
            seconds = local_runner.run(config, data_root, progress=tracker, run_id=run_id)
        except Exception as err:  # a component failed; the summary and report show what ran
            tracker.failed(err)
            failure, seconds = err, None
        try:  # this run's record: none when it failed before its first component
            record = reader.read(config.metadata_path, config.pipeline_name, run_id,
                                 work_dir=config.work_dir) if tracker.components_started else None
        except FileNotFoundError:
            record = None
        if record is not None:
            _index_run(config, record)
            tracker.echo(summary.render(record, seconds))
            tracker.echo("[run] report: " + _write_report(
                config, record, args.report_examples, tracker.log_path,
                f"{type(failure).__name__}: {failure}" if failure else "", tracker.echo))
    print(f"[run] full log: {tracker.log_path}")
    if failure is not None:
        print(f"\n[run] FAILED: {failure}", file=sys.stderr)
        return EXIT_FAILED
    if record is not None and record.evaluation is not None and not record.evaluation.blessed:
        print("\n" + not_blessed_advice(record), file=sys.stderr)
        return EXIT_NOT_BLESSED
    return 0


def _index_run(config, record) -> None:
    """Appends the run's line to the run index (history, report --list): logged, never fatal,
    as the next listing rebuilds a missing line from ML Metadata."""
    from inception_retrain.run_reading import history

    try:
        history.record_run(config.metadata_path, record)
    except (OSError, ValueError) as err:
        logging.getLogger(__name__).warning("run index not written: %s", err)


@contextlib.contextmanager
def _held_log_records():
    """Holds the log records emitted inside (the preflight's), for the run's log file that is
    opened only once the preflight has passed; if it fails, they go where logging went."""
    root = logging.getLogger()
    held: List[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = held.append
    saved = root.handlers[:]
    root.handlers = [handler]
    try:
        yield held
    except BaseException:
        root.handlers = saved
        for record in held:
            root.handle(record)
        raise
    root.handlers = saved


def _write_report(config, record, max_examples: int, log_path: str, failure: str,
                  echo=print) -> str:
    """Writes the HTML report (and the model card of a pushed version); returns its path, or
    why there is none: a broken report must not hide the outcome of the run."""
    from inception_retrain.run_rendering import report

    if max_examples:
        echo(f"[run] writing the report (classifying up to {max_examples} eval images for "
             "the misclassified thumbnails)")
    try:
        files = report.build(config, record, failure=failure, log_path=log_path,
                             max_examples=max_examples)
    except Exception as err:  # logged with its traceback; the run's outcome stands
        logging.getLogger(__name__).warning("report failed", exc_info=True)
        return f"not written ({type(err).__name__}: {err}; traceback in {log_path})"
    if files.model_card:
        echo(f"[run] model card: {files.model_card}")
    return files.html


def _cmd_report(args) -> int:
    from inception_retrain.cli import listing, progress
    from inception_retrain.run_rendering import report

    config = _load_config(args)
    if not os.path.exists(config.metadata_path):
        print(f"report error: no metadata store at {config.metadata_path}; run the pipeline "
              "first or pass the --work-dir of a run", file=sys.stderr)
        return 1
    if args.list_runs:
        return listing.report_list(args, config)
    if not args.rebuild:
        current = listing.current_report(config, args.run_id)
        if current is not None:
            print(f"report: {current} (up to date: no run changed since it was written; "
                  "--rebuild writes it again)")
            return 0
    with progress.RunProgress(progress.default_log_path(config.work_dir, "report"),
                              args.verbose):
        try:
            files = report.build(config, max_examples=args.report_examples, run_id=args.run_id)
        except FileNotFoundError as err:
            print(f"report error: {err}", file=sys.stderr)
            return 1
    print(f"report: {files.html}\nsummary for machines: {files.json}")
    if files.model_card:
        print(f"model card: {files.model_card}")
    return 0


def _cmd_config(args) -> int:
    if args.example:
        from inception_retrain.pipeline import config_reference

        print(config_reference.example_yaml(), end="")
        return 0
    from inception_retrain.pipeline import local_runner

    config = _load_config(args)
    with _read_only_data(config) as checked:  # the data and weights checks `run` makes
        data_root = local_runner.preflight(checked)
        where = ("the embedded default dataset" if checked is not config
                 else f"data layout under {data_root}")
    print(config_lib.to_yaml(config), end="")
    print(f"# checked: {where}; base weights {config.training.base_weights}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _read_only_data(config):
    """config itself when it names a data root; else config with the embedded default
    dataset's root: the work dir's copy if a run wrote it, or a temporary one (nothing is
    written under the work dir or the current folder by a command that only reads)."""
    if config.data.root:
        yield config
        return
    import dataclasses

    from inception_retrain.pipeline import default_dataset

    with default_dataset.read_only_copy(config.work_dir) as root:
        yield dataclasses.replace(config, data=dataclasses.replace(config.data, root=root))


def _cmd_predict(args) -> int:
    from inception_retrain.cli import predict_command

    return predict_command.run(args, _load_config)


def _cmd_history(args) -> int:
    from inception_retrain.cli import listing  # ml_metadata: not for --help

    return listing.history(args, _load_config(args))


def _cmd_compare(args) -> int:
    from inception_retrain.cli import listing

    return listing.compare(args, _load_config(args))


def _cmd_completion(args) -> int:
    """`completion bash|zsh`: the shell code that completes inception-retrain (argcomplete)."""
    import argcomplete

    print(argcomplete.shellcode(["inception-retrain"], shell=args.shell), end="")
    return 0


def _cmd_rollback(args) -> int:
    from inception_retrain.cli import listing
    from inception_retrain.components import artifact_files
    from inception_retrain.serving import versions

    config = _load_config(args)
    base = args.push_base or config.push_base
    if not artifact_files.isdir(base):
        print(f"rollback error: {base} does not exist: nothing was pushed there (pass "
              "--push-base <serving dir>/<model name>, or the --work-dir or --serving-dir of "
              "the runs that pushed)", file=sys.stderr)
        return EXIT_FAILED
    try:
        if args.to is None:
            return listing.rollback_listing(args, config, base)
        keep = args.keep_versions or config.keep_versions
        published = versions.rollback(base, args.to, keep, reason=args.reason)
    except versions.ServingDirError as err:
        print(f"rollback error: {err}", file=sys.stderr)
        return 1
    print(f"version {args.to} is served again, as version {published.version} "
          f"({published.path}); removed old versions: {published.pruned or 'none'}")
    from inception_retrain.run_rendering import rollback_card

    try:  # the rollback stands without its card
        print(f"model card: {rollback_card.write(base, published.version)}")
    except (OSError, ValueError) as err:
        print(f"rollback warning: no model card written for version {published.version}: "
              f"{err}", file=sys.stderr)
    return 0


def _cmd_schema(args) -> int:
    import tempfile

    from inception_retrain.components.image_example_gen import schema_draft
    from inception_retrain.pipeline.pipeline import default_schema_path

    config = _load_config(args)
    options = config.data.ingest_options()
    with _read_only_data(config) as checked, tempfile.TemporaryDirectory() as work_dir:
        data_root = checked.data.root
        schema = schema_draft.draft_schema(data_root, work_dir, config.data.input_pattern,
                                           config.data.split_folders, options)
        diff = schema_draft.write_and_diff(schema, args.output, default_schema_path(),
                                           config.data.root or "the embedded default dataset")
    print(diff or "the draft matches the curated schema")
    print(f"[schema] draft written to {args.output}; the pipeline validates against "
          f"{default_schema_path()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line: each subcommand's arguments (arguments.py) and the handler it runs."""
    parser, sub = arguments.top_level_parser(package_version())
    arguments.add_run_command(sub).set_defaults(func=_cmd_run)
    arguments.add_report_command(sub).set_defaults(func=_cmd_report)
    arguments.add_config_command(sub).set_defaults(func=_cmd_config)
    arguments.add_schema_command(sub).set_defaults(func=_cmd_schema)
    # compile, schedule (light imports only)
    from inception_retrain.cli import kubeflow_commands

    kubeflow_commands.register(sub, arguments.add_config_args, _load_config)
    arguments.add_predict_command(sub).set_defaults(func=_cmd_predict)
    arguments.add_history_command(sub).set_defaults(func=_cmd_history)
    arguments.add_rollback_command(sub).set_defaults(func=_cmd_rollback)
    arguments.add_compare_command(sub).set_defaults(func=_cmd_compare)
    arguments.add_completion_command(sub).set_defaults(func=_cmd_completion)
    help_text.add_epilogs(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    import argcomplete

    argcomplete.autocomplete(parser)  # only when the shell asks for completions
    args = parser.parse_args(argv)
    with quiet.apply(getattr(args, "verbose", False) or args.verbose_all):
        try:
            return args.func(args)
        except config_lib.ConfigError as err:
            print(f"config error: {err}", file=sys.stderr)
            return EXIT_CONFIG
        except LayoutError as err:
            print(f"data error: {err}", file=sys.stderr)
            return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
