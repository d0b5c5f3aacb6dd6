"""The container entrypoint of every compiled task: repairs the ExecutorInput that a Kubeflow
Pipelines backend hands over, then runs TFX's own entrypoint
(tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor) with it.

What it repairs, and why (sources: kubeflow/pipelines backend/src/v2/driver and
backend/src/v2/metadata/client.go; TFX 1.16 kubeflow_v2_entrypoint_utils):

- Outputs the component does not declare whose type title is `system.*`. KFP backends 2.5.0 and
  newer add an `executor-logs` output (schema title `system.Artifact`) to every task when log
  publishing is on (the default; driver.go provisionOutputs). TFX imports every output's title as
  a Python class and fails (`Could not import system.Artifact`). The output is the launcher's own:
  the launcher tees the container's stdout and stderr into it and uploads and records it itself
  from its own copy of the ExecutorInput, and does not need it in the ExecutorOutput. So it is
  removed from what TFX sees. Any other undeclared output is an error.
- Input artifacts without a type. The open-source driver reads an upstream output back from ML
  Metadata with an empty instance schema (GetOutputArtifactsByExecutionId: `Schema: ""`), so
  TFX's class lookup gets no title (`'NoneType' object has no attribute 'get'`). The type is
  taken from the component's input definitions, which the compile passes in
  --json_serialized_inputs_spec_args (kubeflow/compile.py).
- Input artifacts whose schemaTitle is a whole instance schema. Without ML Metadata
  (kubeflow/pipelines#13986) the driver sends the producer's stored schema type as
  `schemaTitle` (driver convertArtifactToRuntimeArtifact, RuntimeArtifactSchemaTitleAndMetadata),
  which for a TFX type is its instance-schema YAML; TFX would import that text as a class path
  (`Could not import title: tfx.Examples...`). It is handed to TFX as the instanceSchema it is.

- Artifact URIs in a bucket TFX cannot open itself. With KFP's own object store (minio://, the
  default of an on-premises install) or s3://, the launcher downloads every input artifact to a
  local path before the command runs and uploads every output from one after it
  (component/launcher_v2.go localPathForURI: minio://b/k -> /minio/b/k, s3://b/k -> /s3/b/k);
  TFX reads and writes URIs directly and has no minio:// filesystem. So TFX is given those
  local paths, and the ExecutorOutput it writes gets the original URIs back (the launcher
  records what it returns). The open-source launcher does the same for gs:// (/gcs/b/k), and
  without ML Metadata it fails a task whose declared output has no local copy
  (uploadOutputArtifacts: "declared output artifact ... is missing at /gcs/..."): with
  --kfp_launcher (the kfp target's compile) gs:// artifacts go through the local copies too.
  On Vertex (no such launcher) TFX reads and writes gs:// itself.

With --task_records (a package with the exit task) it also leaves the task's record (state,
error line, outputs) for the exit task (kubeflow/task_records.py), whatever the outcome; a record
that cannot be written is logged, never fails the task.

The declared outputs come in --json_serialized_outputs_spec_args (a ComponentOutputsSpec); it,
--kfp_launcher and --task_records are flags of this module only, removed before TFX parses the
rest (TFX passes unknown flags to Beam). Nothing here reads a metadata store.
"""
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from inception_retrain.components import artifact_files
from inception_retrain.kubeflow import task_records

OUTPUTS_SPEC_FLAG = "--json_serialized_outputs_spec_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
INVOCATION_FLAG = "--json_serialized_invocation_args"
KFP_LAUNCHER_FLAG = "--kfp_launcher"  # the open-source KFP launcher copies gs:// artifacts too
TASK_RECORDS_FLAG = "--task_records"  # leave a task record for the exit task
SYSTEM_PREFIX = "system."
# The launcher's local copies of bucket URIs TFX cannot open (launcher_v2.go localPathForURI).
LAUNCHER_LOCAL_PATHS = {"minio://": "/minio/", "s3://": "/s3/"}
GCS_LOCAL_PATH = {"gs://": "/gcs/"}  # the KFP launcher's local copies of gs:// artifacts


class ExecutorInputError(ValueError):
    """The ExecutorInput holds something neither the component nor this module can place."""


def _schema_in_title(artifact_type: Dict) -> str:
    """A schemaTitle that holds a whole instance schema (YAML with a title); "" otherwise."""
    title = artifact_type.get("schemaTitle", "")
    if "\n" not in title and not title.startswith("title:"):
        return ""
    loaded = yaml.safe_load(title)
    return title if isinstance(loaded, dict) and loaded.get("title") else ""


def type_title(artifact_type: Dict) -> str:
    """The schema title of an ArtifactTypeSchema in proto-JSON; "" when it has none."""
    schema = _schema_in_title(artifact_type) or artifact_type.get("instanceSchema")
    if artifact_type.get("schemaTitle") and not schema:
        return artifact_type["schemaTitle"]
    if schema:
        loaded = yaml.safe_load(schema)
        if isinstance(loaded, dict):
            return str(loaded.get("title") or "")
    return ""


def _pop_flag(argv: List[str], flag: str) -> Tuple[List[str], str]:
    """argv without `flag VALUE` / `flag=VALUE`, and the value ("" when absent)."""
    rest, value, i = [], "", 0
    while i < len(argv):
        arg = argv[i]
        if arg == flag and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
            continue
        if arg.startswith(flag + "="):
            value = arg[len(flag) + 1:]
        else:
            rest.append(arg)
        i += 1
    return rest, value


def _flag_value(argv: Sequence[str], flag: str) -> str:
    return _pop_flag(list(argv), flag)[1]


def repair(executor_input: Dict, inputs_spec: Dict, outputs_spec: Optional[Dict]) -> List[str]:
    """Repairs a proto-JSON ExecutorInput in place; returns what it changed, for the log.

    outputs_spec: the component's ComponentOutputsSpec; None when not known (then only
    `system.*` outputs are removed: TFX declares no such type)."""
    changes = []
    declared_outputs = (outputs_spec or {}).get("artifacts", {})
    outputs = executor_input.get("outputs", {}).get("artifacts", {})
    for name in sorted(set(outputs) - set(declared_outputs)):
        titles = {type_title(a.get("type", {})) for a in outputs[name].get("artifacts", [])}
        if titles and all(t.startswith(SYSTEM_PREFIX) for t in titles):
            del outputs[name]
            changes.append(f"output {name!r} ({', '.join(sorted(titles))}) is the backend's own, "
                           "not the component's: left to the launcher")
        elif outputs_spec is not None:
            raise ExecutorInputError(
                f"output {name!r} of type {sorted(titles)} is not declared by the component "
                f"(declared: {sorted(declared_outputs)})")
    declared_inputs = inputs_spec.get("artifacts", {})
    for name, artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).items():
        for artifact in artifact_list.get("artifacts", []):
            schema = _schema_in_title(artifact.get("type", {}))
            if schema:
                artifact["type"] = {"instanceSchema": schema}
                changes.append(f"input {name!r}: the schemaTitle holds the instance schema of "
                               f"{type_title(artifact['type'])!r}: passed as instanceSchema")
                continue
            if type_title(artifact.get("type", {})):
                continue
            if name not in declared_inputs:
                raise ExecutorInputError(
                    f"input artifact {name!r} has no type and the component declares no input "
                    f"{name!r} (declared: {sorted(declared_inputs)})")
            artifact["type"] = dict(declared_inputs[name]["artifactType"])
            changes.append(f"input {name!r}: type {type_title(artifact['type'])!r} from the "
                           "component's input definitions (the backend sent none)")
    return changes


def use_launcher_local_paths(executor_input: Dict, kfp_launcher: bool = False
                             ) -> Dict[str, str]:
    """Replaces, in place, every artifact URI the launcher copies to a local path by that path
    (gs:// too under the open-source KFP launcher); returns {local path: URI} to put them back."""
    local_paths = dict(LAUNCHER_LOCAL_PATHS, **(GCS_LOCAL_PATH if kfp_launcher else {}))
    originals = {}
    for side in ("inputs", "outputs"):
        for artifact_list in executor_input.get(side, {}).get("artifacts", {}).values():
            for artifact in artifact_list.get("artifacts", []):
                uri = artifact.get("uri", "")
                for scheme, local_root in local_paths.items():
                    if uri.startswith(scheme):
                        artifact["uri"] = local_root + uri[len(scheme):]
                        originals[artifact["uri"]] = uri
    return originals


# TFX's value artifacts are files at their URI (tfx.types.value_artifact, standard_artifacts)
VALUE_TITLES = {"tfx.String", "tfx.Integer", "tfx.Float", "tfx.Boolean", "tfx.Bytes",
                "tfx.JsonValue"}


def make_local_output_dirs(executor_input: Dict, originals: Dict[str, str]) -> None:
    """Each output's folder at its local copy (a value artifact's parent), as TFX's own launcher
    makes them (outputs_utils.make_output_dirs); KFP's makes only the parents."""
    for artifact_list in executor_input.get("outputs", {}).get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            if artifact["uri"] in originals:
                is_file = type_title(artifact.get("type", {})) in VALUE_TITLES
                os.makedirs(os.path.dirname(artifact["uri"]) if is_file else artifact["uri"],
                            exist_ok=True)


def restore_uris(executor_output: Dict, originals: Dict[str, str]) -> None:
    """Puts the original URIs back into a proto-JSON ExecutorOutput, in place."""
    for artifact_list in executor_output.get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            if artifact.get("uri") in originals:
                artifact["uri"] = originals[artifact["uri"]]


def repaired_argv(argv: Sequence[str]) -> Tuple[List[str], List[str], Dict[str, str]]:
    """TFX's arguments with the ExecutorInput repaired and this module's own flag removed, what
    was changed, and the {local path: URI} of the launcher's local copies."""
    rest, outputs_spec_json = _pop_flag(list(argv), OUTPUTS_SPEC_FLAG)
    kfp_launcher = KFP_LAUNCHER_FLAG in rest
    rest = [arg for arg in rest if arg != KFP_LAUNCHER_FLAG]
    rest, invocation_json = _pop_flag(rest, INVOCATION_FLAG)
    if not invocation_json:
        raise ExecutorInputError(f"{INVOCATION_FLAG} is required")
    executor_input = json.loads(invocation_json)
    inputs_spec = json.loads(_flag_value(rest, INPUTS_SPEC_FLAG) or "{}")
    outputs_spec = json.loads(outputs_spec_json) if outputs_spec_json else None
    changes = repair(executor_input, inputs_spec, outputs_spec)
    originals = use_launcher_local_paths(executor_input, kfp_launcher)
    if originals:
        roots = sorted({local.split("/")[1] for local in originals})
        changes.append(f"{len(originals)} artifact URI(s) read and written at the launcher's "
                       f"local copies ({', '.join(f'/{root}/' for root in roots)}...)")
    return [INVOCATION_FLAG, json.dumps(executor_input)] + rest, changes, originals


def _record_folder(executor_input: Dict, originals: Dict[str, str]) -> Tuple[str, str]:
    """(run folder, task) from the first output's original URI; ("", "") without outputs."""
    for artifact_list in executor_input.get("outputs", {}).get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            uri = originals.get(artifact["uri"], artifact["uri"])
            return task_records.run_folder(uri), task_records.task_of(uri)
    return "", ""


def _leave_record(folder: str, record: Dict) -> None:
    """Writes the task's record; a failure to write is logged (the task's outcome stands)."""
    if not folder or not task_records.writable(folder):
        print(f"inception_retrain.kubeflow.entrypoint: no task record for {record['task']!r} "
              f"(run folder {folder or 'unknown'!r} is not writable from the pod)",
              file=sys.stderr, flush=True)
        return
    try:
        task_records.write(folder, record)
    except Exception as err:  # any filesystem's error: the record is best effort
        print(f"inception_retrain.kubeflow.entrypoint: task record not written: {err}",
              file=sys.stderr, flush=True)


def main(argv: Sequence[str] = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    records = TASK_RECORDS_FLAG in argv
    argv = [arg for arg in argv if arg != TASK_RECORDS_FLAG]
    tfx_args, changes, originals = repaired_argv(argv[1:])
    for change in changes:
        print(f"inception_retrain.kubeflow.entrypoint: {change}", file=sys.stderr, flush=True)
    executor_input = json.loads(tfx_args[1])
    make_local_output_dirs(executor_input, originals)
    folder, task = _record_folder(executor_input, originals) if records else ("", "")
    started = time.time()
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    def record(state: str, **fields) -> None:
        if records:
            _leave_record(folder, dict(task=task, state=state, started=started,
                                       finished=time.time(),
                                       seconds=round(time.time() - started, 1), **fields))

    def run(parsed_argv):
        try:
            kubeflow_v2_run_executor.main(parsed_argv)
        except Exception as err:  # recorded for the exit task, then raised as it was
            record("FAILED", error=task_records.error_line(err))
            raise
        if not (originals or records):
            return
        output_file = json.loads(parsed_argv[0].json_serialized_invocation_args)[
            "outputs"]["outputFile"]
        executor_output = artifact_files.read_json(output_file) or {}
        if originals:
            restore_uris(executor_output, originals)
            with artifact_files.open_text(output_file, "w") as f:
                json.dump(executor_output, f)
        record("COMPLETE", outputs={
            name: {"uri": artifacts["artifacts"][0].get("uri", ""),
                   "metadata": artifacts["artifacts"][0].get("metadata", {})}
            for name, artifacts in executor_output.get("artifacts", {}).items()
            if artifacts.get("artifacts")})

    app.run(run, argv=[argv[0]] + tfx_args,
            flags_parser=kubeflow_v2_run_executor._parse_flags)  # pylint: disable=protected-access


if __name__ == "__main__":
    artifact_files.exit_after(main)
