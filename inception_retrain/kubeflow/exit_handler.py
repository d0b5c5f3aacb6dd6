"""The exit handler of a compiled PipelineSpec, made by post-processing TFX's output: every task
moves into one sub-DAG task, and the exit task (kubeflow/exit_task.py) runs after it whatever
its outcome, with its final status.

TFX's own exit handler (KubeflowV2DagRunner.set_exit_handler) builds the same shape, but its
`tfx-dag` sub-DAG declares no inputs, so the pipeline's runtime parameters would not resolve
inside it. Here the sub-DAG declares the root's parameters and gets each from the root
(componentInputParameter), so the tasks inside keep their wiring unchanged. Layout as the KFP SDK
compiles dsl.ExitHandler (kubeflow/pipelines 2.14.0 backend/src/v2/compiler/testdata/
final_status_state.json): the exit task depends on the sub-DAG task, has triggerPolicy
ALL_UPSTREAM_TASKS_COMPLETED and an input `taskFinalStatus: {producerTask: <sub-DAG task>}` of
type TASK_FINAL_STATUS. No TFX import here.
"""
from typing import Any, Dict, List, Mapping

from inception_retrain.components import node_ids

DAG_COMPONENT = "comp-" + node_ids.PIPELINE_DAG
EXIT_COMPONENT = "comp-" + node_ids.FINAL_REPORT
EXIT_EXECUTOR = "exec-" + node_ids.FINAL_REPORT
STATUS_INPUT = "status"      # the exit task's PipelineTaskFinalStatus
REPORT_OUTPUT = "report"     # the exit task's output: verdict.json (+ report.html/.json)
REPORT_TYPE = {"schemaTitle": "inception_retrain.RunReportFiles", "schemaVersion": "0.0.1"}
EXIT_TASK_MODULE = "inception_retrain.kubeflow.exit_task"


def pipeline_tasks(spec: Mapping[str, Any]) -> Dict[str, Any]:
    """Every task that runs an executor, wherever it is: the root's, or the sub-DAG's and the
    exit task when the spec has an exit handler."""
    tasks: Dict[str, Any] = {}
    for name, task in spec["root"]["dag"]["tasks"].items():
        component = spec["components"][task["componentRef"]["name"]]
        if "dag" in component:
            tasks.update(component["dag"]["tasks"])
        else:
            tasks[name] = task
    return tasks


def exit_task_container(image: str, pipeline_name: str, kfp_launcher: bool) -> Dict[str, Any]:
    """The exit task's container: the project's image and exit_task module, the ExecutorInput
    as {{$}}."""
    return {"image": image, "command": ["python", "-m", EXIT_TASK_MODULE],
            "args": ["--executor_input", "{{$}}", "--pipeline_name", pipeline_name]
            + (["--kfp_launcher"] if kfp_launcher else [])}


def add_exit_task(spec: Dict[str, Any], container: Dict[str, Any],
                  exit_parameters: Mapping[str, Dict[str, Any]],
                  forwarded: List[str]) -> None:
    """Moves every root task into the sub-DAG and adds the exit task, in place.

    exit_parameters: root parameters only the exit task reads (declared at the root with their
    definitions); forwarded: root parameters the exit task gets as well (e.g. data_root)."""
    root = spec["root"]
    declared = root.setdefault("inputDefinitions", {}).setdefault("parameters", {})
    spec["components"][DAG_COMPONENT] = {
        "dag": {"tasks": root["dag"]["tasks"]},
        "inputDefinitions": {"parameters": {
            name: {"parameterType": definition["parameterType"]}
            for name, definition in declared.items()}}}
    dag_task = {"componentRef": {"name": DAG_COMPONENT},
                "taskInfo": {"name": node_ids.PIPELINE_DAG},
                "inputs": {"parameters": {name: {"componentInputParameter": name}
                                          for name in declared}}}
    declared.update(exit_parameters)
    exit_inputs = {STATUS_INPUT: {"taskFinalStatus": {"producerTask": node_ids.PIPELINE_DAG}}}
    exit_inputs.update({name: {"componentInputParameter": name}
                        for name in list(exit_parameters) + list(forwarded)})
    exit_task = {"componentRef": {"name": EXIT_COMPONENT},
                 "taskInfo": {"name": node_ids.FINAL_REPORT},
                 "dependentTasks": [node_ids.PIPELINE_DAG],
                 "triggerPolicy": {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"},
                 "cachingOptions": {"enableCache": False},
                 "inputs": {"parameters": exit_inputs}}
    root["dag"] = {"tasks": {node_ids.PIPELINE_DAG: dag_task, node_ids.FINAL_REPORT: exit_task}}
    spec["components"][EXIT_COMPONENT] = {
        "executorLabel": EXIT_EXECUTOR,
        "inputDefinitions": {"parameters": dict(
            {STATUS_INPUT: {"parameterType": "TASK_FINAL_STATUS"}},
            **{name: {"parameterType": declared[name]["parameterType"]}
               for name in list(exit_parameters) + list(forwarded)})},
        "outputDefinitions": {"artifacts": {REPORT_OUTPUT: {"artifactType": dict(REPORT_TYPE)}}}}
    spec["deploymentSpec"]["executors"][EXIT_EXECUTOR] = {"container": container}
