"""The run report page: one self-contained HTML file (inline CSS and SVG, thumbnails as data:
URIs, no script and no external reference) rendered from a RunReport, section by section."""
import os
from typing import Dict, Optional

from inception_retrain.run_reading.record import (
    DataSection,
    EvaluationSection,
    RunRecord,
    RunReport,
    TrainingSection,
)
from inception_retrain.run_rendering import (
    answer,
    charts,
    compare,
    evidence_view,
    history_view,
    split_sites,
)
from inception_retrain.run_rendering.answer import baseline_text
from inception_retrain.run_rendering.page_blocks import (
    class_order,
    counts_html,
    escape,
    markdown_html,
    metrics_html,
    misclassified_html,
    number_cell,
    quarantine_html,
    reorder_matrix,
    samples_html,
    table,
)

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
margin:0;background:#f6f8fa}
main{max-width:1080px;margin:0 auto;padding:16px 24px 48px;background:#fff}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#d0d7de;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
.meta{color:#59636e;font-size:13px}.verdict{padding:10px 14px;border-radius:6px;font-weight:600;
margin:12px 0}.good{background:#dafbe1;border:1px solid #1a7f37}.warn{background:#fff8c5;
border:1px solid #9a6700}.bad{background:#ffebe9;border:1px solid #d1242f}
table{border-collapse:collapse;margin:6px 0 10px}th,td{border:1px solid #d0d7de;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;
font-variant-numeric:tabular-nums}.pass{color:#1a7f37;font-weight:600}.fail{color:#d1242f;
font-weight:600}.na{color:#59636e}.banner{background:#ffebe9;border:2px solid #d1242f;padding:8px
12px;border-radius:6px;font-weight:600;margin:8px 0}
.bar{display:inline-block;height:9px;background:#54aeff;vertical-align:middle;margin-right:6px}
.charts{display:flex;flex-wrap:wrap;gap:12px}svg text{font:11px system-ui,sans-serif;
fill:#1f2328}svg .title{font-size:13px;font-weight:600}svg .grid{stroke:#eaeef2}
svg .boundary{stroke:#59636e;stroke-dasharray:4 3}svg .cell{font-size:12px;font-weight:600}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;width:140px;font-size:12px}
figure img{display:block;max-width:128px;max-height:128px;border:1px solid #d0d7de}
figcaption code{word-break:break-all}.nowrap,td.num{white-space:nowrap}
figcaption{overflow-wrap:anywhere}.pair{margin:10px 0 4px;font-size:13px}
td.up,p.paired.up{color:#1a7f37}td.down,p.paired.down{color:#d1242f}.md table{font-size:13px}.md h1{font-size:16px}
.verdict p{margin:2px 0}.verdict .numbers{font-weight:400}
.md h2{font-size:15px;border:0}.md h3{font-size:14px}figure.matrix{width:auto}
.samples figure{width:110px}.samples img{max-width:100px;max-height:100px}code,pre{font:12px ui-monospace,Menlo,Consolas,monospace}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:420px}ul{margin:4px 0}
"""


def _components_html(record: RunRecord) -> str:
    rows = []
    for c in record.components:
        bad = c.state == "FAILED" or c.interrupted
        note = (c.error or "no error recorded (see the run log)") if c.state == "FAILED" else (
            "no process holds the run lock: interrupted" if c.interrupted else "")
        rows.append([f"<td>{escape(c.component)}</td>",
                     f'<td class="{"fail" if bad else ""}">'
                     f'{escape("INTERRUPTED" if c.interrupted else c.state)}</td>',
                     number_cell(c.seconds, 1), f"<td>{escape(note)}</td>"])
    notes = [a for a in record.active if a.run_id != record.run.run_id]
    return ("<h2>Components</h2>" + table(["component", "state", "seconds", "error"], rows)
            + ("<ul>" + "".join(f"<li>{escape(a.sentence)}</li>" for a in notes) + "</ul>"
               if notes else ""))


def _data_html(record: RunRecord) -> str:
    data = record.data or DataSection()
    out = ["<h2>Data</h2>"]
    if record.run.data_root:
        out.append(f"<p>Images from <code>{escape(record.run.data_root)}</code>.</p>")
    if data.class_counts:
        out.append(counts_html(data))
    for warning in data.warnings or []:
        out.append(f'<p class="warn verdict">Data warning: {escape(warning)}</p>')
    if data.anomalies is not None:
        out.append(f"<h3>Anomalies ({len(data.anomalies)})</h3>")
        out.append("<p>None: every split matches the curated schema.</p>" if not data.anomalies
                   else "<ul>" + "".join(f"<li>{escape(a)}</li>" for a in data.anomalies) + "</ul>")
    if data.quarantine is not None:
        out.append(quarantine_html(data.quarantine))
    if data.report_text:
        out.append(f"<details open><summary>The DataGate's data report "
                   f"(<code>{escape(data.report_path)}</code>)</summary>"
                   f'<div class="md">{markdown_html(data.report_text)}</div></details>')
    return "".join(out)


def _tensorboard_html(training: TrainingSection) -> str:
    if not training.model_run_uri:
        return ""
    logs = training.model_run_uri.rstrip("/") + "/logs"
    link = (f'<a href="{escape(_file_uri(logs))}">{escape(logs)}</a>' if "://" not in logs
            else f"<code>{escape(logs)}</code>")
    return (f"<p>TensorBoard logs of both phases: {link}; open them with "
            f"<code>tensorboard --logdir {escape(logs)}</code> (then http://localhost:6006).</p>")


def _file_uri(path: str) -> str:
    import pathlib

    return pathlib.Path(os.path.abspath(path)).as_uri()


def _training_html(training: Optional[TrainingSection]) -> str:
    out = ["<h2>Training</h2>"]
    if not training:
        return out[0] + "<p>The Trainer did not run or left no training report.</p>"
    if training.base_weights_random:
        out.append(f'<p class="banner">Base weights: {escape(training.base_weights)}. A model '
                   "trained from random initialisation is far below real transfer learning; "
                   "see the README (Base weights, offline).</p>")
    else:
        out.append(f"<p>Base weights: {escape(training.base_weights)}.</p>")
    if training.strategy:
        out.append(f"<p>Hardware: {escape(training.strategy)}.</p>")
    rows, merged, boundary = [], {}, None
    for phase in training.phases:
        if phase.skipped is not None:
            rows.append([f"<td>{phase.name}</td>",
                         f'<td colspan="4">skipped: {escape(phase.skipped)}</td>'])
            continue
        rows.append([f"<td>{phase.name}</td>", f'<td class="num">{escape(phase.epochs_run)}</td>',
                     number_cell(phase.seconds, 1), number_cell(phase.best_val_loss),
                     f"<td>{escape(phase.kept_phase1_weights)}</td>"])
        if phase.name == "phase2" and merged:
            boundary = max(len(v) for v in merged.values())
        offset = max((len(v) for v in merged.values()), default=0)
        for name, values in phase.history.items():
            merged.setdefault(name, [None] * offset)
            merged[name] = merged[name] + [None] * (offset - len(merged[name])) + list(values)
    out.append(table(["phase", "epochs", "seconds", "best val_loss", "note"], rows))
    curves = []
    for metric in ("loss", "accuracy"):
        series = {name: merged[name] for name in (metric, f"val_{metric}") if name in merged}
        if series:
            log = metric == "loss" and charts.wide_range(series)
            curves.append(charts.line_chart(
                series, f"{metric} per epoch (phase 1, then phase 2)"
                + (", log scale" if log else ""), boundary, log_scale=log))
    if curves:
        out.append(f'<div class="charts">{"".join(curves)}</div>')
    out.append(_tensorboard_html(training))
    return "".join(out)


def _split_counts(record: RunRecord, split: str) -> Dict[str, int]:
    return ((record.data.class_counts if record.data else None) or {}).get(split, {})


def _evaluation_html(report: RunReport) -> str:
    evaluation = report.record.evaluation
    out = ["<h2>Evaluation (eval split)</h2>"]
    if not evaluation:
        return out[0] + "<p>The Evaluator did not run.</p>"
    baseline = evaluation.baseline or {}
    if baseline:
        out.append(f"<p>Baseline for the no-regression check: {escape(baseline_text(baseline))}"
                   + (f"; not used: {escape(baseline['dropped'])}" if baseline.get("dropped")
                      else "") + ".</p>")
    order = class_order(report.record)
    out.append(metrics_html(evaluation.metrics, evaluation.per_class,
                            _split_counts(report.record, "eval"), evaluation.top_k,
                            len(order)))
    out.append("<p class=\"meta\">Precision and recall are those of the top-1 class; "
               "calibration is mean predicted probability over actual frequency.</p>")
    matrix = evaluation.confusion_matrix
    if matrix:
        out.append("<h3>Confusion matrix</h3>"
                   + charts.confusion_svg(reorder_matrix(matrix, order)))
        if any(matrix["no_prediction"]):
            out.append(f"<p>Examples without a predicted class: "
                       f"{sum(matrix['no_prediction'])}.</p>")
    out.append(evidence_view.evidence_html(evaluation.evidence))
    if report.misclassified is not None:
        out.append(misclassified_html(report.misclassified, order))
    return "".join(out)


def _blessing_html(evaluation: Optional[EvaluationSection]) -> str:
    if not evaluation:
        return ""
    out = ["<h2>Blessing decision</h2>",
           f"<p><b>{'Blessed' if evaluation.blessed else 'Not blessed'}</b>: "
           + ("every threshold below was met." if evaluation.blessed else
              "at least one threshold failed.") + "</p>"]
    rows = []
    for check in evaluation.checks:
        status = ('<td class="pass">passed</td>' if check["passed"] else
                  '<td class="fail">FAILED</td>' if check["passed"] is False else
                  '<td class="na">not applied (no baseline value)</td>')
        rows.append([f"<td>{escape(check['metric'])}</td>",
                     f"<td>{escape(check['class'] or 'all')}</td>",
                     f"<td>{escape(check['condition'])}</td>",
                     number_cell(check["value"]) if not check.get("slice") else
                     f'<td class="num">{check["value"]:.4f} '
                     f'(worst: {escape(check["slice"])})</td>',
                     status])
    if rows:
        out.append(table(["metric", "class", "threshold", "value", "result"], rows))
    if evaluation.failures:
        out.append("<ul>" + "".join(f"<li>{escape(f)}</li>" for f in evaluation.failures)
                   + "</ul>")
    return "".join(out)


def _test_split_html(record: RunRecord) -> str:
    test_split = record.test_split
    if not test_split:
        return ""
    out = ["<h2>Test split</h2>"]
    if test_split.skipped:
        return out[0] + f"<p>Not evaluated: {escape(test_split.skipped)}.</p>"
    out.append("<p>The blessed candidate on the held-out test split; recorded, never used for "
               "the blessing.</p>")
    out.append(metrics_html(test_split.metrics, test_split.per_class,
                            _split_counts(record, "test"),
                            record.evaluation.top_k if record.evaluation else None,
                            len(class_order(record))))
    out.append(evidence_view.evidence_html(test_split.evidence))
    return "".join(out)


def _push_html(report: RunReport) -> str:
    push = report.record.push
    out = ["<h2>Push</h2>"]
    if not push:
        return out[0] + "<p>The Pusher did not run: nothing was pushed.</p>"
    if not push.pushed:
        return out[0] + "<p>Nothing pushed; the served model is unchanged.</p>"
    base = os.path.dirname(str(push.destination).rstrip("/"))
    out.append(f"<p>Version <b>{escape(push.version)}</b> at <code>{escape(push.destination)}"
               f"</code>. TF Serving serves the highest version under <code>{escape(base)}</code> "
               f"(<code>--model_base_path={escape(base)}</code>).</p>")
    if push.pruned_versions:
        out.append(f"<p>Removed old versions: {escape(push.pruned_versions)}.</p>")
    if report.model_card:
        out.append(f"<p>Model card: <code>{escape(report.model_card)}</code>.</p>")
    return "".join(out)


def render_html(report: RunReport) -> str:
    """The whole report page."""
    record, run = report.record, report.record.run
    wall = f", {run.wall_seconds:.0f} s" if run.wall_seconds is not None else ""
    footer = [f"metadata store <code>{escape(report.metadata_path)}</code>",
              f"artifacts <code>{escape(report.pipeline_root)}</code>",
              f"machine-readable summary <code>{REPORT_JSON}</code> beside this file"]
    if report.log_path:
        footer.append(f"run log <code>{escape(report.log_path)}</code>")
    body = [f"<h1>Run report: {escape(record.pipeline)}</h1>",
            f'<p class="meta">run {escape(run.run_id)}, started {escape(run.started)}'
            f"{wall}; report generated {escape(report.generated_at)}</p>",
            answer.banner_html(report),
            _components_html(record), _data_html(record), samples_html(report),
            split_sites.split_html(report),
            _training_html(record.training),
            _evaluation_html(report),
            compare.comparison_html(record.evaluation, class_order(record),
                                    _split_counts(record, "eval"),
                                    lambda m: reorder_matrix(m, class_order(record))),
            split_sites.sites_html(report),
            _blessing_html(record.evaluation),
            _test_split_html(record), _push_html(report),
            history_view.history_html(report.history, run.run_id),
            "<h2>Where things are</h2><ul>" + "".join(f"<li>{f}</li>" for f in footer)
            + "</ul>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(record.pipeline)} run {escape(run.run_id)}</title>"
            f"<style>{_CSS}</style></head><body><main>{''.join(body)}</main></body></html>\n")
