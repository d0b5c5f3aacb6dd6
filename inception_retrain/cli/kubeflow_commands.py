"""`inception-retrain compile` and `inception-retrain schedule create|list|disable|enable|delete`.

Only argparse here: TFX is imported by the compile handler after every check passed, kfp by the
schedule handlers, so `--help` answers at once.
"""
import argparse
import dataclasses
import os
import re
import sys
import warnings
from typing import Callable

from inception_retrain.cli import output
from inception_retrain.kubeflow import targets

_INTERVAL = re.compile(r"(\d+)([smhd]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _interval(text: str) -> int:
    match = _INTERVAL.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected seconds, or a number with s, m, h or d (e.g. 86400 or 24h), got {text!r}")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def _cmd_compile(args, load_config: Callable) -> int:
    config = load_config(args)
    if args.beam_args:
        config = dataclasses.replace(config, beam_args=config.beam_args + tuple(args.beam_args))
    target = targets.TARGETS[args.target]
    options = targets.CompileOptions(
        target=args.target,
        output=args.output or os.path.join(
            "build", "kubeflow", f"{config.pipeline_name}-{args.target}"
            f"{target.extension}"),
        image=args.image, trainer_image=args.trainer_image or "", gpu_type=args.gpu_type or "",
        resources=targets.parse_resources(args.resources),
        schema_path=args.schema_path or targets.IMAGE_SCHEMA_PATH,
        volumes=targets.parse_volumes(args.volumes), kfp_version=args.kfp_version)
    with warnings.catch_warnings(record=True) as caught:  # shown whatever the quiet filters
        warnings.simplefilter("always", UserWarning)
        targets.check(config, options)  # before TFX is imported: a bad request costs nothing
    for warning in caught:
        if issubclass(warning.category, (targets.UntestedBackendWarning,
                                         targets.NoExitTaskWarning)):
            print(f"[compile] warning: {warning.message}", flush=True)
    print(f"[compile] {args.target}: importing TFX (about a minute on a cold start)", flush=True)
    from inception_retrain.kubeflow import compile as compile_lib

    compiled = compile_lib.compile_pipeline(config, options)
    tasks = ", ".join(compiled.tasks)
    print(f"[compile] wrote {compiled.path}\n[compile] tasks: {tasks}\n"
          f"[compile] runtime parameters (defaults):")
    for name, value in compiled.defaults.items():
        print(f"  {name} = {value}")
    return 0


def _add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", metavar="URL",
                        help="KFP API endpoint, e.g. http://localhost:8080 after `kubectl "
                             "port-forward svc/ml-pipeline-ui`; default: $KF_PIPELINES_ENDPOINT, "
                             "else in-cluster or kube config (as kfp.Client)")
    parser.add_argument("--namespace", metavar="NS",
                        help="Kubernetes namespace (multi-user Kubeflow)")
    parser.add_argument("--token-file", metavar="FILE",
                        help="bearer token file, re-read on each request (e.g. a projected "
                             "service-account token)")


def _client(args):
    from inception_retrain.kubeflow import schedule

    return schedule.connect(args.host, args.namespace, args.token_file)


def _api_errors(handler: Callable) -> Callable:
    """Runs a schedule handler; a KFP API error, or no server reachable, becomes one line and
    exit code 1."""
    def run(args) -> int:
        import logging

        import kfp_server_api
        import urllib3

        # urllib3 logs each retry of an unreachable host, kfp.Client warns about the server
        # versions it supports on every connect: noise around the one line below.
        logging.getLogger("urllib3.connectionpool").addFilter(
            lambda record: not record.getMessage().startswith("Retrying"))
        warnings.filterwarnings("ignore", message="This client only works with Kubeflow",
                                category=FutureWarning)
        try:
            return handler(args)
        except kfp_server_api.ApiException as err:
            print(f"KFP API error {err.status} {err.reason}: {(err.body or '').strip()}",
                  file=sys.stderr)
            return 1
        except (urllib3.exceptions.HTTPError, OSError) as err:  # refused, DNS, timeout, TLS
            reason = getattr(err, "reason", None) or err
            print(f"schedule error: cannot reach Kubeflow Pipelines at "
                  f"{args.host or os.environ.get('KF_PIPELINES_ENDPOINT') or 'the default host'}"
                  f": {_last_line(reason)} (give --host or KF_PIPELINES_ENDPOINT)",
                  file=sys.stderr)
            return 1
    return run


def _last_line(error) -> str:
    """The innermost reason urllib3 wraps (NewConnectionError in MaxRetryError), one line."""
    text = str(error)
    if "Failed to establish a new connection: " in text:
        text = text.split("Failed to establish a new connection: ", 1)[1].rstrip("')")
    return text.splitlines()[-1] if text else type(error).__name__


def _cmd_schedule_create(args) -> int:
    from inception_retrain.kubeflow import schedule

    plan = schedule.make_plan(
        args.package, args.experiment, cron=args.cron, interval_seconds=args.interval,
        param_assignments=args.params, pipeline_name=args.pipeline_name,
        version_name=args.version_name, run_name=args.name, pipeline_root=args.pipeline_root,
        namespace=args.namespace, service_account=args.service_account)
    if args.dry_run:
        print("[schedule] dry run: nothing is sent\n" + schedule.describe(plan))
        return 0
    created = schedule.create(plan, _client(args))
    print(f"[schedule] pipeline {plan.pipeline_name} ({created.pipeline_id}"
          f"{', new' if created.new_pipeline else ''}), version {created.version_id}"
          f"{' (new)' if created.new_version else ''}\n"
          f"[schedule] experiment {plan.experiment} ({created.experiment_id})\n"
          f"[schedule] recurring run {plan.run_name} ({created.recurring_run_id}): "
          f"{plan.cron and 'cron ' + plan.cron or f'every {plan.interval_seconds} s'}, "
          f"max concurrency 1, no catch-up")
    return 0


_SCHEDULE_COLUMNS = (("ID", "id"), ("NAME", "name"), ("MODE", "mode"), ("TRIGGER", "trigger"),
                     ("MAX_CONC", "max_concurrency"),
                     ("CATCHUP", lambda row: "yes" if row["catchup"] else "no"),
                     ("PIPELINE_VERSION", "pipeline_version"))


def _cmd_schedule_list(args) -> int:
    from inception_retrain.kubeflow import schedule

    rows = output.newest_first(
        schedule.run_rows(schedule.list_runs(_client(args), args.experiment, args.namespace,
                                             args.name)),
        lambda row: row["created_at"], args.limit)
    output.emit(args.output_format, rows, lambda: output.format_table(rows, _SCHEDULE_COLUMNS)
                if rows else "no recurring runs")
    return 0


def _cmd_schedule_change(args) -> int:
    """schedule disable|enable|delete."""
    from inception_retrain.kubeflow import schedule

    done = {"disable": "disabled", "enable": "enabled", "delete": "deleted"}[args.action]
    for run_id in schedule.change(_client(args), args.action, args.id, args.name,
                                  args.experiment, args.namespace):
        print(f"[schedule] {done} recurring run {run_id}")
    return 0


def register(subparsers, add_config_args: Callable, load_config: Callable) -> None:
    """Adds `compile` and `schedule` to the inception-retrain parser; add_config_args and
    load_config are cli.main's (--config, --data-root, --set, ...)."""
    _register_compile(subparsers, add_config_args, load_config)
    _register_schedule(subparsers)


def _register_compile(subparsers, add_config_args: Callable, load_config: Callable) -> None:
    compile_parser = subparsers.add_parser(
        "compile", help="compile the pipeline for Kubeflow Pipelines or Vertex AI",
        description="Compiles the pipeline with KubeflowV2DagRunner: --target kfp writes the "
                    "PipelineSpec YAML for open-source Kubeflow Pipelines 2 (refused if the DAG "
                    "holds a node its backend cannot run, e.g. a resolver), --target vertex a "
                    "Vertex AI PipelineJob JSON. Paths must be URIs the pods can reach.")
    add_config_args(compile_parser)
    compile_parser.add_argument("--target", choices=sorted(targets.TARGETS), default="kfp")
    compile_parser.add_argument(
        "--kfp-version", default=targets.DEFAULT_KFP_VERSION, metavar="MAJOR.MINOR",
        help=f"the kfp target's Kubeflow Pipelines backend (tested: "
             f"{', '.join(targets.KFP_VERSIONS)}; default {targets.DEFAULT_KFP_VERSION}): from "
             "2.14 the package gets the exit task that reports and alerts on a failed run; "
             "1.x is refused, untested versions warned about")
    compile_parser.add_argument("--image", required=True, metavar="IMAGE",
                                help="the image built from kubeflow/Dockerfile, for every task")
    compile_parser.add_argument("--trainer-image", metavar="IMAGE",
                                help="the Trainer's image (default: --image; TFX's image is "
                                     "CUDA-enabled, so one image can serve both)")
    compile_parser.add_argument("--gpu-type", metavar="TYPE",
                                help="accelerator type of the Trainer's GPUs (default: "
                                     + ", ".join(f"{t.gpu_type} for {t.name}"
                                                 for t in targets.TARGETS.values()) + ")")
    compile_parser.add_argument("--resource", dest="resources", action="append", default=[],
                                metavar="COMPONENT.cpu|memory|gpu=N",
                                help="override a task's CPU cores, memory (GB) or GPUs, e.g. "
                                     "Trainer.gpu=2 (repeatable)")
    compile_parser.add_argument("--volume", dest="volumes", action="append", default=[],
                                metavar="CLAIM:/MOUNT/PATH",
                                help="mount this PersistentVolumeClaim into every task (kfp; "
                                     "repeatable): data.root and serving_dir may then be paths "
                                     "on it, e.g. lab-data:/mnt/lab (see kubeflow/README.md)")
    compile_parser.add_argument("--beam-arg", dest="beam_args", action="append", default=[],
                                metavar="--FLAG=VALUE",
                                help="Beam pipeline argument for every Beam task, e.g. "
                                     "--beam-arg=--runner=DataflowRunner (repeatable; added to "
                                     "the config's beam_args)")
    compile_parser.add_argument("--schema-path", metavar="PATH",
                                help=f"schema the pods read (default {targets.IMAGE_SCHEMA_PATH}, "
                                     "inside the image; also a runtime parameter)")
    compile_parser.add_argument("--output", metavar="FILE",
                                help="default build/kubeflow/<pipeline_name>-<target>.yaml|json")
    compile_parser.set_defaults(func=lambda args: _cmd_compile(args, load_config))


def _register_schedule(subparsers) -> None:
    schedule_parser = subparsers.add_parser(
        "schedule", help="recurring runs on Kubeflow Pipelines: create, list, disable, enable, "
             "delete",
        description="Talks to the KFP API (v2beta1) through kfp.Client. Host and credentials "
                    "as kfp.Client takes them: --host or $KF_PIPELINES_ENDPOINT, in-cluster "
                    "service account, kube config, KF_PIPELINES_IAP_* variables, "
                    "~/.config/kfp/context.json, or --token-file.")
    actions = schedule_parser.add_subparsers(dest="action", required=True)

    create = actions.add_parser(
        "create", help="upload the compiled pipeline and create a recurring run",
        description="Uploads the package (a new version when the pipeline exists), finds or "
                    "creates the experiment and creates a recurring run with max concurrency 1 "
                    "and no catch-up. --dry-run prints what would be sent and sends nothing.")
    create.add_argument("--package", required=True, metavar="FILE",
                        help="PipelineSpec YAML from `inception-retrain compile --target kfp`")
    create.add_argument("--experiment", required=True, metavar="NAME")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="'S M H DOM MON DOW'",
                      help="KFP cron, six fields with seconds first, e.g. '0 0 3 * * *' "
                           "(03:00 daily), or @daily / @every 6h")
    when.add_argument("--interval", type=_interval, metavar="SECONDS|Nh|Nd",
                      help="a run every interval, e.g. 86400 or 24h")
    create.add_argument("--param", dest="params", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="runtime parameter for every run: a parameter name or data.root, "
                             "training.phase1_epochs, evaluation.accuracy_floor, ... "
                             "(repeatable; see kubeflow/README.md)")
    create.add_argument("--name", metavar="NAME",
                        help="recurring run name (default <pipeline>-scheduled)")
    create.add_argument("--pipeline-name", metavar="NAME",
                        help="pipeline name in KFP (default: the package's)")
    create.add_argument("--version-name", metavar="NAME",
                        help="version name (default <pipeline>-<sha256 of the file, 12 hex>)")
    create.add_argument("--pipeline-root", metavar="URI",
                        help="override the compiled pipeline root for these runs")
    create.add_argument("--service-account", metavar="SA",
                        help="Kubernetes service account the runs use")
    create.add_argument("--dry-run", action="store_true",
                        help="print the requests and parameters; send nothing")
    _add_connection_args(create)
    create.set_defaults(func=_api_errors(_cmd_schedule_create))
    _register_schedule_actions(actions)


def _register_schedule_actions(actions) -> None:
    listing = actions.add_parser("list", help="list recurring runs, newest first")
    listing.add_argument("--experiment", metavar="NAME", help="only this experiment's")
    listing.add_argument("--name", metavar="NAME", help="only runs with this name")
    output.add_output_args(listing)
    _add_connection_args(listing)
    listing.set_defaults(func=_api_errors(_cmd_schedule_list))

    for action, what in (("disable", "disable a recurring run (no more runs; kept in KFP)"),
                         ("enable", "enable a disabled recurring run again"),
                         ("delete", "delete a recurring run (its past runs stay)")):
        parser = actions.add_parser(action, help=what)
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--id", metavar="ID")
        which.add_argument("--name", metavar="NAME", help="the one recurring run with this name")
        parser.add_argument("--experiment", metavar="NAME",
                            help="look for --name in this experiment only")
        _add_connection_args(parser)
        parser.set_defaults(func=_api_errors(_cmd_schedule_change))
