"""`inception-retrain schedule` against a local HTTP server that STANDS IN FOR A REAL KFP API
SERVER: nothing here runs Kubeflow. The server (127.0.0.1, a thread) implements the few KFP
v2beta1 endpoints the scheduling code calls through kfp.Client. It checks every request body and
filter strictly against the kfp-server-api models (unknown keys and wrong types are 400s), and
repeats the checks the real backend makes (backend/src/apiserver: uploads must be PipelineSpec
schema 2.1.0 with a valid name; recurring runs need max_concurrency 1-10, a robfig cron or an
interval >= 1 s, an existing experiment and pipeline version, and runtime parameters the
pipeline declares, with matching types). The package is a real compiled pipeline."""
import email.parser
import email.policy
import http.server
import json
import re
import threading
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import kfp_server_api as api
import pytest
import yaml

from inception_retrain.kubeflow import schedule, targets
from inception_retrain.pipeline import config as config_lib
from inception_retrain.cli.main import main

TOKEN = "s3cret-token"
_PRIMITIVES = {"str": str, "bool": bool, "float": (int, float), "object": object,
               "datetime": str, "date": str}
# int64 fields: swagger gives the Python models 'str' for them; protojson takes a number or a
# decimal string.
_INT64_FIELDS = {("V2beta1RecurringRun", "max_concurrency"),
                 ("V2beta1PeriodicSchedule", "interval_second"), ("V2beta1Predicate", "long_value")}
_CRON_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_CRON_NAMES = (None, None, None, None,
               "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(),
               "SUN MON TUE WED THU FRI SAT".split())


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def check_model(data, type_name: str, where: str):
    """Strictly checks JSON against a kfp-server-api type, then builds the model from it."""
    if type_name in _PRIMITIVES:
        if type_name in ("str", "datetime", "date") and not isinstance(data, str):
            raise BadRequest(400, f"{where}: expected a string, got {data!r}")
        if type_name == "bool" and not isinstance(data, bool):
            raise BadRequest(400, f"{where}: expected a bool, got {data!r}")
        if type_name == "float" and (isinstance(data, bool)
                                     or not isinstance(data, (int, float))):
            raise BadRequest(400, f"{where}: expected a number, got {data!r}")
        return
    if type_name == "int":  # int64 travels as a JSON number or a decimal string
        if isinstance(data, bool) or not (isinstance(data, int) or (
                isinstance(data, str) and re.fullmatch(r"-?\d+", data))):
            raise BadRequest(400, f"{where}: expected an integer, got {data!r}")
        return
    if type_name.startswith("list["):
        if not isinstance(data, list):
            raise BadRequest(400, f"{where}: expected a list")
        for index, item in enumerate(data):
            check_model(item, type_name[5:-1], f"{where}[{index}]")
        return
    if type_name.startswith("dict("):
        if not isinstance(data, dict):
            raise BadRequest(400, f"{where}: expected an object")
        value_type = type_name[5:-1].split(", ", 1)[1]
        for key, item in data.items():
            check_model(item, value_type, f"{where}.{key}")
        return
    klass = getattr(api.models, type_name)
    if hasattr(klass, "allowable_values"):
        if data not in klass.allowable_values:
            raise BadRequest(400, f"{where}: {data!r} is not one of {klass.allowable_values}")
        return
    if not isinstance(data, dict):
        raise BadRequest(400, f"{where}: expected an object for {type_name}")
    by_json = {json_key: attr for attr, json_key in klass.attribute_map.items()}
    unknown = sorted(set(data) - set(by_json))
    if unknown:
        raise BadRequest(400, f"{where}: unknown field(s) {unknown} for {type_name}")
    for json_key, value in data.items():
        attr = by_json[json_key]
        kind = "int" if (type_name, attr) in _INT64_FIELDS else klass.openapi_types[attr]
        if value is not None:
            check_model(value, kind, f"{where}.{json_key}")


def parse_model(body: bytes, type_name: str):
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        raise BadRequest(400, f"body is not JSON: {err}") from None
    check_model(data, type_name, type_name)
    return api.ApiClient().deserialize(SimpleNamespace(data=json.dumps(data)), type_name)


def check_filter(text, resource: str):
    """The list filter (a V2beta1Filter as JSON): only display_name EQUALS is implemented."""
    if text is None:
        return None
    data = json.loads(text)
    predicates = data.get("predicates")
    if set(data) != {"predicates"} or not isinstance(predicates, list):
        raise BadRequest(400, f"{resource} filter: expected {{'predicates': [...]}}, got {data}")
    names = []
    for predicate in predicates:
        # protojson accepts the proto field name and its JSON (camelCase) name alike.
        normalised = {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k): v
                      for k, v in predicate.items()}
        check_model({k: v for k, v in normalised.items() if k != "operation"},
                    "V2beta1Predicate", f"{resource} filter predicate")
        if normalised.get("operation") not in (1, "EQUALS") or normalised.get(
                "key") != "display_name" or "string_value" not in normalised:
            raise BadRequest(400, f"{resource} filter: this stand-in implements only "
                                  f"display_name EQUALS, got {predicate}")
        names.append(normalised["string_value"])
    return names


def check_cron(expression: str) -> None:
    """robfig/cron's parser as KFP uses it: seconds first, day of week optional, or a
    descriptor."""
    if expression.startswith("@"):
        if re.fullmatch(r"@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
                        r"|@every (\d+(ns|us|ms|s|m|h))+", expression):
            return
        raise BadRequest(400, f"Schedule cron is not a supported format: {expression!r}")
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise BadRequest(400, f"Schedule cron is not a supported format: expected 5 to 6 "
                              f"fields, found {len(fields)}: {expression!r}")
    for text, (low, high), names in zip(fields, _CRON_RANGES, _CRON_NAMES):
        for part in text.split(","):
            base = part.split("/")[0]
            if base in ("*", "?"):
                continue
            for value in base.split("-"):
                number = names.index(value.upper()) + low if names and value.upper() in names \
                    else int(value) if value.isdigit() else None
                if number is None or not low <= number <= high:
                    raise BadRequest(400, f"Schedule cron is not a supported format: {part!r}")


def check_package(content: bytes) -> dict:
    """What the API server checks on upload (template.NewV2SpecTemplate), plus what its driver
    refuses at run time (legacy constantValue / untyped parameters)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    docs = [doc for doc in yaml.safe_load_all(content) if doc]
    specs = [doc for doc in docs if "pipelineInfo" in doc]  # IsPipelineSpec / IsPlatformSpec...
    platforms = [doc for doc in docs if "kubernetes" in doc.get("platforms", {})]
    if len(specs) != 1 or len(platforms) > 1 or len(specs) + len(platforms) != len(docs):
        raise BadRequest(400, "expected one pipeline spec and at most one platform spec")
    spec_dict = specs[0]
    try:
        spec = json_format.ParseDict(spec_dict, pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as err:
        raise BadRequest(400, f"invalid v2 pipeline spec: {err}") from None
    if spec.schema_version != "2.1.0":
        raise BadRequest(400, f"KFP only supports schema version 2.1.0, but the pipeline spec "
                              f"has version {spec.schema_version}")
    if not re.match(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", spec.pipeline_info.name):
        raise BadRequest(400, "invalid v2 pipeline spec: name")
    if not spec.HasField("root"):
        raise BadRequest(400, "invalid v2 pipeline spec: root component is empty")
    legacy = re.findall(r'"(constantValue|type)": ', json.dumps(spec_dict.get("root")))
    if legacy:
        raise BadRequest(400, f"the KFP driver cannot resolve legacy fields {set(legacy)}")
    return spec_dict


def check_run_parameters(spec_dict: dict, given: dict) -> None:
    """validatePipelineJobInputs: declared names only, required ones present, types match."""
    declared = spec_dict["root"].get("inputDefinitions", {}).get("parameters", {})
    extra = sorted(set(given) - set(declared))
    if extra:
        raise BadRequest(400, f"parameter(s) provided are not required by pipeline: {extra}")
    for name, definition in declared.items():
        if name not in given:
            if not definition.get("isOptional") and "defaultValue" not in definition:
                raise BadRequest(400, f"parameter {name} is not optional, yet has neither "
                                      "default value nor user provided value")
            continue
        value, kind = given[name], definition["parameterType"]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if (kind.startswith("NUMBER") and not number) or (
                kind == "STRING" and not isinstance(value, str)):
            raise BadRequest(400, f"input parameter {name} requires type {kind}")


class FakeKfpApi:
    """The stand-in's state, and the request log the tests read."""

    def __init__(self, token=None):
        self.token = token
        self.lock = threading.Lock()
        self.pipelines, self.versions, self.experiments, self.runs = {}, {}, {}, {}
        self.requests = []

    @staticmethod
    def now():
        return datetime.now(timezone.utc)

    def handle(self, method: str, url: str, headers, body: bytes):
        parsed = urlparse(url)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        self.requests.append((method, parsed.path, query, body))
        healthz = parsed.path.endswith("/healthz")  # the API server itself does not guard it
        if self.token and not healthz and headers.get("Authorization") != f"Bearer {self.token}":
            raise BadRequest(401, "Unauthenticated: missing or wrong bearer token")
        for pattern, verb, handler in self.routes():
            match = re.fullmatch(pattern, parsed.path)
            if match and verb == method:
                return handler(query, body, headers, *match.groups())
        raise BadRequest(404, f"the stand-in has no route {method} {parsed.path}")

    def routes(self):
        base = "/apis/v2beta1"
        return [
            (f"{base}/healthz", "GET", lambda *_: api.V2beta1GetHealthzResponse(
                multi_user=False)),
            (f"{base}/pipelines", "GET", self.list_pipelines),
            (f"{base}/pipelines/upload", "POST", self.upload),
            (f"{base}/pipelines/upload_version", "POST", self.upload_version),
            (f"{base}/pipelines/([^/]+)/versions", "GET", self.list_versions),
            (f"{base}/experiments", "GET", self.list_experiments),
            (f"{base}/experiments", "POST", self.create_experiment),
            (f"{base}/recurringruns", "GET", self.list_runs),
            (f"{base}/recurringruns", "POST", self.create_run),
            (f"{base}/recurringruns/([^/:]+):disable", "POST", self.disable_run),
            (f"{base}/recurringruns/([^/:]+):enable", "POST", self.enable_run),
            (f"{base}/recurringruns/([^/:]+)", "DELETE", self.delete_run),
        ]

    @staticmethod
    def uploaded_file(headers, body: bytes) -> bytes:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body)
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "uploadfile":
                return part.get_payload(decode=True)
        raise BadRequest(400, "multipart body has no uploadfile")

    def list_pipelines(self, query, *_):
        names = check_filter(query.get("filter"), "pipelines")
        found = [p for p in self.pipelines.values() if names is None or p.display_name in names]
        return api.V2beta1ListPipelinesResponse(pipelines=found, total_size=len(found))

    def _add_version(self, pipeline_id, name, description, content):
        spec = check_package(content)
        if any(v.pipeline_id == pipeline_id and v.display_name == name
               for v, _ in self.versions.values()):
            raise BadRequest(409, f"pipeline version {name!r} already exists")
        version = api.V2beta1PipelineVersion(
            pipeline_id=pipeline_id, pipeline_version_id=str(uuid.uuid4()), display_name=name,
            description=description, created_at=self.now())
        self.versions[version.pipeline_version_id] = (version, spec)
        return version

    def upload(self, query, body, headers):
        name = query.get("name")
        if not name or any(p.display_name == name for p in self.pipelines.values()):
            raise BadRequest(409 if name else 400, f"pipeline name {name!r} taken or empty")
        pipeline = api.V2beta1Pipeline(pipeline_id=str(uuid.uuid4()), display_name=name,
                                       description=query.get("description"),
                                       created_at=self.now())
        self._add_version(pipeline.pipeline_id, name, query.get("description"),
                          self.uploaded_file(headers, body))
        self.pipelines[pipeline.pipeline_id] = pipeline
        return pipeline

    def upload_version(self, query, body, headers):
        if query.get("pipelineid") not in self.pipelines or not query.get("name"):
            raise BadRequest(404, f"no pipeline {query.get('pipelineid')!r} or no version name")
        return self._add_version(query["pipelineid"], query["name"], query.get("description"),
                                 self.uploaded_file(headers, body))

    def list_versions(self, query, _body, _headers, pipeline_id):
        names = check_filter(query.get("filter"), "pipeline versions")
        found = [v for v, _ in self.versions.values() if v.pipeline_id == pipeline_id
                 and (names is None or v.display_name in names)]
        if query.get("sort_by") not in (None, "", "created_at desc"):
            raise BadRequest(400, f"sort_by {query['sort_by']!r} not implemented here")
        if query.get("sort_by") == "created_at desc":
            found.sort(key=lambda v: v.created_at, reverse=True)
        found = found[:int(query.get("page_size", 10))]
        return api.V2beta1ListPipelineVersionsResponse(pipeline_versions=found,
                                                       total_size=len(found))

    def list_experiments(self, query, *_):
        names = check_filter(query.get("filter"), "experiments")
        found = [e for e in self.experiments.values() if names is None or e.display_name in names]
        return api.V2beta1ListExperimentsResponse(experiments=found, total_size=len(found))

    def create_experiment(self, _query, body, _headers):
        experiment = parse_model(body, "V2beta1Experiment")
        if not experiment.display_name or any(
                e.display_name == experiment.display_name for e in self.experiments.values()):
            raise BadRequest(409, f"experiment {experiment.display_name!r} exists or is empty")
        experiment.experiment_id, experiment.created_at = str(uuid.uuid4()), self.now()
        experiment.storage_state = "AVAILABLE"
        self.experiments[experiment.experiment_id] = experiment
        return experiment

    def list_runs(self, query, *_):
        names = check_filter(query.get("filter"), "recurring runs")
        found = [r for r in self.runs.values()
                 if (names is None or r.display_name in names)
                 and query.get("experiment_id") in (None, r.experiment_id)]
        return api.V2beta1ListRecurringRunsResponse(recurring_runs=found, total_size=len(found))

    def create_run(self, _query, body, _headers):
        run = parse_model(body, "V2beta1RecurringRun")
        if not run.display_name:
            raise BadRequest(400, "recurring run display_name is empty")
        if run.experiment_id not in self.experiments:
            raise BadRequest(404, f"no experiment {run.experiment_id!r}")
        if not 1 <= int(run.max_concurrency or 0) <= 10:
            raise BadRequest(400, "The max concurrency of the job is out of range. Support "
                                  f"1-10. Received {run.max_concurrency}.")
        trigger = run.trigger
        if trigger is None or (trigger.cron_schedule is None) == (
                trigger.periodic_schedule is None):
            raise BadRequest(400, "a recurring run needs exactly one of cron or periodic")
        if trigger.cron_schedule is not None:
            check_cron(trigger.cron_schedule.cron or "")
        elif int(trigger.periodic_schedule.interval_second or 0) < 1:
            raise BadRequest(400, "Set at interval to least 1 second.")
        reference = run.pipeline_version_reference
        version = self.versions.get(reference.pipeline_version_id if reference else None)
        if version is None or version[0].pipeline_id != reference.pipeline_id:
            raise BadRequest(404, f"no pipeline version {reference}")
        check_run_parameters(version[1], (run.runtime_config.parameters or {})
                             if run.runtime_config else {})
        run.recurring_run_id, run.created_at = str(uuid.uuid4()), self.now()
        run.status = "ENABLED" if run.mode == "ENABLE" else "DISABLED"
        self.runs[run.recurring_run_id] = run
        return run

    def disable_run(self, _query, _body, _headers, run_id):
        if run_id not in self.runs:
            raise BadRequest(404, f"no recurring run {run_id}")
        self.runs[run_id].mode, self.runs[run_id].status = "DISABLE", "DISABLED"
        return {}

    def enable_run(self, _query, _body, _headers, run_id):
        if run_id not in self.runs:
            raise BadRequest(404, f"no recurring run {run_id}")
        self.runs[run_id].mode, self.runs[run_id].status = "ENABLE", "ENABLED"
        return {}

    def delete_run(self, _query, _body, _headers, run_id):
        if self.runs.pop(run_id, None) is None:
            raise BadRequest(404, f"no recurring run {run_id}")
        return {}


class _Handler(http.server.BaseHTTPRequestHandler):
    def _serve(self):
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            with fake.lock:
                result = fake.handle(self.command, self.path, self.headers, body)
            status, payload = 200, api.ApiClient().sanitize_for_serialization(result)
        except BadRequest as err:
            status, payload = err.status, {"code": err.status, "message": str(err)}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, *_):
        """Quiet: the tests read fake.requests instead."""


@pytest.fixture
def fake_kfp():
    """A stand-in KFP API server on 127.0.0.1 (port chosen by the OS), stopped afterwards."""
    fake = FakeKfpApi()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.fake = fake
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    fake.host = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """A real pipeline package: `compile --target kfp` of the default DAG."""
    from inception_retrain.kubeflow import compile as compile_lib

    out = tmp_path_factory.mktemp("package") / "pipeline.yaml"
    config = config_lib.load(overrides={"work_dir": "gs://bucket/inception",
                                        "data": {"root": "gs://bucket/images"}})
    compile_lib.compile_pipeline(config, targets.CompileOptions(
        target="kfp", output=str(out), image="registry.example.com/inception-retrain:1"))
    return out


def client_for(fake, token_file=None):
    return schedule.connect(fake.host, token_file=token_file)


def plan_for(package, **kwargs):
    values = dict(cron="0 0 3 * * *", param_assignments=[
        "training.phase1_epochs=3", "evaluation.accuracy_floor=0.8",
        "data.min_examples_per_class=5", "data.root=gs://bucket/new-images"])
    values.update(kwargs)
    return schedule.make_plan(str(package), "nightly", **values)


def test_create_uploads_creates_experiment_and_a_guarded_recurring_run(fake_kfp, package):
    created = schedule.create(plan_for(package), client_for(fake_kfp))
    assert created.new_pipeline and not created.new_version
    (pipeline,) = fake_kfp.pipelines.values()
    assert pipeline.display_name == "inception-retrain"
    (experiment,) = fake_kfp.experiments.values()
    assert experiment.display_name == "nightly"
    run = fake_kfp.runs[created.recurring_run_id]
    assert run.trigger.cron_schedule.cron == "0 0 3 * * *"
    assert run.max_concurrency in (1, "1") and run.no_catchup is True and run.mode == "ENABLE"
    assert run.pipeline_version_reference.pipeline_id == pipeline.pipeline_id
    assert run.pipeline_version_reference.pipeline_version_id == created.version_id
    params = run.runtime_config.parameters
    assert json.loads(params["training_config"])["phase1_epochs"] == 3
    eval_config = json.loads(params["eval_config"])
    accuracy = [m for s in eval_config["metrics_specs"] for m in s["metrics"]
                if m["class_name"] == "SparseCategoricalAccuracy"]
    assert accuracy[0]["threshold"]["value_threshold"]["lower_bound"] == 0.8
    assert params["min_examples_per_class"] == 5
    assert params["data_root"] == "gs://bucket/new-images"
    # The stored package is the file's bytes.
    (version, spec) = fake_kfp.versions[created.version_id]
    assert spec == yaml.safe_load(package.read_bytes())


def test_a_second_create_adds_a_version_once_and_refuses_a_duplicate_name(fake_kfp, package,
                                                                           tmp_path):
    client = client_for(fake_kfp)
    first = schedule.create(plan_for(package), client)
    with pytest.raises(config_lib.ConfigError, match="already has a recurring run named"):
        schedule.create(plan_for(package), client)
    assert len(fake_kfp.runs) == 1
    second = schedule.create(plan_for(package, run_name="weekly", cron="@weekly"), client)
    assert second.new_version and second.pipeline_id == first.pipeline_id
    assert fake_kfp.versions[second.version_id][0].display_name == (
        f"inception-retrain-{schedule.Package.read(str(package)).sha256[:12]}")
    third = schedule.create(plan_for(package, run_name="hourly", cron=None,
                                     interval_seconds=3600), client)
    assert not third.new_version and third.version_id == second.version_id  # same file: reused
    assert fake_kfp.runs[third.recurring_run_id].trigger.periodic_schedule.interval_second in (
        3600, "3600")
    assert len(fake_kfp.pipelines) == 1 and len(fake_kfp.versions) == 2
    assert len(fake_kfp.experiments) == 1  # found, not created again


def test_dry_run_sends_nothing_and_prints_the_body_create_sends(fake_kfp, package, capsys):
    argv = ["schedule", "create", "--package", str(package), "--experiment", "nightly",
            "--cron", "0 30 2 * * MON-FRI", "--param", "training.phase2_epochs=2",
            "--host", fake_kfp.host]
    assert main(argv + ["--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert fake_kfp.requests == []
    body = json.loads(re.search(r"^\{.*?^\}$", printed, re.S | re.M).group(0))
    assert main(argv) == 0
    (sent,) = [json.loads(body) for method, path, _, body in fake_kfp.requests
               if (method, path) == ("POST", "/apis/v2beta1/recurringruns")]
    ids = ("experiment_id", "pipeline_version_reference")
    assert {k: v for k, v in sent.items() if k not in ids} == {
        k: v for k, v in body.items() if k not in ids}
    assert sent["max_concurrency"] == 1 and sent["no_catchup"] is True
    assert body["pipeline_version_reference"]["pipeline_id"] == \
        "<id of pipeline 'inception-retrain'>"


def test_list_and_disable(fake_kfp, package, capsys):
    client = client_for(fake_kfp)
    created = schedule.create(plan_for(package), client)
    schedule.create(plan_for(package, run_name="other", cron="@daily"), client)
    assert main(["schedule", "list", "--experiment", "nightly", "--host", fake_kfp.host]) == 0
    table = capsys.readouterr().out
    assert "inception-retrain-scheduled" in table and "cron 0 0 3 * * *" in table
    assert table.count("ENABLE") == 2
    assert main(["schedule", "disable", "--name", "inception-retrain-scheduled",
                 "--host", fake_kfp.host]) == 0
    assert fake_kfp.runs[created.recurring_run_id].mode == "DISABLE"
    assert [r.mode for r in fake_kfp.runs.values()].count("ENABLE") == 1
    assert main(["schedule", "disable", "--name", "no-such-run", "--host", fake_kfp.host]) == 2
    assert "must match exactly one recurring run, found: none" in capsys.readouterr().err


def test_enable_and_delete_by_name_and_by_id(fake_kfp, package, capsys):
    client = client_for(fake_kfp)
    created = schedule.create(plan_for(package), client)
    other = schedule.create(plan_for(package, run_name="other", cron="@daily"), client)
    host = ["--host", fake_kfp.host]
    assert main(["schedule", "disable", "--id", created.recurring_run_id] + host) == 0
    assert main(["schedule", "enable", "--name", "inception-retrain-scheduled"] + host) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"[schedule] enabled recurring run {created.recurring_run_id}")
    run = fake_kfp.runs[created.recurring_run_id]
    assert (run.mode, run.status) == ("ENABLE", "ENABLED")
    assert ("POST", f"/apis/v2beta1/recurringruns/{created.recurring_run_id}:enable") in [
        (method, path) for method, path, _, _ in fake_kfp.requests]
    assert main(["schedule", "delete", "--id", other.recurring_run_id] + host) == 0
    assert f"[schedule] deleted recurring run {other.recurring_run_id}" in capsys.readouterr().out
    assert list(fake_kfp.runs) == [created.recurring_run_id], "deleted, the first one kept"
    assert main(["schedule", "list", "-o", "json"] + host) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [created.recurring_run_id]
    # Deleting it again: the server's 404 in one line, exit 1 (documented: a request failed).
    assert main(["schedule", "delete", "--id", other.recurring_run_id] + host) == 1
    assert capsys.readouterr().err.startswith("KFP API error 404")
    assert main(["schedule", "enable", "--name", "no-such-run"] + host) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"cron": "0 3 * * *"}, r"has 5 fields; KFP's cron has 6.*'0 0 3 \* \* \*'"),
    ({"cron": "0 0 25 * * *"}, r"hour '25' is not in 0-23"),
    ({"cron": "@fortnightly"}, r"descriptors are"),
    ({"cron": None, "interval_seconds": 0}, r"--interval must be at least 1"),
    ({"cron": None}, r"exactly one of --cron or --interval"),
    ({"param_assignments": ["training.phase1_epochs=many"]},
     r"training\.phase1_epochs must be an integer"),
    ({"param_assignments": ["training.image_size=224"]}, r"fixed at compile time"),
    ({"param_assignments": ["training.dropout=1.5"]}, r"training\.dropout must be in"),
    ({"param_assignments": ["evaluation.accuracy_floor=1.2"]},
     r"evaluation\.accuracy_floor must be in \[0, 1\]"),
    ({"param_assignments": ["data.max_quarantined_fraction=2"]},
     r"data\.max_quarantined_fraction must be in \[0, 1\]"),
    ({"param_assignments": ["data.root=/local/images"]}, r"data_root must be a URI"),
    ({"param_assignments": ["epochs=3"]}, r"unknown parameter 'epochs'; known: .*data\.root"),
    ({"param_assignments": ["training_config={\"phase1_epochs\": 3}"]},
     r"must set every training key"),
    ({"pipeline_root": "/tmp/root"}, r"--pipeline-root must start with gs:// or minio://"),
])
def test_bad_input_stops_before_any_request(fake_kfp, package, kwargs, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        plan_for(package, **kwargs)
    assert fake_kfp.requests == []


def test_package_must_be_a_kfp_target_yaml(tmp_path, package):
    legacy = yaml.safe_load(package.read_text())
    legacy["schemaVersion"] = "2.0.0"
    path = tmp_path / "legacy.yaml"
    path.write_text(yaml.safe_dump(legacy))
    with pytest.raises(config_lib.ConfigError, match="accepts only 2.1.0"):
        schedule.Package.read(str(path))
    (tmp_path / "job.json").write_text("{}")
    with pytest.raises(config_lib.ConfigError, match="--target kfp"):
        schedule.Package.read(str(tmp_path / "job.json"))


def test_token_file_is_sent_as_bearer_token(fake_kfp, package, tmp_path, capsys):
    fake_kfp.token = TOKEN
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    schedule.create(plan_for(package), client_for(fake_kfp, str(token_file)))
    assert len(fake_kfp.runs) == 1
    # Without the token the server answers 401, and the CLI says so in one line (exit 1).
    assert main(["schedule", "list", "--host", fake_kfp.host]) == 1
    assert capsys.readouterr().err.startswith("KFP API error 401 Unauthorized")


def test_the_stand_in_rejects_what_the_real_server_rejects(fake_kfp, package, tmp_path):
    """The checks the tests rely on are real: the stand-in refuses bad bodies and packages."""
    client = client_for(fake_kfp)
    created = schedule.create(plan_for(package), client)
    plan = plan_for(package, run_name="x")
    body = schedule.recurring_run_body(plan, created.experiment_id, created.pipeline_id,
                                       created.version_id)
    for change, message in [
        ({"max_concurrency": 11}, "max concurrency"),
        ({"trigger": api.V2beta1Trigger(cron_schedule=api.V2beta1CronSchedule(
            cron="0 0 99 * * *"))}, "cron is not a supported format"),
        ({"runtime_config": api.V2beta1RuntimeConfig(parameters={"epochs": 3})},
         "not required by pipeline"),
        ({"runtime_config": api.V2beta1RuntimeConfig(parameters={"keep_versions": "five"})},
         "requires type NUMBER_INTEGER"),
        ({"experiment_id": "no-such-experiment"}, "no experiment"),
    ]:
        changed = api.V2beta1RecurringRun(**{**{k: getattr(body, k) for k in
                                                body.attribute_map}, **change})
        with pytest.raises(api.ApiException) as raised:
            client.recurring_runs.create_recurring_run(body=changed)
        assert message in raised.value.body, message
    request = urllib.request.Request(  # a body with a field the model does not have
        fake_kfp.host + "/apis/v2beta1/experiments", method="POST",
        data=json.dumps({"display_name": "e", "colour": "red"}).encode(),
        headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request)
    assert raised.value.code == 400
    assert "unknown field(s) ['colour']" in raised.value.read().decode()
    legacy = yaml.safe_load(package.read_text())
    legacy["schemaVersion"] = "2.0.0"
    path = tmp_path / "legacy.yaml"
    path.write_text(yaml.safe_dump(legacy))
    with pytest.raises(api.ApiException) as raised:
        client.upload_pipeline(str(path), pipeline_name="legacy")
    assert "only supports schema version 2.1.0" in raised.value.body
