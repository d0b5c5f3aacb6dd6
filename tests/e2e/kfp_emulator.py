"""Runs a compiled PipelineSpec task by task the way a Kubeflow Pipelines backend does: each
task's own container command and args from deploymentSpec, in a subprocess with this Python in
place of the image's, `{{$}}` replaced by the ExecutorInput the backend's driver builds, and the
ExecutorOutput read back and recorded as the backend records it, for the tasks downstream.

Written from these sources (kubeflow/pipelines at tags 2.4.1, 2.5.0, 2.14.0, 2.15.0, 2.16.0,
2.16.1 and 2.17.0, and branch mlmd-removal of 2026-07-31 for #13986; TFX 1.16 as installed;
each Profile flag names its file and tag):
- Root parameters: the run's values, else the spec's defaults (the Argo compiler fills them into
  the run's runtime config: backend/src/v2/compiler/argocompiler/argo.go). The pipeline root is
  the run's (runtimeConfig.gcsOutputDirectory) else defaultPipelineRoot (driver RootDAG).
- Task inputs (driver resolveInputs): componentInputParameter from the root parameters,
  runtimeValue.constant as given, a STRING parameter given a non-string turned into its JSON
  text; optional parameters without a value left out. Input artifacts (resolveUpstreamArtifacts
  -> metadata.Client.GetOutputArtifactsByExecutionId -> OutputArtifact.ToRuntimeArtifact ->
  toRuntimeArtifact): name = the ML Metadata id as a decimal string, the recorded uri, metadata =
  the artifact's properties and custom properties (ints and doubles as JSON numbers, structs as
  recorded), and type = {instanceSchema: ""} (the client's `Schema: ""`, "TODO: figure out how to
  get schema").
- Outputs (driver provisionOutputs): per output artifact a fresh URI
  <pipeline root>/<task>/<uuid>/<output> with the declared type and metadata and no name;
  outputFile /tmp/kfp_outputs/output_metadata.json (a pod's own /tmp: here a directory per
  task). KFP 2.5.0 and newer with log publishing on (the default) add `executor-logs` of schema
  title `system.Artifact`; 2.4.1 does not. From 2.15.0 each output is named after its key and
  the outputFile is <local copy of the task root>/output_metadata.json (#12256).
- Launcher (component/launcher_v2.go executeV2): launcher-level defaults of the component's
  parameters (addDefaultParams), the placeholders of getPlaceholders ({{$}} = protojson of the
  ExecutorInput; input/output uri, path and parameter placeholders), the command run with
  stdout+stderr teed into the executor-logs file, then the ExecutorOutput read from outputFile
  (absent = empty), its artifacts merged into the provisioned ones (mergeRuntimeArtifacts: uri
  and metadata) and each recorded (metadata.Client.RecordArtifact -> toMLMDArtifact ->
  StructValueToMLMDValue): every metadata field a custom property, numbers as doubles, booleans
  as ints, lists and structs wrapped as {"list": ...} / {"struct": ...}, plus display_name and
  store_session_info; the type name from the schema title.
- Cache (open-source profiles; driver/cache.go getFingerPrintsAndID, cacheutils/cache.go): a
  task with cachingOptions.enableCache whose fingerprint (cache_fingerprint) matches an earlier
  succeeded execution of this backend is not run; its outputs are that execution's artifacts
  (the same ML Metadata ids) and output parameters (reuseCachedOutputs).
- Storage: minio:// (KFP's own object store) and gs:// are folders here, s3:// a real S3
  server (the pods' AWS_ENDPOINT_URL, through boto3). The launcher downloads each object-store
  input to its local path /minio/, /gcs/ or /s3/<bucket>/<key> (launcher_v2.go
  localPathForURI, objectstore DownloadBlob: an empty prefix copies nothing), makes the parents
  of the outputs' local paths (prepareOutputFolders), and uploads the outputs from there after
  the command (uploadOutputArtifacts, UploadBlob). Each pod has its own folder for those local
  copies, bound over this machine's /minio, /gcs and /s3 in a mount namespace of the pod's
  own (pod_command), and deleted with the pod: a task sees only what its launcher downloaded.
  Volumes: the package's Kubernetes platform spec (pvcMount per executor); a path parameter on
  a volume is there only for a task whose executor mounts it (driver makeVolumeMountPatch).
  The volume is this machine's folder at the mount path itself.
- Importer tasks (component/importer_launcher.go): the artifact URI from the constant or the
  runtime parameter, metadata as custom properties, recorded under the output key "artifact".
- Vertex profile: the ExampleGen driver (the spec's lifecycle.preCacheCheck,
  tfx.orchestration.kubeflow.v2.file_based_example_gen.driver) runs first with the same
  ExecutorInput; its ExecutorOutput stays in outputFile, where TFX's entrypoint reads the updated
  execution properties back (kubeflow_v2_run_executor._run_executor), and its artifact metadata is
  merged into the outputs. Artifacts carry Vertex-style resource names and their declared
  types (as in TFX's container/testdata/executor_invocation.json); outputFile is under the
  pipeline root. Vertex's service itself is closed source: this profile follows what TFX's
  sources and test data say it sends.

Not reproduced: pods beyond their own /minio, /gcs and /s3 (the machine's other files are
shared), images, Vertex's cache, retries, Argo, the API server, ML
Metadata's server (a dict stands in), control flow (conditions, loops), parallelism limits.
"""
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml


@dataclasses.dataclass(frozen=True)
class Profile:
    """What one backend does differently; each flag is one behaviour, with the source and the
    first tag it is read from."""

    # Each flag: the kubeflow/pipelines file and the first tag it is in (read with git show
    # <tag>:<path>); Vertex's from TFX 1.16's sources (Vertex itself is closed source).
    name: str
    # backend/src/v2/driver/driver.go provisionOutputs adds "executor-logs" @ 2.5.0 (not 2.4.1)
    executor_logs: bool = True
    # backend/src/v2/component/launcher_v2.go compileCmdAndArgs: {{$}} replaced before the
    # other placeholders @ 2.14.0 (#11925)
    executor_input_first: bool = False
    # backend/src/v2/driver/driver.go provisionOutputs: each output's name = its key, outputFile
    # <local task root>/output_metadata.json @ 2.15.0 (#12256)
    outputs_by_key: bool = False
    # backend/src/v2/compiler/argocompiler/security_context.go: capabilities ALL dropped,
    # allowPrivilegeEscalation false @ 2.16.0 (the file is not in 2.15.0)
    drops_capabilities: bool = False
    # backend/src/v2/component/launcher_v2.go qualifyExecutorLogsURI: "-<retry index>" appended
    # to the executor-logs URI @ 2.16.1 (not 2.16.0)
    logs_retry_suffix: bool = False
    # False: no ML Metadata, #13986 (merged to master after its stored snapshot of 2026-08-21;
    # read on branch mlmd-removal @ e2520ff3be, 2026-07-31: backend/src/v2/driver/container.go
    # convertArtifactToRuntimeArtifact, component/launcher_v2.go uploadOutputArtifacts)
    metadata_store: bool = True
    # TFX kubeflow/v2/file_based_example_gen/driver.py, the spec's lifecycle.preCacheCheck
    runs_pre_cache_check: bool = False
    # TFX kubeflow/v2/container/testdata/executor_invocation.json: inputs with their type
    typed_inputs: bool = False
    # the same test data: artifacts named projects/.../artifacts/<id>
    vertex_names: bool = False
    # backend/src/v2/driver/driver.go getFingerPrintsAndID and cacheutils/cache.go @ 2.4.1
    # (moved to driver/cache.go by 2.14.0); Vertex's own cache not reproduced
    caches: bool = True

    @property
    def requires_local_outputs(self) -> bool:
        """The launcher without ML Metadata fails a task whose declared output has no local copy
        (uploadOutputArtifacts: "declared output artifact %q is missing at %q"); the MLMD
        launchers warn and go on ("We allow components to not produce output files")."""
        return not self.metadata_store


KFP_2_4 = Profile("kfp-2.4", executor_logs=False)
KFP_2_5 = Profile("kfp-2.5")
KFP_2_14 = Profile("kfp-2.14", executor_input_first=True)
KFP_2_17 = Profile("kfp-2.17", executor_input_first=True, outputs_by_key=True,
                   drops_capabilities=True, logs_retry_suffix=True)
KFP_MASTER = Profile("kfp-master", executor_input_first=True, outputs_by_key=True,
                     drops_capabilities=True, logs_retry_suffix=True, metadata_store=False)
VERTEX = Profile("vertex", executor_logs=False, runs_pre_cache_check=True, typed_inputs=True,
                 vertex_names=True, caches=False)
PROFILES = {p.name: p for p in (KFP_2_4, KFP_2_5, KFP_2_14, KFP_2_17, KFP_MASTER, VERTEX)}
_VERTEX_PREFIX = "projects/123456789/locations/europe-west4/metadataStores/default/artifacts/"
# The user container of 2.16+ (argocompiler security_context.go): capabilities dropped, no
# privilege escalation; this machine's setpriv does the same to the command.
_NO_CAPABILITIES = ["setpriv", "--no-new-privs", "--bounding-set", "-all", "--inh-caps", "-all",
                    "--ambient-caps", "-all", "--"]


class TaskFailed(RuntimeError):
    def __init__(self, task: str, returncode: int, log: str):
        tail = "\n".join(log.splitlines()[-40:])
        super().__init__(f"task {task} exited with {returncode}; last lines:\n{tail}")
        self.task, self.returncode, self.log = task, returncode, log


@dataclasses.dataclass
class MlmdArtifact:
    """The backend's record of an artifact: ML Metadata's (custom properties), or without it
    (#13986) the KFP API server's (the runtime metadata as returned, the schema type kept)."""

    id: int
    type_name: str
    uri: str
    custom_properties: Dict[str, Dict[str, Any]]   # MLMD Value as proto-JSON ({"doubleValue": ..})
    output_key: str = ""
    schema: str = ""                               # getArtifactSchemaType: instance schema or title
    metadata: Optional[Dict[str, Any]] = None      # without ML Metadata: as the launcher got it

    def runtime_metadata(self) -> Dict[str, Any]:
        """The metadata the driver hands downstream: toRuntimeArtifact's propertiesToMetadata
        with ML Metadata, else the recorded struct (RuntimeArtifactSchemaTitleAndMetadata)."""
        if self.metadata is not None:
            return json.loads(json.dumps(self.metadata))
        return {k: _mlmd_to_struct_value(v) for k, v in self.custom_properties.items()}


@dataclasses.dataclass
class TaskRun:
    name: str
    executor_input: Dict[str, Any]
    executor_output: Dict[str, Any]
    outputs: Dict[str, MlmdArtifact]
    log: str
    seconds: float
    driver_output: Optional[Dict[str, Any]] = None   # Vertex: what preCacheCheck returned
    cached: bool = False          # the driver reused an earlier execution's outputs
    reused: bool = False          # not run here: adopted from another backend's run
    argv: List[str] = dataclasses.field(default_factory=list)   # the command as run
    returned: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)  # merged
    # files the pod wrote at its local copies that the launcher neither downloaded nor uploads:
    # gone with the pod
    left_in_pod: List[str] = dataclasses.field(default_factory=list)


class MetadataStore:
    """The few record operations the driver and launcher make, on a dict: ML Metadata's
    (metadata.Client.RecordArtifact) or, without it, the API server's (CreateArtifact)."""

    def __init__(self, with_mlmd: bool = True):
        self.artifacts: Dict[int, MlmdArtifact] = {}
        self.with_mlmd = with_mlmd
        self._lock = threading.Lock()

    def record(self, output_name: str, runtime_artifact: Dict[str, Any]) -> MlmdArtifact:
        """With ML Metadata: toMLMDArtifact and SchemaToArtifactType (every metadata field a
        custom property). Without (#13986 uploadOutputArtifacts, preserveArtifactSchemaTitle):
        the metadata as returned and the schema type (a TFX type's whole instance schema)."""
        artifact_type = runtime_artifact["type"]
        title = (yaml.safe_load(_title_schema(artifact_type)) or {}).get("title")
        if not title:
            raise ValueError(f"output {output_name}: no title in type {artifact_type!r}")
        schema = artifact_type.get("instanceSchema") or artifact_type.get("schemaTitle", "")
        metadata = json.loads(json.dumps(runtime_artifact.get("metadata") or {}))
        properties = {}
        if self.with_mlmd:
            properties = {k: _struct_value_to_mlmd(v) for k, v in metadata.items()}
            properties.setdefault("display_name", {"stringValue": output_name})
            properties.setdefault("store_session_info",
                                  {"stringValue": json.dumps({"Provider": "gs"})})
        with self._lock:
            artifact = MlmdArtifact(len(self.artifacts) + 1, title, runtime_artifact["uri"],
                                    properties, output_name, schema,
                                    None if self.with_mlmd else metadata)
            self.artifacts[artifact.id] = artifact
        return artifact


def _struct_value_to_mlmd(value: Any) -> Dict[str, Any]:
    """metadata.StructValueToMLMDValue on a proto-JSON google.protobuf.Value."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"intValue": str(int(value))}
    if isinstance(value, (int, float)):
        return {"doubleValue": float(value)}
    if isinstance(value, list):
        return {"structValue": {"list": value}}
    if isinstance(value, dict):
        return {"structValue": {"struct": value}}
    raise ValueError(f"unknown/unsupported value type {type(value).__name__}")


def _mlmd_to_struct_value(value: Dict[str, Any]) -> Any:
    """toRuntimeArtifact's propertiesToMetadata."""
    if "stringValue" in value:
        return value["stringValue"]
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "intValue" in value:
        return float(int(value["intValue"]))
    if "structValue" in value:
        return value["structValue"]
    raise ValueError(f"unknown property type in MLMD artifact: {value}")


def _title_schema(artifact_type: Mapping[str, Any]) -> str:
    """launcher getArtifactSchema."""
    if "instanceSchema" in artifact_type:
        return artifact_type["instanceSchema"]
    if "schemaTitle" in artifact_type:
        return "title: " + artifact_type["schemaTitle"]
    raise ValueError(f"unsupported artifact type {artifact_type}")


def _text(value: Any) -> str:
    """metadata.PbValueToText / the launcher's placeholder rendering of a parameter."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(int(value)) if float(value).is_integer() else repr(float(value))
    return json.dumps(value, separators=(",", ":"))


def topological_order(spec: Mapping[str, Any]) -> List[str]:
    tasks = spec["root"]["dag"]["tasks"]
    needs = {name: _upstream(task) for name, task in tasks.items()}
    order: List[str] = []
    while len(order) < len(tasks):
        ready = sorted(n for n in tasks if n not in order and needs[n] <= set(order))
        if not ready:
            raise ValueError(f"cycle among {sorted(set(tasks) - set(order))}")
        order += ready
    return order


def _upstream(task: Mapping[str, Any]) -> set:
    upstream = set(task.get("dependentTasks", []))
    for spec in task.get("inputs", {}).get("artifacts", {}).values():
        if "taskOutputArtifact" in spec:
            upstream.add(spec["taskOutputArtifact"]["producerTask"])
    for spec in task.get("inputs", {}).get("parameters", {}).values():
        if "taskOutputParameter" in spec:
            upstream.add(spec["taskOutputParameter"]["producerTask"])
    return upstream


class Backend:
    """One backend (profile) with its metadata store; `run` runs a pipeline once."""

    def __init__(self, profile: Profile, scratch: Path, env: Optional[Mapping[str, str]] = None,
                 python: str = sys.executable, parallel: int = 2):
        self.profile, self.scratch, self.python, self.parallel = profile, scratch, python, parallel
        self.object_store = scratch / "object-store"   # <scheme>://<bucket>/<key> lives here
        self.platform: Dict[str, Any] = {}             # executor label -> Kubernetes config
        self.env = dict(os.environ if env is None else env)
        self.mlmd = MetadataStore(with_mlmd=profile.metadata_store)
        self.cache: Dict[str, TaskRun] = {}   # fingerprint -> the execution it was made for
        self.runs = 0

    # -- the driver ------------------------------------------------------------------------
    def _name(self, artifact_id: int) -> str:
        return (_VERTEX_PREFIX if self.profile.vertex_names else "") + str(artifact_id)

    def _input_artifact(self, artifact: MlmdArtifact, declared_type: Mapping[str, Any]
                        ) -> Dict[str, Any]:
        """Vertex: typed, a resource name. ML Metadata: the id as name, no schema. Without it
        (#13986 driver convertArtifactToRuntimeArtifact): the producer's key as name, an
        artifactId, the stored schema type as schemaTitle."""
        if not self.profile.metadata_store:
            return {"name": artifact.output_key, "artifactId": str(artifact.id),
                    "uri": artifact.uri, "type": {"schemaTitle": artifact.schema},
                    "metadata": artifact.runtime_metadata()}
        return {"name": self._name(artifact.id), "uri": artifact.uri,
                "type": (dict(declared_type) if self.profile.typed_inputs
                         else {"instanceSchema": ""}),
                "metadata": artifact.runtime_metadata()}

    def _parameters(self, task: Mapping[str, Any], component: Mapping[str, Any],
                    root_values: Mapping[str, Any], produced: Mapping[str, TaskRun]
                    ) -> Dict[str, Any]:
        values = {}
        for name, source in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in source:
                key = source["componentInputParameter"]
                if key not in root_values:
                    raise ValueError(f"parent DAG does not have input parameter {key}")
                value = root_values[key]
            elif "runtimeValue" in source:
                runtime = source["runtimeValue"]
                if "constant" not in runtime:
                    raise ValueError(f"{name}: only runtimeValue.constant is resolved (spec "
                                     "2.1), got {runtime}")
                value = runtime["constant"]
            elif "taskOutputParameter" in source:
                out = source["taskOutputParameter"]
                value = produced[out["producerTask"]].executor_output.get(
                    "parameterValues", {})[out["outputParameterKey"]]
            else:
                raise ValueError(f"parameter {name}: unsupported source {source}")
            values[name] = value
        for name, definition in component.get("inputDefinitions", {}).get("parameters", {}).items():
            if name not in values:
                if not definition.get("isOptional") and "defaultValue" not in definition:
                    raise ValueError(f"neither value nor default value provided for "
                                     f"non-optional parameter {name!r}")
                continue
            if definition.get("parameterType") == "STRING" and not isinstance(values[name], str):
                values[name] = _text(values[name])
        return values

    def _outputs(self, pipeline_root: str, task_name: str, component: Mapping[str, Any],
                 task_dir: Path) -> Dict[str, Any]:
        salt = str(uuid.uuid4())
        declared = dict(component.get("outputDefinitions", {}).get("artifacts", {}))
        if self.profile.executor_logs:
            declared["executor-logs"] = {"artifactType": {"schemaTitle": "system.Artifact"}}
        artifacts = {}
        for name, spec in declared.items():
            artifact = {"uri": "/".join([pipeline_root.rstrip("/"), task_name, salt, name]),
                        "type": spec["artifactType"]}
            if spec.get("metadata"):
                artifact["metadata"] = spec["metadata"]
            if self.profile.vertex_names:
                artifact["name"] = _VERTEX_PREFIX + f"{task_name}-{salt}-{name}"
            elif self.profile.outputs_by_key:
                artifact["name"] = name
            artifacts[name] = {"artifacts": [artifact]}
        parameters = {name: {"outputFile": str(task_dir / "tmp" / "kfp" / "outputs" / name)}
                      for name in component.get("outputDefinitions", {}).get("parameters", {})}
        task_root = local_copy("/".join([pipeline_root.rstrip("/"), task_name, salt]))
        if self.profile.vertex_names:
            output_file = f"{pipeline_root.rstrip('/')}/{task_name}_{salt}/executor_output.json"
        elif self.profile.outputs_by_key and task_root:  # beside the local copy of the task root
            output_file = f"{task_root}/output_metadata.json"
        else:  # the pod's /tmp/kfp_outputs/output_metadata.json
            output_file = str(task_dir / "tmp" / "kfp_outputs" / "output_metadata.json")
        outputs = {"artifacts": artifacts, "outputFile": output_file}
        if parameters:
            outputs["parameters"] = parameters
        return outputs

    # -- the launcher ----------------------------------------------------------------------
    @staticmethod
    def _placeholders(executor_input: Mapping[str, Any]) -> Dict[str, str]:
        placeholders = {"{{$}}": json.dumps(executor_input, separators=(",", ":"))}
        for side in ("inputs", "outputs"):
            for name, artifacts in executor_input.get(side, {}).get("artifacts", {}).items():
                if artifacts.get("artifacts"):
                    uri = artifacts["artifacts"][0]["uri"]
                    placeholders[f"{{{{$.{side}.artifacts['{name}'].uri}}}}"] = uri
        for name, value in executor_input.get("inputs", {}).get("parameterValues", {}).items():
            placeholders[f"{{{{$.inputs.parameters['{name}']}}}}"] = _text(value)
        for name, parameter in executor_input.get("outputs", {}).get("parameters", {}).items():
            placeholders[f"{{{{$.outputs.parameters['{name}'].output_file}}}}"] = \
                parameter["outputFile"]
        return placeholders

    def _command(self, container: Mapping[str, Any], executor_input: Mapping[str, Any]
                 ) -> List[str]:
        """compileCmdAndArgs: from 2.14 {{$}} first, then the other placeholders over the
        result; before, all in one map (Go's order: here the others first)."""
        placeholders = self._placeholders(executor_input)
        whole = placeholders.pop("{{$}}")
        argv = []
        for arg in list(container["command"]) + list(container.get("args", [])):
            if self.profile.executor_input_first:
                arg = arg.replace("{{$}}", whole)
            for placeholder, value in placeholders.items():
                arg = arg.replace(placeholder, value)
            argv.append(arg.replace("{{$}}", whole))
        if argv[0] not in ("python", "python3"):
            raise ValueError(f"the emulator runs Python commands only, got {argv[0]!r}")
        return ((_NO_CAPABILITIES if self.profile.drops_capabilities else [])
                + [self.python] + argv[1:])

    def _execute(self, task_name: str, argv: List[str], log_path: Optional[str], pod: Path
                 ) -> str:
        proc = subprocess.run(pod_command(pod, argv), env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=str(self.scratch))
        if log_path:  # getLogWriter: stdout and stderr teed into the executor-logs file
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            Path(log_path).write_text(proc.stdout)
        if proc.returncode:
            raise TaskFailed(task_name, proc.returncode, proc.stdout)
        return proc.stdout

    @staticmethod
    def _read_output(output_file: str) -> Dict[str, Any]:
        path = Path(output_file)
        return json.loads(path.read_text()) if path.exists() else {}

    # -- one task ----------------------------------------------------------------------------
    def _run_task(self, spec, task_name, root_values, pipeline_root, produced, run_dir):
        started = time.monotonic()
        task = spec["root"]["dag"]["tasks"][task_name]
        component = spec["components"][task["componentRef"]["name"]]
        executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
        task_dir = run_dir / task_name
        task_dir.mkdir(parents=True)
        if "importer" in executor:
            return self._run_importer(task_name, executor["importer"], task, root_values,
                                      started)
        if "container" not in executor:
            raise ValueError(f"{task_name}: the emulated backend runs container and importer "
                             f"executors only, got {sorted(executor)}")
        container = executor["container"]
        inputs = {"parameterValues": self._parameters(task, component, root_values, produced),
                  "artifacts": {}}
        declared_inputs = component.get("inputDefinitions", {}).get("artifacts", {})
        for name, source in task.get("inputs", {}).get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]
            recorded = produced[producer["producerTask"]].outputs[producer["outputArtifactKey"]]
            inputs["artifacts"][name] = {"artifacts": [self._input_artifact(
                recorded, declared_inputs[name]["artifactType"])]}
        executor_input = {"inputs": inputs,
                          "outputs": self._outputs(pipeline_root, task_name, component, task_dir)}
        self._check_mounted(task_name, component["executorLabel"], executor_input)
        fingerprint = None
        if self.profile.caches and task.get("cachingOptions", {}).get("enableCache"):
            fingerprint = cache_fingerprint(executor_input, component, container)
            if fingerprint in self.cache:
                earlier = self.cache[fingerprint]
                return TaskRun(task_name, executor_input,
                               {"parameterValues": earlier.executor_output.get(
                                   "parameterValues", {})},
                               earlier.outputs, "", time.monotonic() - started, cached=True)
        outputs = executor_input["outputs"]
        logs = outputs["artifacts"].get("executor-logs", {}).get("artifacts", [{}])[0]
        if logs and self.profile.logs_retry_suffix:  # qualifyExecutorLogsURI, retry index 0
            logs["uri"] += "-0"
        pod = task_dir / "pod"  # the pod's own filesystem under /minio, /gcs and /s3
        log_path = in_pod(pod, local_copy(logs["uri"]) or logs["uri"]) if logs else None
        output_file = in_pod(pod, outputs["outputFile"])
        log, driver_output = "", None
        argv = self._command(container, _with_defaults(executor_input, component))
        try:  # one pod: its local copies go with it, whatever the outcome
            self._download(executor_input, pod)
            _make_output_dirs(outputs)
            if self.profile.runs_pre_cache_check and "lifecycle" in container:
                hook = container["lifecycle"]["preCacheCheck"]
                log += self._execute(f"{task_name} (preCacheCheck)", self._command(
                    hook, _with_defaults(executor_input, component)), None, pod)
                driver_output = self._read_output(output_file)
                for name, artifacts in driver_output.get("artifacts", {}).items():
                    if artifacts.get("artifacts") and name in outputs["artifacts"]:
                        _merge(artifacts["artifacts"][0],
                               outputs["artifacts"][name]["artifacts"][0])
            log += self._execute(task_name, argv, log_path, pod)
            executor_output = self._read_output(output_file)
            merged = {}
            for name, artifacts in outputs["artifacts"].items():
                merged[name] = json.loads(json.dumps(artifacts["artifacts"][0]))
                returned = executor_output.get("artifacts", {}).get(name, {}).get("artifacts")
                if returned and name != "executor-logs":
                    _merge(returned[0], merged[name])
            self._upload(task_name, merged, pod)
            left = left_in_pod(pod, executor_input, merged)
        finally:
            shutil.rmtree(pod, ignore_errors=True)
        recorded = {name: self.mlmd.record(name, artifact) for name, artifact in merged.items()}
        run = TaskRun(task_name, executor_input, executor_output, recorded, log,
                      time.monotonic() - started, driver_output, argv=argv, returned=merged,
                      left_in_pod=left)
        if fingerprint:  # createCache: only a succeeded execution is recorded
            self.cache[fingerprint] = run
        return run

    # -- storage: KFP's object store and the pods' volumes ----------------------------------
    def _check_mounted(self, task_name: str, label: str, executor_input: Mapping[str, Any]
                       ) -> None:
        """A path on a volume is there only in pods that mount it (driver makeVolumeMountPatch
        adds the platform spec's pvcMount of the task's executor). The volume is this machine's
        folder at the mount path itself."""
        mounted = [m["mountPath"] for m in self.platform.get(label, {}).get("pvcMount", [])]
        volumes = {m["mountPath"] for config in self.platform.values()
                   for m in config.get("pvcMount", [])}
        values = [v for v in executor_input["inputs"]["parameterValues"].values()
                  if isinstance(v, str)]
        for path in values:
            on = [v for v in volumes if (path + "/").startswith(v.rstrip("/") + "/")]
            if on and not any(v in mounted for v in on):
                raise TaskFailed(task_name, 1, f"{path}: No such file or directory (volume "
                                               f"{on[0]} is not mounted in this pod)")

    def store_path(self, uri: str) -> Path:
        """Where this backend's object store keeps an object-store URI: its folder, or for s3://
        (a real S3 server, the pods' AWS_ENDPOINT_URL) a fresh local snapshot of the objects
        under it, fetched with boto3."""
        if not uri.startswith("s3://"):
            return self.object_store / uri.split("://", 1)[1]
        bucket, _, key = uri[len("s3://"):].partition("/")
        snapshot = self.scratch / "s3-snapshots" / uuid.uuid4().hex / bucket / key
        client, key = self._s3(), key.rstrip("/")
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                if item["Key"] == key or item["Key"].startswith(key + "/"):
                    target = snapshot / item["Key"][len(key):].lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket, item["Key"], str(target))
        return snapshot

    def _s3(self):
        """A boto3 client of the S3 server the pods use (their AWS_* environment)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"],
                            region_name=self.env.get("AWS_REGION", "us-east-1"),
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])

    def _put(self, local: str, uri: str) -> None:
        """uploadBlob: a local file or folder to the object store, under uri."""
        if not uri.startswith("s3://"):
            if Path(local).is_dir():
                shutil.copytree(local, self.store_path(uri), dirs_exist_ok=True)
            else:
                self.store_path(uri).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(local, self.store_path(uri))
            return
        bucket, _, key = uri[len("s3://"):].partition("/")
        client = self._s3()
        files = [p for p in Path(local).rglob("*") if p.is_file()] if Path(local).is_dir() else [
            Path(local)]
        for path in files:
            rel = path.relative_to(local).as_posix() if Path(local).is_dir() else ""
            client.upload_file(str(path), bucket, f"{key}/{rel}" if rel else key)

    def _download(self, executor_input: Mapping[str, Any], pod: Path) -> None:
        """launcher downloadArtifacts: every object-store input to its local path in the pod
        (localPathForURI); prepareOutputFolders: the parent of every output's local path."""
        for artifacts in executor_input["inputs"].get("artifacts", {}).values():
            uri = artifacts["artifacts"][0]["uri"]
            local = in_pod(pod, local_copy(uri))
            if local:
                source = self.store_path(uri)
                if not source.exists() and uri.startswith("s3://"):
                    continue  # objectstore.DownloadBlob: nothing under the key, nothing copied
                if not source.exists():
                    raise ValueError(f"{uri}: not in the object store")
                if source.is_dir():
                    shutil.copytree(source, local, dirs_exist_ok=True)
                else:
                    Path(local).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, local)
        for artifacts in executor_input["outputs"]["artifacts"].values():
            local = in_pod(pod, local_copy(artifacts["artifacts"][0]["uri"]))
            if local:
                Path(local).parent.mkdir(parents=True, exist_ok=True)

    def _upload(self, task_name: str, merged: Mapping[str, Dict[str, Any]], pod: Path
                ) -> None:
        """launcher uploadOutputArtifacts: each object-store output (its URI after the
        ExecutorOutput's merge) from its local path to the store. A missing local copy: the
        MLMD launchers warn and go on; without ML Metadata the task fails (a local-path root,
        which stands for a bucket here, is its own local copy)."""
        for name, artifact in merged.items():
            uri = artifact["uri"]
            local = in_pod(pod, local_copy(uri))
            if not local and uri.startswith(tuple(LOCAL_COPIES.values())):
                raise ValueError(f"output {name}: the ExecutorOutput names the local copy "
                                 f"{uri}, which no other pod sees")
            if self.profile.requires_local_outputs and not Path(local or uri).exists():
                raise TaskFailed(task_name, 1, f"declared output artifact {name!r} is missing "
                                               f"at {local or uri!r}")
            if local and Path(local).exists():
                self._put(local, uri)

    def _run_importer(self, task_name, importer, task, root_values, started):
        uri_spec = importer["artifactUri"]
        if "constant" in uri_spec:
            uri = uri_spec["constant"]
        else:
            source = task["inputs"]["parameters"][uri_spec["runtimeParameter"]]
            uri = root_values[source["componentInputParameter"]]
        if not uri:
            raise ValueError(f"{task_name}: empty artifact URI")
        artifact = {"uri": uri, "type": importer["typeSchema"],
                    "metadata": importer.get("metadata", {})}
        return TaskRun(task_name, {}, {}, {"artifact": self.mlmd.record("artifact", artifact)},
                       "", time.monotonic() - started, returned={"artifact": artifact})

    def adopt(self, run: TaskRun) -> TaskRun:
        """Another backend's task run, its returned artifacts recorded in this store."""
        outputs = {name: self.mlmd.record(name, artifact)
                   for name, artifact in run.returned.items()}
        return dataclasses.replace(run, outputs=outputs, reused=True)

    # -- a run -------------------------------------------------------------------------------
    def run(self, spec: Mapping[str, Any], parameter_values: Mapping[str, Any] = (),
            pipeline_root: Optional[str] = None, platform_spec: Optional[Mapping[str, Any]] = None,
            reuse: Mapping[str, TaskRun] = ()) -> Dict[str, TaskRun]:
        """Runs every task of the spec once, in dependency order (independent tasks up to
        `parallel` at a time, as the backend would start them together); raises TaskFailed.
        platform_spec: the package's Kubernetes PlatformSpec (volumes), if it has one.
        reuse: tasks not run; what each returned in another backend's run is recorded here as
        this backend's launcher records it (adopt), for the tasks downstream."""
        import kfp_exit_emulation  # the exit handler's sub-DAG and exit task: that module

        if kfp_exit_emulation.holds_exit_handler(spec):
            return kfp_exit_emulation.run(self, spec, parameter_values, pipeline_root,
                                          platform_spec, reuse)
        self.runs += 1
        self.platform = dict((platform_spec or {}).get("platforms", {}).get("kubernetes", {})
                             .get("deploymentSpec", {}).get("executors", {}))
        run_dir = self.scratch / f"run-{self.runs}"
        declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
        values = dict(parameter_values)
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise ValueError(f"the pipeline declares no parameter(s) {unknown}")
        for name, definition in declared.items():
            if name not in values and "defaultValue" in definition:
                values[name] = definition["defaultValue"]
        # runtime config values are google.protobuf.Values: every number is a double
        values = {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                  for k, v in values.items()}
        root = pipeline_root or spec["defaultPipelineRoot"]
        root = f"{root.rstrip('/')}/{spec['pipelineInfo']['name']}/run-{self.runs}"
        tasks = spec["root"]["dag"]["tasks"]
        needs = {name: _upstream(task) for name, task in tasks.items()}
        produced = {name: self.adopt(run) for name, run in dict(reuse).items()}
        running: Dict[concurrent.futures.Future, str] = {}
        with concurrent.futures.ThreadPoolExecutor(self.parallel) as pool:
            while len(produced) < len(tasks):
                started = set(running.values()) | set(produced)
                for name in topological_order(spec):
                    if (name not in started and needs[name] <= set(produced)
                            and len(running) < self.parallel):
                        running[pool.submit(self._run_task, spec, name, values, root,
                                            dict(produced), run_dir)] = name
                if not running:
                    raise ValueError("no task can start")
                done, _ = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    try:
                        produced[name] = future.result()
                    except Exception:
                        for other in running:
                            other.cancel()
                        raise
        return produced


def cache_fingerprint(executor_input: Mapping[str, Any], component: Mapping[str, Any],
                      container: Mapping[str, Any]) -> str:
    """driver getFingerPrint -> cacheutils GenerateCacheKey and GenerateFingerPrint: a SHA-256
    of the input artifacts' names (their ML Metadata ids; without it the artifactId, #13986
    cacheutils: so a new artifact upstream is a new key), the input parameter values, the
    outputs' declared types and metadata (URIs wiped), the output parameters' types, and the
    image with the unresolved command and args."""
    inputs, outputs = executor_input["inputs"], executor_input["outputs"]
    key = {
        "inputArtifactNames": {name: {"artifactNames": [a.get("artifactId") or a.get("name", "")
                                                        for a in artifacts["artifacts"]]}
                               for name, artifacts in inputs.get("artifacts", {}).items()},
        "inputParameterValues": inputs.get("parameterValues", {}),
        "outputArtifactsSpec": {
            name: {k: artifacts["artifacts"][0][k] for k in ("name", "type", "metadata")
                   if k in artifacts["artifacts"][0]}
            for name, artifacts in outputs.get("artifacts", {}).items() if artifacts["artifacts"]},
        "outputParametersSpec": {
            name: definition["parameterType"] for name, definition in
            component.get("outputDefinitions", {}).get("parameters", {}).items()},
        "containerSpec": {"image": container.get("image", ""),
                          "cmdArgs": list(container["command"]) + list(container.get("args", []))},
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


# Object stores, and where the launcher puts its local copies (launcher_v2.go
# localPathForURI): minio:// and gs:// kept as folders here, s3:// on a real S3 server.
LOCAL_COPIES = {"minio://": "/minio/", "gs://": "/gcs/", "s3://": "/s3/"}


def local_copy(uri: str) -> str:
    """The launcher's local path for an object-store URI; "" for any other."""
    for scheme, root in LOCAL_COPIES.items():
        if uri.startswith(scheme):
            return root + uri[len(scheme):]
    return ""


def in_pod(pod: Path, path: str) -> str:
    """Where the launcher, outside the pod's mount namespace, finds a path the pod sees: its
    local copies (/minio/..., /gcs/..., /s3/...) in the pod's own folder; others as they are."""
    return str(pod) + path if path.startswith(tuple(LOCAL_COPIES.values())) else path


# Each pod's command runs in a mount namespace of its own (unshare: private propagation) with
# the pod's folder bound over this machine's /minio, /gcs and /s3: what one pod copies there
# no other pod sees, as on a cluster, and nothing lands in this machine's folders.
_BIND_POD = ('pod=$0; for m in minio gcs s3; do mkdir -p "$pod/$m" && '
             'mount --bind "$pod/$m" "/$m" || exit 125; done; exec "$@"')


def pod_command(pod: Path, argv: List[str]) -> List[str]:
    """argv run in its pod: the local-copy roots bound to the pod's own folders."""
    for root in LOCAL_COPIES.values():
        Path(root).mkdir(exist_ok=True)  # the mount points, empty on this machine
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _BIND_POD,
            str(pod)] + list(argv)


def left_in_pod(pod: Path, executor_input: Mapping[str, Any],
                merged: Mapping[str, Mapping[str, Any]]) -> List[str]:
    """Files under the pod's local copies outside every input's and output's local path, the
    outputFile (the launcher reads it) and TFX's scratch folder beside it (kubeflow_v2_run_executor
    tmp_path = <folder of outputFile>/.temp, meant to go): the launcher uploads none of them."""
    kept = [local_copy(a["artifacts"][0]["uri"]) for side in ("inputs", "outputs")
            for a in executor_input[side].get("artifacts", {}).values() if a["artifacts"]]
    kept += [local_copy(a["uri"]) for a in merged.values()]
    output_file = executor_input["outputs"]["outputFile"]
    kept = [k for k in kept if k] + [output_file, os.path.dirname(output_file) + "/.temp"]
    left = []
    for path in sorted(p for p in pod.rglob("*") if p.is_file()):
        seen = "/" + path.relative_to(pod).as_posix()
        if not any(seen == k or seen.startswith(k.rstrip("/") + "/") for k in kept):
            left.append(seen)
    return left


# TFX's value artifacts are files at their URI (tfx.types.value_artifact and standard_artifacts).
_FILE_TITLES = {"tfx.String", "tfx.Integer", "tfx.Float", "tfx.Boolean", "tfx.Bytes",
                "tfx.JsonValue", "system.Artifact"}


def _make_output_dirs(outputs: Mapping[str, Any]) -> None:
    """Local folders stand for a bucket, where every prefix "exists": each output's folder is
    made (for a file-valued output, its parent), as TFX's own launcher does locally
    (tfx.orchestration.portable.outputs_utils.make_output_dirs). KFP's launcher makes only the
    parents of outputs' /gcs/... local paths (prepareOutputFolders); TFX writes to gs:// where
    no folder is needed."""
    for artifacts in outputs["artifacts"].values():
        for artifact in artifacts["artifacts"]:
            if local_copy(artifact["uri"]):
                continue  # the launcher's local copy: Backend._download
            title = yaml.safe_load(_title_schema(artifact["type"])).get("title")
            path = Path(artifact["uri"])
            (path.parent if title in _FILE_TITLES else path).mkdir(parents=True, exist_ok=True)


def _with_defaults(executor_input: Mapping[str, Any], component: Mapping[str, Any]
                   ) -> Dict[str, Any]:
    """launcher addDefaultParams: a copy with the component's own parameter defaults where the
    driver set no value (used for the placeholders only)."""
    copy = json.loads(json.dumps(executor_input))
    values = copy["inputs"].setdefault("parameterValues", {})
    for name, definition in component.get("inputDefinitions", {}).get("parameters", {}).items():
        if "defaultValue" in definition:
            values.setdefault(name, definition["defaultValue"])
    return copy


def _merge(src: Mapping[str, Any], dst: Dict[str, Any]) -> None:
    """launcher mergeRuntimeArtifacts: uri and metadata of the returned artifact win."""
    if src.get("uri"):
        dst["uri"] = src["uri"]
    if src.get("metadata"):
        dst.setdefault("metadata", {}).update(src["metadata"])
