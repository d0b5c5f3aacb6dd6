"""ML Metadata helpers of the run read-back: the store, a pipeline's runs, a run's executions
by node, an execution's input and output artifacts, custom property values."""
import os
from typing import Any, Dict, List, Optional, Tuple

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

STATES = {metadata_store_pb2.Execution.State.Value(name): name for name in
          ("UNKNOWN", "NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED")}


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    if not os.path.exists(metadata_path):
        raise FileNotFoundError(f"no metadata store at {metadata_path}; has the pipeline run?")
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


def pipeline_runs(store, pipeline_name: str) -> List[Any]:
    """The pipeline_run contexts of pipeline_name, oldest first."""
    pipeline_executions = set()
    for context in store.get_contexts_by_type("pipeline"):
        if context.name == pipeline_name:
            pipeline_executions = {e.id for e in store.get_executions_by_context(context.id)}
    runs = [r for r in store.get_contexts_by_type("pipeline_run")
            if any(e.id in pipeline_executions for e in store.get_executions_by_context(r.id))]
    return sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id))


def find_run(store, pipeline_name: str, run_id: Optional[str] = None):
    """The pipeline_run context named run_id, or the newest run; None when there is none."""
    runs = pipeline_runs(store, pipeline_name)
    if run_id is not None:
        runs = [r for r in runs if r.name == run_id]
    return runs[-1] if runs else None


def run_executions(store, run_context) -> Dict[str, Any]:
    """{node id: execution} of one pipeline run, in run order."""
    by_node = {}
    for execution in sorted(store.get_executions_by_context(run_context.id), key=lambda e: e.id):
        for context in store.get_contexts_by_execution(execution.id):
            if context.type == "node":
                by_node[context.name.split(".", 1)[-1]] = execution
    return by_node


def latest_run_executions(store, pipeline_name: str) -> Dict[str, Any]:
    """{node id: execution} for the newest pipeline run of pipeline_name, in run order."""
    run = find_run(store, pipeline_name)
    return run_executions(store, run) if run is not None else {}


def _artifacts_by_key(store, execution, event_types) -> Dict[str, List]:
    """{input or output key: [artifacts]} of one execution, for the given MLMD event types."""
    events = [e for e in store.get_events_by_execution_ids([execution.id])
              if e.type in event_types]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    result: Dict[str, List] = {}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else ""
        result.setdefault(key, []).append(artifacts[event.artifact_id])
    return result


def output_artifacts(store, execution) -> Dict[str, List]:
    """{output key: [artifacts]} of one execution."""
    return _artifacts_by_key(store, execution, (metadata_store_pb2.Event.OUTPUT,
                                                metadata_store_pb2.Event.DECLARED_OUTPUT))


def input_artifacts(store, execution) -> Dict[str, List]:
    """{input key: [artifacts]} of one execution."""
    return _artifacts_by_key(store, execution, (metadata_store_pb2.Event.INPUT,))


def first_output(store, execution, key: str):
    """The first artifact of one output key, or None (the execution failed or never wrote it)."""
    artifacts = output_artifacts(store, execution).get(key)
    return artifacts[0] if artifacts else None


def property_value(properties, name: str):
    """A (custom) property of an MLMD execution or artifact as a Python value, or None; a
    struct as a dict. A plain value TFX wrapped in a struct ({"__value__": v}, as its Kubeflow
    entrypoint stores every artifact metadata field: tfx.types.artifact) is v."""
    value = properties.get(name)
    if value is None:
        return None
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "struct_value":
        from google.protobuf import json_format

        found = json_format.MessageToDict(value.struct_value)
        return found[TFX_SINGLE_VALUE] if set(found) == {TFX_SINGLE_VALUE} else found
    return getattr(value, which)


TFX_SINGLE_VALUE = "__value__"  # tfx.types.artifact._JSON_SINGLE_VALUE_KEY


# The error of a failed execution. TFX records one (its ExecutionResult, JSON) only when an
# executor returns an error code; an executor that raises leaves nothing, so the local runner
# adds the exception it saw under ERROR_PROPERTY (record_error).
ERROR_PROPERTY = "error"
TFX_EXECUTION_RESULT = "__execution_result__"
ACTIVE_STATES = ("NEW", "RUNNING")


def execution_error(execution) -> Optional[str]:
    """The error message a FAILED execution carries, or None."""
    message = property_value(execution.custom_properties, ERROR_PROPERTY)
    if message:
        return str(message)
    result = property_value(execution.custom_properties, TFX_EXECUTION_RESULT)
    if result:
        import json

        try:
            message = json.loads(result).get("resultMessage")
        except (ValueError, AttributeError):
            message = None
        return str(message or result)
    return None


def record_error(metadata_path: str, run_id: str, error: str) -> List[str]:
    """Adds error under ERROR_PROPERTY to the FAILED executions of run run_id that carry no
    error yet; returns their node ids. Only a custom property is added: state, events and
    artifacts stay what TFX published."""
    if not os.path.exists(metadata_path):
        return []
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(connection)
    run = next((c for c in store.get_contexts_by_type("pipeline_run") if c.name == run_id), None)
    if run is None:
        return []
    marked, executions = [], []
    for node, execution in run_executions(store, run).items():
        if (execution.last_known_state == metadata_store_pb2.Execution.FAILED
                and execution_error(execution) is None):
            execution.custom_properties[ERROR_PROPERTY].string_value = error
            executions.append(execution)
            marked.append(node)
    if executions:
        store.put_executions(executions)
    return marked


def active_executions(store, pipeline_name: str) -> List[Tuple[str, str, str]]:
    """(run id, node id, state) of every execution of pipeline_name still NEW or RUNNING in
    the store, oldest run first: in flight, or left so by a process that died."""
    found = []
    for run in pipeline_runs(store, pipeline_name):
        for node, execution in run_executions(store, run).items():
            state = STATES.get(execution.last_known_state)
            if state in ACTIVE_STATES:
                found.append((run.name, node, state))
    return found
