"""KFP's exit handler as the backends run it, for kfp_emulator.Backend.run (which hands a spec
whose root holds a sub-DAG to `run` here): the root's parameters, the sub-DAG task run as a DAG
of its own, then each task with triggerPolicy ALL_UPSTREAM_TASKS_COMPLETED, whatever the
sub-DAG's outcome, with its final status.

From kubeflow/pipelines 2.14.0 (and unchanged to 2.17.0):
- backend/src/v2/compiler/argocompiler/dag.go: a task with strategy ALL_UPSTREAM_TASKS_COMPLETED
  depends on its upstream task having finished in any state, the others on its success.
- backend/src/v2/driver (DAG driver, resolve.go resolveInputs): a DAG task's inputs resolve
  against its parent's parameters (componentInputParameter) and become the sub-DAG's; the
  tasks inside resolve theirs against the sub-DAG's inputs.
- resolve.go, TaskInputsSpec_InputParameterSpec_TaskFinalStatus_: the value is the
  PipelineTaskFinalStatus of the task's first dependent task, as a struct: state = the
  producer's ML Metadata execution state as a string (COMPLETE, FAILED, ...), pipelineTaskName =
  that task's (the sub-DAG's) name, pipelineJobResourceName = the run's name, error = {} ("TODO:
  Implement fields Message and Code").
- 2.5.0 (and 2.4.1) backend/src/v2/driver/driver.go: the TaskFinalStatus case is a TODO; the
  driver fails the task ("parameter spec of type ... not implemented yet").
Vertex runs exit handlers with the final status (TFX's decorators.exit_handler: "only supported
in Vertex AI"); its state names are PipelineTaskState's (SUCCEEDED, FAILED), here with an empty
error as well (Vertex's service is closed source).
"""
import json
from typing import Any, Dict, Mapping, Optional

import kfp_emulator

FINAL_STATUS_PROFILES = frozenset({"kfp-2.14", "kfp-2.17", "kfp-master", "vertex"})
ALL_COMPLETED = "ALL_UPSTREAM_TASKS_COMPLETED"


class RunFailed(kfp_emulator.TaskFailed):
    """A task of the sub-DAG failed; the exit tasks ran after it (`runs` holds them)."""

    def __init__(self, failed: kfp_emulator.TaskFailed, runs: Dict[str, kfp_emulator.TaskRun]):
        super().__init__(failed.task, failed.returncode, failed.log)
        self.runs = runs


def holds_exit_handler(spec: Mapping[str, Any]) -> bool:
    """Whether a root task runs a DAG component (the exit handler's sub-DAG)."""
    return any("dag" in spec["components"][task["componentRef"]["name"]]
               for task in spec["root"]["dag"]["tasks"].values())


def _root_values(spec: Mapping[str, Any], parameter_values: Mapping[str, Any]) -> Dict[str, Any]:
    """The run's parameter values, else the root's defaults (argo.go fills them in)."""
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    unknown = sorted(set(parameter_values) - set(declared))
    if unknown:
        raise ValueError(f"the pipeline declares no parameter(s) {unknown}")
    values = {name: definition["defaultValue"] for name, definition in declared.items()
              if "defaultValue" in definition}
    values.update(parameter_values)
    return values


def _sub_dag_values(task: Mapping[str, Any], root_values: Mapping[str, Any]) -> Dict[str, Any]:
    """The DAG driver: the sub-DAG task's inputs from its parent's parameters."""
    values = {}
    for name, source in task.get("inputs", {}).get("parameters", {}).items():
        if "componentInputParameter" not in source:
            raise ValueError(f"sub-DAG input {name}: only componentInputParameter is emulated")
        key = source["componentInputParameter"]
        if key not in root_values:
            raise ValueError(f"parent DAG does not have input parameter {key}")
        values[name] = root_values[key]
    return values


def final_status(profile: kfp_emulator.Profile, dag_task: str, succeeded: bool,
                 run_name: str) -> Dict[str, Any]:
    """The PipelineTaskFinalStatus struct the driver hands the exit task."""
    if profile.name not in FINAL_STATUS_PROFILES:
        raise kfp_emulator.TaskFailed(
            "exit task", 1, "parameter spec of type "
            "*pipelinespec.TaskInputsSpec_InputParameterSpec_TaskFinalStatus_ not implemented yet")
    if profile.name == "vertex":
        state = "SUCCEEDED" if succeeded else "FAILED"
    else:
        state = "COMPLETE" if succeeded else "FAILED"
    return {"state": state, "pipelineTaskName": dag_task, "pipelineJobResourceName": run_name,
            "error": {}}


def run(backend: kfp_emulator.Backend, spec: Mapping[str, Any],
        parameter_values: Mapping[str, Any] = (), pipeline_root: Optional[str] = None,
        platform_spec: Optional[Mapping[str, Any]] = None,
        reuse: Mapping[str, kfp_emulator.TaskRun] = ()) -> Dict[str, kfp_emulator.TaskRun]:
    """Runs the sub-DAG's tasks (Backend.run on the sub-DAG as a DAG of its own: same run
    folder, store and cache), then the exit tasks with its final status. Returns every task's
    run; raises RunFailed (with the exit tasks' runs) when the sub-DAG failed."""
    root_tasks = spec["root"]["dag"]["tasks"]
    root_values = _root_values(spec, dict(parameter_values))
    dag_name, dag_task = next((name, task) for name, task in root_tasks.items()
                              if "dag" in spec["components"][task["componentRef"]["name"]])
    component = spec["components"][dag_task["componentRef"]["name"]]
    exits = {name: task for name, task in root_tasks.items() if name != dag_name}
    for name, task in exits.items():
        if (task.get("triggerPolicy", {}).get("strategy") != ALL_COMPLETED
                or task.get("dependentTasks") != [dag_name]):
            raise ValueError(f"{name}: only exit tasks after the sub-DAG are emulated at the root")
    inner = dict(spec, root={"inputDefinitions": component.get("inputDefinitions", {}),
                             "dag": component["dag"]})
    failure: Optional[kfp_emulator.TaskFailed] = None
    try:
        runs = backend.run(inner, _sub_dag_values(dag_task, root_values),
                           pipeline_root=pipeline_root, platform_spec=platform_spec, reuse=reuse)
    except kfp_emulator.TaskFailed as err:
        runs, failure = {}, err
    # the same run: Backend.run's run folder and scratch folder
    run_name = f"run-{backend.runs}"
    root = "/".join([(pipeline_root or spec["defaultPipelineRoot"]).rstrip("/"),
                     spec["pipelineInfo"]["name"], run_name])
    status = final_status(backend.profile, dag_name, failure is None, run_name)
    values = {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
              for k, v in root_values.items()}
    exit_runs = {}
    for name, task in exits.items():
        resolved = json.loads(json.dumps(task))
        for source in resolved.get("inputs", {}).get("parameters", {}).values():
            if "taskFinalStatus" in source:
                source.clear()
                source["runtimeValue"] = {"constant": status}  # what the driver resolved
        view = dict(spec, root={"dag": {"tasks": {name: resolved}}})
        exit_runs[name] = backend._run_task(view, name, values, root, {},
                                            backend.scratch / run_name)
    if failure is not None:
        raise RunFailed(failure, exit_runs)
    return dict(runs, **exit_runs)
