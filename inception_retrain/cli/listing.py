"""The inspection commands that list or compare runs: `history`, `report --list`, `rollback`
(without --to) and `compare`. They read the run index (run_reading.history.sync: ML Metadata
for the staleness check, the slow path only for runs not indexed yet) and the push
destination, and print a table or JSON (cli.output); no TensorFlow, TFX, TFMA or Beam."""
import os
import sys
from typing import Any, Dict, List, Optional

from inception_retrain.cli import output
from inception_retrain.cli.help_text import EXIT_FAILED
from inception_retrain.run_reading import history as history_lib
from inception_retrain.run_reading.index_contract import RunEntry
from inception_retrain.run_rendering.history_view import interval_text


def _interval(entry) -> Optional[str]:
    return interval_text(entry.interval) or None


RUN_COLUMNS = (("STARTED", lambda r: r.started), ("RUN", lambda r: r.run_id),
               ("VERDICT", lambda r: r.verdict), ("ACCURACY", lambda r: r.accuracy),
               ("95% INTERVAL", _interval), ("N", lambda r: r.eval_examples),
               ("SERVED ACC", lambda r: r.baseline_accuracy),
               ("VERSION", lambda r: r.pushed_version), ("DATA", lambda r: r.data_root))
VERSION_COLUMNS = (("VERSION", lambda v: v.version),
                   ("SERVED", lambda v: "*" if v.served else ""),
                   ("PUBLISHED", lambda v: v.published_at), ("ACCURACY", lambda v: v.accuracy),
                   ("95% INTERVAL", _interval), ("FROM", lambda v: v.origin))


def _table(items, columns) -> str:
    """items (entries, not dicts) as a table of columns."""
    rows = [{"item": item} for item in items]
    return output.format_table(rows, [(head, lambda row, get=get: get(row["item"]))
                                      for head, get in columns])


def _no_store(command: str, config) -> Optional[int]:
    if os.path.exists(config.metadata_path):
        return None
    print(f"{command} error: no metadata store at {config.metadata_path}; run the pipeline "
          "first or pass the --work-dir of a run", file=sys.stderr)
    return EXIT_FAILED


def _runs(args, config) -> List[RunEntry]:
    runs = history_lib.sync(config.metadata_path, config.pipeline_name, config.work_dir)
    return output.newest_first(runs, lambda r: r.started, getattr(args, "limit", None))


def history(args, config) -> int:
    """`history`: the runs, newest first, then the versions under the push destination."""
    refused = _no_store("history", config)
    if refused is not None:
        return refused
    found = history_lib.read(config.metadata_path, config.pipeline_name, config.push_base,
                             config.work_dir)
    all_runs = found.runs
    runs = output.newest_first(all_runs, lambda r: r.started, args.limit)
    versions = output.newest_first(found.versions, lambda v: v.version, args.limit)
    document = {"runs": [r.to_dict() for r in runs], "versions": [v.to_dict() for v in versions],
                "served_version": found.served_version, "push_base": found.push_base}
    output.emit(args.output_format, document, lambda: "\n".join([
        f"Runs ({len(runs)} of {len(all_runs)}), newest first:",
        _table(runs, RUN_COLUMNS) if runs else "  none", "",
        _versions_heading(found), _table(versions, VERSION_COLUMNS) if versions else "  none"]))
    return 0


def _versions_heading(found) -> str:
    served = found.served_version
    return (f"Versions under {found.push_base}, newest first (TF Serving serves the highest: "
            f"{served if served is not None else 'none present'}):")


def report_list(args, config) -> int:
    """`report --list`: each run with its verdict and the components that did not complete."""
    from inception_retrain.run_rendering import report

    runs = _runs(args, config)  # the store's presence is checked by the report command
    rows = []
    for run in runs:
        bad = {node: state for node, state in run.states.items()
               if state not in ("COMPLETE", "CACHED")}
        html = os.path.join(report.report_dir(config.work_dir, run.run_id), "report.html")
        rows.append({"run_id": run.run_id, "started": run.started, "verdict": run.verdict,
                     "outcome": run.outcome, "accuracy": run.accuracy,
                     "pushed_version": run.pushed_version, "states": run.states,
                     "components": (", ".join(f"{n} {s}" for n, s in bad.items()) if bad else
                                    f"{len(run.states)} COMPLETE or CACHED"),
                     "report": html if os.path.exists(html) else None})
    output.emit(args.output_format, rows, lambda: output.format_table(rows, (
        ("RUN", "run_id"), ("STARTED", "started"), ("VERDICT", "verdict"),
        ("ACCURACY", "accuracy"), ("VERSION", "pushed_version"),
        ("COMPONENTS", "components"))) if rows else
        f"no run of {config.pipeline_name} in {config.metadata_path}")
    return 0


def rollback_listing(args, config, base: str) -> int:
    """`rollback` without --to: the versions under base, newest first, with their runs'
    metrics (from the work dir's index; without a store, the versions alone)."""
    runs = ()
    if os.path.exists(config.metadata_path):
        runs = history_lib.sync(config.metadata_path, config.pipeline_name, config.work_dir)
    found = history_lib.of_runs(runs, base)
    versions = output.newest_first(found.versions, lambda v: v.version, args.limit)
    output.emit(args.output_format, {"push_base": base, "served_version": found.served_version,
                                     "versions": [v.to_dict() for v in versions]},
                lambda: _versions_heading(found) + "\n" + (
                    _table(versions, VERSION_COLUMNS) if versions else "  none"))
    return 0


def compare(args, config) -> int:
    """`compare RUN_A RUN_B`: metrics, per-class metrics and class counts of two runs, with
    B - A."""
    from inception_retrain.run_rendering import runs_compare

    refused = _no_store("compare", config)
    if refused is not None:
        return refused
    runs = {r.run_id: r for r in history_lib.sync(config.metadata_path, config.pipeline_name,
                                                   config.work_dir)}
    missing = [run_id for run_id in (args.run_a, args.run_b) if run_id not in runs]
    if missing:
        print(f"compare error: no run {', '.join(map(repr, missing))} of "
              f"{config.pipeline_name} in {config.metadata_path} (see `inception-retrain "
              "report --list`)", file=sys.stderr)
        return EXIT_FAILED
    found = runs_compare.compare(runs[args.run_a], runs[args.run_b])
    output.emit(args.output_format, found, lambda: _compare_text(found))
    return 0


def _compare_text(found: Dict[str, Any]) -> str:
    a, b = found["a"], found["b"]
    lines = [f"A {a['run_id']}  {a['verdict']}  started {a['started']}",
             f"B {b['run_id']}  {b['verdict']}  started {b['started']}",
             "data: " + ("same input files (fingerprint)" if found["same_data"] else
                         "different or unknown input files"), "", "Metrics (eval split):"]
    columns = (("METRIC", "name"), ("A", "a"), ("B", "b"), ("B - A", "change"))
    lines.append(output.format_table(found["metrics"], columns) if found["metrics"]
                 else "  none (neither run was evaluated)")
    for title, key in (("Per class", "per_class"), ("Examples per class", "class_counts")):
        rows = found[key]
        lines += ["", f"{title}:", output.format_table(rows, (("CLASS", "class"),) + columns)
                  if rows else "  none"]
    return "\n".join(lines)


def current_report(config, run_id: Optional[str]) -> Optional[str]:
    """The report.html already written for run_id (default: the newest run) when nothing it
    shows can have changed since: no execution of any run of the store updated after it (the
    index is in step with ML Metadata) and the push destination unchanged; else None (write
    it again)."""
    from inception_retrain.run_rendering import report

    if not os.path.exists(config.metadata_path):
        return None
    runs = history_lib.sync(config.metadata_path, config.pipeline_name, config.work_dir)
    chosen = ([r for r in runs if r.run_id == run_id] if run_id
              else output.newest_first(runs, lambda r: r.started, 1))
    if not chosen:
        return None
    folder = report.report_dir(config.work_dir, chosen[0].run_id)
    html, json_path = os.path.join(folder, "report.html"), os.path.join(folder, "report.json")
    if not (os.path.exists(html) and os.path.exists(json_path)):
        return None
    written_ms = os.stat(json_path).st_mtime * 1000
    newest = max((r.store_mark or 0 for r in runs), default=0)
    serving = os.stat(config.push_base).st_mtime * 1000 if os.path.isdir(
        config.push_base) else 0
    return html if newest <= written_ms and serving <= written_ms else None
