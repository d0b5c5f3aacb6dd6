"""Scheduled runs on open-source Kubeflow Pipelines 2 through kfp.Client (KFP API v2beta1).

create: upload the compiled PipelineSpec (a new version when the pipeline exists; the version is
named after the file's content, so re-uploading the same file reuses it), find or create the
experiment, and create a recurring run: a 6-field cron or an interval, at most one run at a time,
no catch-up of missed runs. list / disable: the recurring runs that exist. A plan is built and
checked first without any network; --dry-run prints it, with the exact request body.
"""
import dataclasses
import hashlib
import json
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from inception_retrain.kubeflow import parameters, targets
from inception_retrain.pipeline import config as config_lib

MAX_CONCURRENCY = 1
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# (name, low, high, names) of robfig/cron's six fields, seconds first (what KFP parses).
_CRON_FIELDS = (
    ("second", 0, 59, ()), ("minute", 0, 59, ()), ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                      "NOV", "DEC")),
    ("day of week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
_EQUALS = 1  # kfp_server_api's PredicateOperation EQUALS, as kfp.Client sends it


def _cron_value(field: str, text: str, low: int, high: int, names: Sequence[str]) -> int:
    if text.upper() in names:
        return low + names.index(text.upper())
    if not text.isdigit() or not low <= int(text) <= high:
        raise config_lib.ConfigError(f"--cron: {field} {text!r} is not in {low}-{high}")
    return int(text)


def check_cron(expression: str) -> str:
    """A KFP cron: six fields, seconds first (robfig/cron), or a descriptor such as @daily.

    Five fields are refused: KFP would read them as seconds-first and run far more often than
    a Unix cron line means (`0 3 * * *` would run at minute 3 of every hour).
    """
    expression = expression.strip()
    if expression.startswith("@"):
        if expression in _DESCRIPTORS:
            return expression
        if expression.startswith("@every "):
            if re.fullmatch(r"@every (\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", expression):
                return expression
            raise config_lib.ConfigError(
                f"--cron {expression!r}: @every takes a Go duration such as 6h or 90m")
        raise config_lib.ConfigError(
            f"--cron {expression!r}: descriptors are {', '.join(_DESCRIPTORS)} or @every <d>")
    fields = expression.split()
    if len(fields) != 6:
        hint = (f"; for a Unix cron line add the seconds first: '0 {expression}'"
                if len(fields) == 5 else "")
        raise config_lib.ConfigError(
            f"--cron {expression!r} has {len(fields)} fields; KFP's cron has 6, seconds first "
            f"(e.g. '0 0 3 * * *' for 03:00 every day){hint}")
    for text, (field, low, high, names) in zip(fields, _CRON_FIELDS):
        for part in text.split(","):
            base, slash, step = part.partition("/")
            if slash and (not step.isdigit() or int(step) == 0):
                raise config_lib.ConfigError(f"--cron: {field} step {step!r} must be >= 1")
            if base in ("*", "?"):
                if base == "?" and field not in ("day of month", "day of week"):
                    raise config_lib.ConfigError("--cron: '?' is only for the day fields")
                continue
            first, dash, last = base.partition("-")
            start = _cron_value(field, first, low, high, names)
            if dash and _cron_value(field, last, low, high, names) < start:
                raise config_lib.ConfigError(f"--cron: {field} range {base!r} is backwards")
    return expression


@dataclasses.dataclass(frozen=True)
class Package:
    """A compiled PipelineSpec YAML, checked as the KFP API server checks an upload."""

    path: str
    sha256: str
    pipeline_name: str
    declared: Dict[str, Any]  # root parameter name -> (type, default)
    mount_paths: Tuple[str, ...] = ()  # volumes every task mounts (compile --volume)

    @classmethod
    def read(cls, path: str) -> "Package":
        """Reads and checks a package; errors name the file and what is wrong."""
        from google.protobuf import json_format
        from kfp.pipeline_spec import pipeline_spec_pb2

        if not path.endswith((".yaml", ".yml")):
            raise config_lib.ConfigError(
                f"--package must be the PipelineSpec YAML from `inception-retrain compile "
                f"--target kfp`, got {path!r}")
        try:
            with open(path, "rb") as f:
                content = f.read()
        except OSError as err:
            raise config_lib.ConfigError(f"--package: cannot read {path!r}: {err}") from None
        try:
            # the PipelineSpec, then optionally a PlatformSpec (compile --volume)
            spec_dict, *platform = [doc for doc in yaml.safe_load_all(content) if doc]
            spec = json_format.ParseDict(spec_dict, pipeline_spec_pb2.PipelineSpec())
            if platform and (len(platform) > 1 or "platforms" not in platform[0]):
                raise TypeError("expected at most one more document, a PlatformSpec")
        except (yaml.YAMLError, json_format.ParseError, AttributeError, TypeError,
                ValueError) as err:
            raise config_lib.ConfigError(f"--package {path!r} is not a PipelineSpec: {err}") \
                from None
        if spec.schema_version != "2.1.0":
            raise config_lib.ConfigError(
                f"--package {path!r} has schema {spec.schema_version!r}; open-source KFP accepts "
                "only 2.1.0 (compile with `inception-retrain compile --target kfp`)")
        for name, executor in spec_dict.get("deploymentSpec", {}).get("executors", {}).items():
            if "resolver" in executor:
                raise config_lib.ConfigError(
                    f"--package {path!r} has a resolver ({name}); open-source KFP cannot run it")
        mounts = {mount["mountPath"] for doc in platform for executor in
                  doc["platforms"].get("kubernetes", {}).get("deploymentSpec", {}).get(
                      "executors", {}).values() for mount in executor.get("pvcMount", [])}
        return cls(path, hashlib.sha256(content).hexdigest(), spec.pipeline_info.name,
                   parameters.spec_parameters(spec_dict), tuple(sorted(mounts)))


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything `schedule create` will send, checked before any request."""

    package: Package
    pipeline_name: str
    version_name: str
    experiment: str
    run_name: str
    cron: Optional[str]
    interval_seconds: Optional[int]
    parameter_values: Dict[str, Any]
    pipeline_root: Optional[str] = None
    namespace: Optional[str] = None
    service_account: Optional[str] = None
    description: str = ""


def make_plan(package_path: str, experiment: str, *, cron: Optional[str] = None,
              interval_seconds: Optional[int] = None, param_assignments: Sequence[str] = (),
              pipeline_name: Optional[str] = None, version_name: Optional[str] = None,
              run_name: Optional[str] = None, pipeline_root: Optional[str] = None,
              namespace: Optional[str] = None, service_account: Optional[str] = None) -> Plan:
    """Checks every input (named in the error) and returns the plan; no network."""
    if (cron is None) == (interval_seconds is None):
        raise config_lib.ConfigError("give exactly one of --cron or --interval")
    if cron is not None:
        cron = check_cron(cron)
    if interval_seconds is not None and interval_seconds < 1:
        raise config_lib.ConfigError(f"--interval must be at least 1 second, got {interval_seconds}")
    if not experiment or not experiment.strip():
        raise config_lib.ConfigError("--experiment must not be empty")
    if pipeline_root is not None and not pipeline_root.startswith(
            targets.KFP_PIPELINE_ROOT_SCHEMES):
        raise config_lib.ConfigError(
            f"--pipeline-root must start with {' or '.join(targets.KFP_PIPELINE_ROOT_SCHEMES)} "
            f"(KFP's launcher accepts only object-store roots), got {pipeline_root!r}")
    package = Package.read(package_path)
    values = parameters.resolve(param_assignments, package.declared, package.mount_paths)
    name = pipeline_name or package.pipeline_name
    trigger = f"cron '{cron}'" if cron else f"every {interval_seconds} s"
    return Plan(
        package=package, pipeline_name=name,
        version_name=version_name or f"{name}-{package.sha256[:12]}",
        experiment=experiment, run_name=run_name or f"{name}-scheduled",
        cron=cron, interval_seconds=interval_seconds, parameter_values=values,
        pipeline_root=pipeline_root, namespace=namespace, service_account=service_account,
        description=f"{name}: {trigger}; package sha256 {package.sha256}")


def recurring_run_body(plan: Plan, experiment_id: str, pipeline_id: str, version_id: str):
    """The V2beta1RecurringRun that create sends (and --dry-run prints)."""
    import kfp_server_api as api

    if plan.cron is not None:
        trigger = api.V2beta1Trigger(cron_schedule=api.V2beta1CronSchedule(cron=plan.cron))
    else:
        trigger = api.V2beta1Trigger(periodic_schedule=api.V2beta1PeriodicSchedule(
            interval_second=plan.interval_seconds))
    return api.V2beta1RecurringRun(
        display_name=plan.run_name,
        description=plan.description,
        experiment_id=experiment_id,
        pipeline_version_reference=api.V2beta1PipelineVersionReference(
            pipeline_id=pipeline_id, pipeline_version_id=version_id),
        runtime_config=api.V2beta1RuntimeConfig(parameters=dict(plan.parameter_values),
                                                pipeline_root=plan.pipeline_root),
        trigger=trigger,
        mode=api.RecurringRunMode.ENABLE,
        max_concurrency=MAX_CONCURRENCY,
        no_catchup=True,
        service_account=plan.service_account)


def _json(model) -> Dict[str, Any]:
    import kfp_server_api as api

    return api.ApiClient().sanitize_for_serialization(model)


def describe(plan: Plan) -> str:
    """What create would send, in order, with the request bodies as JSON (for --dry-run)."""
    body = recurring_run_body(plan, f"<id of experiment {plan.experiment!r}>",
                              f"<id of pipeline {plan.pipeline_name!r}>",
                              f"<id of version {plan.version_name!r}>")
    return "\n".join([
        f"1. experiment {plan.experiment!r}: if it has a recurring run named "
        f"{plan.run_name!r}, stop (nothing is written)",
        f"2. pipeline {plan.pipeline_name!r}: upload {plan.package.path} "
        f"(sha256 {plan.package.sha256}) as a new pipeline if none has that name; else as "
        f"version {plan.version_name!r}, or reuse that version if it exists",
        f"3. experiment {plan.experiment!r}"
        f"{' in namespace ' + repr(plan.namespace) if plan.namespace else ''}: find, else create",
        "4. POST /apis/v2beta1/recurringruns with:",
        json.dumps(_json(body), indent=2, sort_keys=True),
        "runtime parameters of each run:",
        parameters.describe(plan.package.declared, plan.parameter_values),
    ])


def connect(host: Optional[str] = None, namespace: Optional[str] = None,
            token_file: Optional[str] = None):
    """kfp.Client as kfp users configure it: host (else KF_PIPELINES_ENDPOINT, else in-cluster
    or kube config), IAP settings from KF_PIPELINES_* variables, ~/.config/kfp/context.json; with
    token_file, a bearer token read from that file on every request (kfp's
    ServiceAccountTokenVolumeCredentials)."""
    import contextlib
    import io
    import logging

    import kfp
    from kfp.client import set_volume_credentials

    credentials = (set_volume_credentials.ServiceAccountTokenVolumeCredentials(token_file)
                   if token_file else None)
    printed = io.StringIO()  # kfp.Client prints "Failed to load kube config." on stdout
    with contextlib.redirect_stdout(printed):
        client = kfp.Client(host=host, namespace=namespace or "kubeflow",
                            credentials=credentials)
    for line in printed.getvalue().splitlines():
        logging.getLogger(__name__).info("kfp.Client: %s", line)
    return client


def _display_name_filter(name: str) -> str:
    return json.dumps({"predicates": [
        {"operation": _EQUALS, "key": "display_name", "stringValue": name}]})


@dataclasses.dataclass(frozen=True)
class Created:
    pipeline_id: str
    version_id: str
    experiment_id: str
    recurring_run_id: str
    new_pipeline: bool
    new_version: bool


def _version_id(client, pipeline_id: str, version_name: str) -> Optional[str]:
    listed = client.list_pipeline_versions(pipeline_id, page_size=2,
                                           filter=_display_name_filter(version_name))
    versions = listed.pipeline_versions or []
    return versions[0].pipeline_version_id if versions else None


def _find_experiment(client, name: str, namespace: Optional[str]) -> Optional[str]:
    try:
        return client.get_experiment(experiment_name=name, namespace=namespace).experiment_id
    except ValueError as err:  # kfp.Client: "No experiment is found with name ..."
        if str(err).startswith("No experiment is found"):
            return None
        raise


def create(plan: Plan, client) -> Created:
    """Refuse a duplicate run name first (nothing written), then upload (or reuse a version),
    find or create the experiment, and create the recurring run."""
    experiment_id = _find_experiment(client, plan.experiment, plan.namespace)
    if experiment_id is not None:
        existing = client.list_recurring_runs(experiment_id=experiment_id, page_size=10,
                                              filter=_display_name_filter(plan.run_name))
        if existing.recurring_runs:
            ids = ", ".join(run.recurring_run_id for run in existing.recurring_runs)
            raise config_lib.ConfigError(
                f"experiment {plan.experiment!r} already has a recurring run named "
                f"{plan.run_name!r} ({ids}); disable it (`inception-retrain schedule disable "
                f"--id ...`) or pass another --name")
    new_pipeline = new_version = False
    pipeline_id = client.get_pipeline_id(plan.pipeline_name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(plan.package.path, pipeline_name=plan.pipeline_name,
                                          description=plan.description)
        pipeline_id, new_pipeline = pipeline.pipeline_id, True
        # The upload made the first version (named like the pipeline): the newest one.
        listed = client.list_pipeline_versions(pipeline_id, page_size=1,
                                               sort_by="created_at desc")
        version_id = listed.pipeline_versions[0].pipeline_version_id
    else:
        version_id = _version_id(client, pipeline_id, plan.version_name)
        if version_id is None:
            version = client.upload_pipeline_version(
                plan.package.path, plan.version_name, pipeline_id=pipeline_id,
                description=plan.description)
            version_id, new_version = version.pipeline_version_id, True
    if experiment_id is None:
        experiment_id = client.create_experiment(plan.experiment,
                                                 namespace=plan.namespace).experiment_id
    body = recurring_run_body(plan, experiment_id, pipeline_id, version_id)
    created = client.recurring_runs.create_recurring_run(body=body)
    return Created(pipeline_id, version_id, experiment_id, created.recurring_run_id,
                   new_pipeline, new_version)


def list_runs(client, experiment: Optional[str] = None, namespace: Optional[str] = None,
              name: Optional[str] = None) -> List[Any]:
    """Every recurring run (of an experiment, of a namespace), following page tokens."""
    experiment_id = None
    if experiment is not None:
        experiment_id = _find_experiment(client, experiment, namespace)
        if experiment_id is None:
            raise config_lib.ConfigError(f"--experiment {experiment!r} does not exist")
    runs, token = [], ""
    while True:
        page = client.list_recurring_runs(
            page_token=token, page_size=100, experiment_id=experiment_id,
            namespace=namespace, filter=_display_name_filter(name) if name else None)
        runs.extend(page.recurring_runs or [])
        token = page.next_page_token
        if not token:
            return runs


def run_rows(runs: Sequence[Any]) -> List[Dict[str, Any]]:
    """One row per recurring run: id, name, mode, trigger, max concurrency, catch-up, pipeline
    version, created (for `schedule list`, as a table or JSON)."""
    rows = []
    for run in runs:
        trigger = run.trigger
        if trigger and trigger.cron_schedule:
            when = f"cron {trigger.cron_schedule.cron}"
        elif trigger and trigger.periodic_schedule:
            when = f"every {trigger.periodic_schedule.interval_second}s"
        else:
            when = None
        reference = run.pipeline_version_reference
        created = run.created_at
        rows.append({"id": run.recurring_run_id, "name": run.display_name, "mode": run.mode,
                     "trigger": when, "max_concurrency": int(run.max_concurrency or 0),
                     "catchup": not run.no_catchup,
                     "pipeline_version": reference.pipeline_version_id if reference else None,
                     "experiment_id": run.experiment_id,
                     "created_at": created.isoformat() if hasattr(created, "isoformat")
                     else created})
    return rows


# The recurring-run actions `schedule disable|enable|delete` take, as kfp.Client names them.
ACTIONS = {"disable": "disable_recurring_run", "enable": "enable_recurring_run",
           "delete": "delete_recurring_run"}


def change(client, action: str, run_id: Optional[str] = None, name: Optional[str] = None,
           experiment: Optional[str] = None, namespace: Optional[str] = None) -> List[str]:
    """Disables, enables or deletes (ACTIONS) one recurring run by id, or the one with that
    name; returns the ids changed."""
    if (run_id is None) == (name is None):
        raise config_lib.ConfigError("give exactly one of --id or --name")
    if name is not None:
        matches = list_runs(client, experiment, namespace, name)
        if len(matches) != 1:
            found = ", ".join(f"{r.recurring_run_id} in experiment {r.experiment_id}"
                              for r in matches) or "none"
            raise config_lib.ConfigError(
                f"--name {name!r} must match exactly one recurring run, found: {found}"
                + ("; narrow it with --experiment or use --id" if matches else ""))
        run_id = matches[0].recurring_run_id
    getattr(client, ACTIONS[action])(run_id)
    return [run_id]
