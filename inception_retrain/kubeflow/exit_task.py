"""The exit task of a compiled Kubeflow pipeline (kubeflow/exit_handler.py): runs after the
pipeline's sub-DAG whatever its outcome, with its final status, and

- writes the run's verdict to its `report` output (verdict.json) in the pipeline root, and for
  a failed run the report a local failed run gets (report.html, report.json: the tasks that
  ran, the one that failed and its error), rendered by run_rendering from a RunRecord built from
  the tasks' own records (kubeflow/task_records.py; the final status names only the DAG);
- when the webhook_url parameter is set, POSTs run, verdict and report link (kubeflow/webhook.py),
  never failing the run for it.

A successful run's verdict and report are the RunReporter's (its task record). The task needs
no TFX: it reads and writes through artifact_files, at the launcher's local copy of its output
when KFP's launcher makes one (--kfp_launcher, as kubeflow/entrypoint.py).
"""
import argparse
import json
import os
import sys
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from inception_retrain.components import artifact_files, node_ids
from inception_retrain.kubeflow import entrypoint, exit_handler, task_records, webhook

SUCCEEDED = ("COMPLETE", "SUCCEEDED")  # MLMD's state name (KFP), PipelineState's (Vertex)
VERDICT_FILE = "verdict.json"


def _record(pipeline: str, run_id: str, data_root: str, records: Sequence[Mapping[str, Any]]):
    from inception_retrain.run_reading.record import ComponentRun, RunInfo, RunRecord

    return RunRecord(pipeline=pipeline, run=RunInfo(run_id=run_id, data_root=data_root),
                     components=tuple(ComponentRun(r["task"], r["state"], r.get("seconds", 0.0),
                                                   error=r.get("error")) for r in records))


def outcome(status: Mapping[str, Any], records: Sequence[Mapping[str, Any]]
            ) -> Tuple[str, str, bool]:
    """(verdict, report link, render a report here) from the final status and task records."""
    state = str(status.get("state", "")).upper()
    reporter = next((r for r in records if r["task"] == node_ids.RUN_REPORTER
                     and r["state"] == "COMPLETE"), None)
    if state in SUCCEEDED and reporter:
        report = reporter.get("outputs", {}).get("report", {})
        return (report.get("metadata", {}).get("verdict", "Succeeded"),
                f"{report.get('uri', '').rstrip('/')}/report.html", False)
    if state in SUCCEEDED:
        return ("Succeeded (the RunReporter left no record: cached, or a pipeline root the "
                "pods cannot write records to)", "", False)
    return "", "", True


def failure_text(status: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    """Why the run failed when no task recorded it (a pod killed, a minio:// root)."""
    if any(r["state"] == "FAILED" for r in records):
        return ""
    message = (status.get("error") or {}).get("message", "")
    return (f"the run ended {status.get('state') or 'without a state'}"
            + (f": {message}" if message else "; no task recorded why (see its task logs in "
               "the KFP UI)"))


def render_failed(pipeline: str, run_id: str, data_root: str, records, failure: str,
                  folder: str, output_dir: str) -> str:
    """Writes report.html and report.json of a failed run into output_dir; its verdict."""
    from inception_retrain.pipeline.config import ModelCardConfig
    from inception_retrain.run_reading import report_inputs
    from inception_retrain.run_rendering import report

    record = _record(pipeline, run_id, data_root, records)
    report.write(report_inputs.assemble(record, failure=failure,
                                        pipeline_root=os.path.dirname(folder)),
                 output_dir, ModelCardConfig())
    return report.verdict(record, failure)[1]


def run(executor_input: Dict[str, Any], pipeline: str, kfp_launcher: bool) -> Dict[str, Any]:
    """Does the exit task's work; returns what it wrote to verdict.json."""
    originals = entrypoint.use_launcher_local_paths(executor_input, kfp_launcher)
    artifact = executor_input["outputs"]["artifacts"][exit_handler.REPORT_OUTPUT][
        "artifacts"][0]
    output_dir, uri = artifact["uri"], originals.get(artifact["uri"], artifact["uri"])
    values = executor_input["inputs"].get("parameterValues", {})
    status = values.get(exit_handler.STATUS_INPUT) or {}
    folder = task_records.run_folder(uri)
    run_id = os.path.basename(folder)
    records: List[Dict[str, Any]] = task_records.read_all(folder)
    verdict, link, render = outcome(status, records)
    if render:
        verdict = render_failed(pipeline, run_id, values.get("data_root", ""), records,
                                failure_text(status, records), folder, output_dir)
        link = f"{uri.rstrip('/')}/report.html"
    summary = {"pipeline": pipeline, "run": run_id, "state": status.get("state", ""),
               "verdict": verdict, "report": link,
               "tasks": {r["task"]: r["state"] for r in records}}
    with artifact_files.open_text(f"{output_dir.rstrip('/')}/{VERDICT_FILE}", "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    output = {"artifacts": {exit_handler.REPORT_OUTPUT: {"artifacts": [
        {"uri": uri, "metadata": {"verdict": verdict, "report": link}}]}}}
    with artifact_files.open_text(executor_input["outputs"]["outputFile"], "w") as f:
        json.dump(output, f)
    print(f"inception_retrain.kubeflow.exit_task: {verdict}", file=sys.stderr, flush=True)
    url = values.get("webhook_url", "")
    if url:
        webhook.post(url, webhook.message(pipeline, run_id, verdict, link))
    return summary


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor_input", required=True)
    parser.add_argument("--pipeline_name", required=True)
    parser.add_argument("--kfp_launcher", action="store_true")
    args = parser.parse_args(argv)
    run(json.loads(args.executor_input), args.pipeline_name, args.kfp_launcher)


if __name__ == "__main__":
    artifact_files.exit_after(main)
