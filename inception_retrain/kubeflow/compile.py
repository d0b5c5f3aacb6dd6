"""Compiles the one DAG (inception_retrain.pipeline.pipeline.create_pipeline) with TFX's
KubeflowV2DagRunner.

kfp target: the PipelineSpec YAML that kfp.Client uploads to open-source Kubeflow Pipelines 2.
vertex target: a Vertex AI PipelineJob JSON. Both use pipeline spec schema 2.1.0, the only one the
open-source backend accepts. After the runner, this module adds what TFX leaves out: runtime
parameter defaults (TFX compiles a RuntimeParameter's type but drops its default), the pipeline
root, CPU/memory/GPU per task, and no caching for tasks that read outside state by path. It then
refuses executors the target backend cannot run (open-source KFP: resolver nodes), and where the
backend resolves a task's final status (Vertex, KFP >= 2.14: targets.KFP_VERSIONS) wraps the
tasks in a sub-DAG with the exit task after it (kubeflow/exit_handler.py).
"""
import dataclasses
import json
import os
from typing import Any, Dict, Optional, Sequence, Tuple

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx import version as tfx_version
from tfx.orchestration.kubeflow.v2 import compiler_utils

from inception_retrain.components import node_ids
from inception_retrain.components.run_reporter import component as pipeline_step
from inception_retrain.kubeflow import exit_handler, parameters, targets
from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline.pipeline import (
    create_eval_config,
    create_pipeline,
    dag_arguments,
)

SCHEMA_VERSION = "2.1.0"
_INFRA_VALIDATOR = tfx.components.InfraValidator
# The V2 compiler's own rules for artifact types (tfx.orchestration.kubeflow.v2.compiler_utils).
_STANDARD_ARTIFACT_TYPES = compiler_utils._SUPPORTED_STANDARD_ARTIFACT_TYPES
_CUSTOM_TYPE_NAME = compiler_utils._SCHEMA_TITLE_RE


class UnsupportedNodeError(config_lib.ConfigError):
    """The DAG holds a node the target backend cannot run; the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class Compiled:
    """What compile() wrote: the file, the PipelineSpec (parsed back) and parameter defaults."""

    path: str
    spec: pipeline_spec_pb2.PipelineSpec
    defaults: Dict[str, Any]
    tasks: Tuple[str, ...] = ()   # every task that runs, the exit task's sub-DAG included


def eval_config_json(config: config_lib.PipelineConfig) -> str:
    """The gating EvalConfig as JSON, field names as in the proto (what TFX itself passes)."""
    evaluation = config.evaluation
    return json_format.MessageToJson(
        create_eval_config(evaluation.accuracy_floor, evaluation.top_k),
        preserving_proto_field_name=True, sort_keys=True, indent=None)


def compiled_defaults(config: config_lib.PipelineConfig, schema_path: str) -> Dict[str, Any]:
    """Each runtime parameter's default: the DAG value it replaces, as the local run has it."""
    return parameters.default_values(
        dag_arguments(config, data_root=config.data.root, schema_path=schema_path),
        eval_config_json(config))


def build(config: config_lib.PipelineConfig, schema_path: str, target: targets.Target
          ) -> tfx.dsl.Pipeline:
    """The DAG of pipeline.dag_arguments (the local runner's mapping) with every
    runtime-settable value replaced by a RuntimeParameter whose default is the configuration's,
    a DataFingerprint node where the target runs no ExampleGen driver, and the RunReporter
    last (a scheduled run leaves the report and model card a local run's command writes)."""
    arguments = dag_arguments(config, data_root=config.data.root, schema_path=schema_path)
    defaults = compiled_defaults(config, schema_path)
    arguments["runtime"] = dataclasses.replace(
        arguments["runtime"], fingerprint_data=not target.runs_example_gen_driver)
    runtime = {spec.replaces: tfx.dsl.experimental.RuntimeParameter(
        name=spec.name, ptype=spec.ptype, default=defaults[spec.name],
        description=spec.description) for spec in parameters.PARAMETERS}
    return create_pipeline(
        **arguments, parameters=runtime,
        report_step=pipeline_step.step(config.pipeline_name, runtime["paths.data_root"],
                                       json.dumps(dataclasses.asdict(config.model_card))))


def _resources(target: targets.Target, resources: targets.Resources, gpu_type: str
               ) -> Dict[str, Any]:
    """ResourceSpec JSON. Vertex sizes its machine from the limits; on Kubernetes requests
    equal limits, so a pod is scheduled only where it fits and keeps what it asked for."""
    spec: Dict[str, Any] = {"cpuLimit": resources.cpu, "memoryLimit": resources.memory_gb}
    if target.name == "kfp":
        spec.update(cpuRequest=resources.cpu, memoryRequest=resources.memory_gb)
    if resources.gpus:
        spec["accelerator"] = {"type": gpu_type or target.gpu_type, "count": resources.gpus}
    return spec


def _finish_spec(spec: Dict[str, Any], config: config_lib.PipelineConfig,
                 options: targets.CompileOptions, defaults: Dict[str, Any]) -> None:
    """Adds what the runner leaves out (see the module docstring), in place."""
    target = options.target_spec
    spec["defaultPipelineRoot"] = config.pipeline_root
    spec["pipelineInfo"]["displayName"] = config.pipeline_name
    spec["pipelineInfo"]["description"] = (
        f"inception-retrain for {target.name}; config: "
        + json.dumps(config_lib.to_dict(config), sort_keys=True))
    declared = spec["root"].setdefault("inputDefinitions", {}).setdefault("parameters", {})
    for name, value in defaults.items():
        if name in declared:
            declared[name].update(defaultValue=value, isOptional=True,
                                  description=parameters.BY_NAME[name].description)
    _use_project_entrypoint(spec, target.kfp_launcher, options.exit_task)
    _name_parameter_producers(spec)
    executors = spec["deploymentSpec"]["executors"]
    # The served-model gate reads the push destination by path: a cached blessing would have
    # been made against what was served then (the Pusher's compare and swap would refuse it).
    uncached = set(target.uncached_tasks) | (
        {node_ids.EVALUATOR} if config.evaluation.baseline == "served" else set())
    for task_name, task in spec["root"]["dag"]["tasks"].items():
        if task_name in uncached:
            task["cachingOptions"] = {"enableCache": False}
        label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        container = executors[label].get("container")
        if container is not None:
            container["resources"] = _resources(target, options.resources_for(task_name),
                                                options.gpu_type)


def _name_parameter_producers(spec: Dict[str, Any]) -> None:
    """TFX 1.16's step builder names the producer of a task output parameter `<node id>_task`
    (tfx.orchestration.kubeflow.v2.step_builder), but names the task itself `<node id>`, so a
    backend's driver would find no such task: the producer is named as its task is."""
    tasks = spec["root"]["dag"]["tasks"]
    for task in tasks.values():
        for source in task.get("inputs", {}).get("parameters", {}).values():
            output = source.get("taskOutputParameter")
            if output and output["producerTask"] not in tasks:
                producer = output["producerTask"].removesuffix("_task")
                if producer not in tasks:
                    raise RuntimeError(f"no task produces parameter {output}")
                output["producerTask"] = producer


ENTRYPOINT = ["python", "-m", "inception_retrain.kubeflow.entrypoint"]
_TFX_ENTRYPOINT_MODULE = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


def _use_project_entrypoint(spec: Dict[str, Any], kfp_launcher: bool = False,
                            task_records: bool = False) -> None:
    """Every TFX container runs inception_retrain.kubeflow.entrypoint (which repairs what the
    open-source backend sends, then runs TFX's entrypoint), with the component's artifact
    definitions: inputs in TFX's own --json_serialized_inputs_spec_args (TFX compiles only the
    parameters there), outputs in the entrypoint's --json_serialized_outputs_spec_args;
    kfp_launcher: KFP's launcher runs the tasks (gs:// artifacts through its local copies);
    task_records: each task leaves its record for the exit task."""
    from inception_retrain.kubeflow import entrypoint

    executors = spec["deploymentSpec"]["executors"]
    for component in spec["components"].values():
        container = executors[component["executorLabel"]].get("container")
        if container is None or container.get("command", [])[-1:] != [_TFX_ENTRYPOINT_MODULE]:
            continue
        container["command"] = list(ENTRYPOINT)
        args = container["args"]
        inputs = component.get("inputDefinitions", {})
        flag = args.index(entrypoint.INPUTS_SPEC_FLAG)
        args[flag + 1] = json.dumps(
            dict(json.loads(args[flag + 1]), **({"artifacts": inputs["artifacts"]}
                                                if "artifacts" in inputs else {})),
            indent=2, sort_keys=True)
        args[flag + 2:flag + 2] = [  # before the Beam arguments, which TFX compiles last
            entrypoint.OUTPUTS_SPEC_FLAG,
            json.dumps(component.get("outputDefinitions", {}), indent=2, sort_keys=True)] + (
            [entrypoint.KFP_LAUNCHER_FLAG] if kfp_launcher else []) + (
            [entrypoint.TASK_RECORDS_FLAG] if task_records else [])


def platform_spec(spec: Dict[str, Any], volumes: Sequence[targets.Volume]
                  ) -> Optional[Dict[str, Any]]:
    """The Kubernetes PlatformSpec mounting each volume into every task (None without volumes):
    the second YAML document of a KFP package, as kfp-kubernetes' mount_pvc writes it. The
    claim is given as `constant`: deprecated since kfp-kubernetes 1.4 for pvcNameParameter, but
    the one field every backend from 2.4 to master reads (2.4.1's driver refuses the newer field
    as unknown; driver makeVolumeMountPatch)."""
    if not volumes:
        return None
    mounts = [{"mountPath": v.mount_path, "constant": v.claim} for v in volumes]
    executors = {label: {"pvcMount": [dict(m) for m in mounts]}
                 for label, executor in sorted(spec["deploymentSpec"]["executors"].items())
                 if "container" in executor}
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}


def check_executors(spec: Dict[str, Any], target: targets.Target) -> None:
    """Refuses executor kinds the target's backend does not implement, naming the tasks."""
    executors = spec["deploymentSpec"]["executors"]
    refused = []
    for task_name, task in sorted(spec["root"]["dag"]["tasks"].items()):
        label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        kinds = sorted(set(executors[label]) - set(target.executor_kinds))
        if kinds:
            refused.append(f"{task_name} ({', '.join(kinds)})")
    if refused:
        raise UnsupportedNodeError(
            f"the {target.name} target cannot run task(s) {', '.join(refused)}: its backend "
            f"runs only {' and '.join(target.executor_kinds)} executors (open-source KFP has no "
            "resolver). Use evaluation.baseline=served (or none) for this target, or compile "
            "--target vertex")


def _header(config: config_lib.PipelineConfig, options: targets.CompileOptions) -> str:
    images = options.images()
    return "\n".join([
        f"# inception-retrain, compiled for {options.target} (open-source Kubeflow Pipelines 2)",
        f"# by KubeflowV2DagRunner, tfx {tfx_version.__version__}, schema {SCHEMA_VERSION}",
        f"# images: {images['default']} (Trainer: {images['Trainer']})",
        f"# pipeline root: {config.pipeline_root}",
        *(f"# volume: {v.claim} at {v.mount_path} in every task" for v in options.volumes),
        f"# KFP backend: {options.kfp_version}; " + (
            f"exit task {node_ids.FINAL_REPORT} after every run (verdict, webhook_url)"
            if options.exit_task else "no exit task: a failed run writes no report and alerts "
            "no one (the final status needs KFP >= 2.14)"),
        "# upload: inception-retrain schedule create --package <this file> ... "
        "(see kubeflow/README.md)",
        ""])


def check_nodes(dag: tfx.dsl.Pipeline) -> None:
    """Refuses what KubeflowV2DagRunner cannot compile for any target, naming node and fix."""
    problems = []
    for node in dag.components:
        if isinstance(node, _INFRA_VALIDATOR):
            problems.append(f"{node.id} is an InfraValidator (not supported by the V2 compiler)")
        for key, channel in {**node.inputs, **node.outputs}.items():
            artifact_type = channel.type
            if (artifact_type not in _STANDARD_ARTIFACT_TYPES
                    and not _CUSTOM_TYPE_NAME.fullmatch(artifact_type.TYPE_NAME)):
                problems.append(
                    f"{node.id}.{key} has the custom artifact type {artifact_type.TYPE_NAME!r}; "
                    "KubeflowV2DagRunner needs custom type names of the form "
                    "'<namespace>.<Title>' (e.g. 'inception_retrain."
                    f"{artifact_type.TYPE_NAME.rpartition('.')[2]}'), "
                    f"regex {_CUSTOM_TYPE_NAME.pattern}")
    if problems:
        raise UnsupportedNodeError("cannot compile for Kubeflow: " + "; ".join(
            sorted(set(problems))))


def compile_spec(config: config_lib.PipelineConfig, options: targets.CompileOptions
                 ) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
    """Compiles in memory: (PipelineJob dict, its finished PipelineSpec dict, parameter
    defaults). Raises ConfigError for anything the target could not run."""
    targets.check(config, options)
    dag = build(config, options.schema_path, options.target_spec)
    check_nodes(dag)
    images = options.images()
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            display_name=config.pipeline_name,
            default_image={"default_image_path": images["default"],
                           node_ids.TRAINER: images[node_ids.TRAINER]},
            use_pipeline_spec_2_1=True))
    job = runner.run(dag, write_out=False)
    spec_dict = job["pipelineSpec"]
    defaults = compiled_defaults(config, options.schema_path)
    _finish_spec(spec_dict, config, options, defaults)
    check_executors(spec_dict, options.target_spec)
    if options.exit_task:
        add_exit_task(spec_dict, config, options, defaults)
    return job, spec_dict, defaults


def add_exit_task(spec: Dict[str, Any], config: config_lib.PipelineConfig,
                  options: targets.CompileOptions, defaults: Dict[str, Any]) -> None:
    """The sub-DAG and the exit task (exit_handler.add_exit_task) with the exit task's own
    parameters declared at the root (their defaults added to `defaults`), in place."""
    exit_defaults = parameters.exit_task_defaults(config)
    defaults.update(exit_defaults)
    container = exit_handler.exit_task_container(
        options.images()["default"], config.pipeline_name, options.target_spec.kfp_launcher)
    container["resources"] = _resources(options.target_spec,
                                        options.resources_for(node_ids.FINAL_REPORT),
                                        options.gpu_type)
    exit_handler.add_exit_task(
        spec, container,
        {name: {"parameterType": "STRING", "defaultValue": value, "isOptional": True,
                "description": parameters.BY_NAME[name].description}
         for name, value in exit_defaults.items()},
        forwarded=["data_root"])


def compile_pipeline(config: config_lib.PipelineConfig,
                     options: targets.CompileOptions) -> Compiled:
    """Compiles for options.target into options.output (written only when every check passed)."""
    job, spec_dict, defaults = compile_spec(config, options)
    # Parsing back with kfp-pipeline-spec (unknown fields are errors) proves the file is a
    # PipelineSpec and its deploymentSpec a PipelineDeploymentConfig.
    spec = json_format.ParseDict(spec_dict, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(spec_dict["deploymentSpec"],
                          pipeline_spec_pb2.PipelineDeploymentConfig())
    if spec.schema_version != SCHEMA_VERSION:
        raise RuntimeError(f"KubeflowV2DagRunner wrote schema {spec.schema_version}, "
                           f"expected {SCHEMA_VERSION}")
    os.makedirs(os.path.dirname(os.path.abspath(options.output)), exist_ok=True)
    with open(options.output, "w") as f:
        if options.target == "kfp":
            f.write(_header(config, options))
            platform = platform_spec(spec_dict, options.volumes)
            yaml.safe_dump_all([spec_dict] + ([platform] if platform else []), f,
                               sort_keys=True)
        else:
            job["pipelineSpec"] = spec_dict
            job["runtimeConfig"] = {"gcsOutputDirectory": config.pipeline_root}
            json.dump(job, f, indent=1, sort_keys=True)
    return Compiled(options.output, spec, defaults,
                    tuple(exit_handler.pipeline_tasks(spec_dict)))
