"""The run report: one self-contained HTML page and a JSON summary beside it, for the newest run.

Built from the metadata store, like run_report.summary, so `inception-retrain report` rebuilds it
for a finished run: class counts per split, anomalies, quarantined files, training curves of
both phases, evaluation metrics per class, the confusion matrix, thumbnails of misclassified
eval images (the candidate's serving signature run on the Evaluator's eval split), the blessing
decision with every threshold, and where the model was pushed. The page has inline CSS and SVG,
thumbnails as data: URIs, no script and no external reference: it opens offline and can be
attached to a ticket as one file.
"""
import base64
import dataclasses
import datetime
import html
import io
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from inception_retrain.pipeline import config as config_lib
from inception_retrain.run_report import model_card, summary

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
REPORT_FORMAT = 1
MAX_EXAMPLES = 200       # eval examples classified for the misclassified thumbnails
MAX_THUMBNAILS = 24
THUMBNAIL_PX = 128


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    """Where one report was written."""

    html: str
    json: str
    model_card: Optional[str]


# -- reading the run ---------------------------------------------------------------------------

def _value(properties, name: str):
    """A custom property of an MLMD execution or artifact as a Python value, or None."""
    value = properties.get(name)
    if value is None:
        return None
    which = value.WhichOneof("value")
    return getattr(value, which) if which in ("int_value", "double_value", "string_value") else None


def run_facts(store, nodes) -> Dict[str, Any]:
    """Run id, data root, start time and wall-clock duration of the run."""
    facts: Dict[str, Any] = {"run_id": None, "data_root": None, "started": None,
                             "wall_seconds": None}
    if not nodes:
        return facts
    executions = list(nodes.values())
    for context in store.get_contexts_by_execution(executions[0].id):
        if context.type == "pipeline_run":
            facts["run_id"] = context.name
    if "ImageExampleGen" in nodes:
        facts["data_root"] = _value(nodes["ImageExampleGen"].custom_properties, "input_base")
    start = min(e.create_time_since_epoch for e in executions)
    end = max(e.last_update_time_since_epoch for e in executions)
    facts["started"] = datetime.datetime.fromtimestamp(start / 1000).isoformat(timespec="seconds")
    facts["wall_seconds"] = round((end - start) / 1000.0, 1)
    return facts


def _class_names(evaluation_uri: str) -> List[str]:
    from inception_retrain.components.evaluator.evaluator import read_gate_record

    return (read_gate_record(evaluation_uri) or {}).get("class_names", [])


def _class_label(sub_key, class_names: Sequence[str]) -> Optional[str]:
    if sub_key is None or sub_key.class_id is None:
        return None
    class_id = sub_key.class_id
    return class_names[class_id] if 0 <= class_id < len(class_names) else f"class id {class_id}"


def _condition(threshold) -> str:
    from tensorflow_model_analysis.proto import config_pb2

    parts = []
    if isinstance(threshold, config_pb2.GenericValueThreshold):
        if threshold.HasField("lower_bound"):
            parts.append(f">= {threshold.lower_bound.value:.4g}")
        if threshold.HasField("upper_bound"):
            parts.append(f"<= {threshold.upper_bound.value:.4g}")
    else:
        higher = threshold.direction == config_pb2.MetricDirection.HIGHER_IS_BETTER
        if threshold.HasField("absolute"):
            parts.append(f"change vs baseline {'>=' if higher else '<='} "
                         f"{threshold.absolute.value:+.4g}")
        if threshold.HasField("relative"):
            parts.append(f"relative change vs baseline {'>=' if higher else '<='} "
                         f"{threshold.relative.value:+.4g}")
    return " and ".join(parts)


def gate_checks(evaluation_uri: str, class_names: Sequence[str]) -> List[Dict[str, Any]]:
    """Every threshold of the evaluation with the measured value and whether it passed.

    Read from the EvalConfig TFMA recorded beside its results (it includes the per-class
    thresholds the GatedEvaluator adds) and TFMA's validation result; a change threshold has
    no value when there was no baseline, and then did not apply.
    """
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.metrics import metric_specs, metric_types
    from tensorflow_model_analysis.writers import eval_config_writer

    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    if eval_config is None:
        return []
    values: Dict[Any, float] = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for kv in slice_metrics.metric_keys_and_values:
            if kv.value.HasField("double_value"):
                values[metric_types.MetricKey.from_proto(kv.key)] = kv.value.double_value.value
    failed = set()
    for per_slice in tfma.load_validation_result(evaluation_uri).metric_validations_per_slice:
        for failure in per_slice.failures:
            failed.add(metric_types.MetricKey.from_proto(failure.metric_key))
    checks = []
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(
        eval_config.metrics_specs, eval_config)
    for key, slices_and_thresholds in thresholds.items():
        if key.model_name not in ("", "candidate"):
            continue
        value = values.get(key)
        for _, threshold in slices_and_thresholds:
            checks.append({
                "metric": key.name, "class": _class_label(key.sub_key, class_names),
                "kind": "change" if key.is_diff else "value",
                "condition": _condition(threshold), "value": value,
                "passed": None if value is None else key not in failed})
    return sorted(checks, key=lambda c: (c["class"] is not None, c["metric"], c["class"] or "",
                                         c["kind"]))


def confusion_matrix(evaluation_uri: str, class_names: Sequence[str]) -> Optional[Dict]:
    """TFMA's MultiClassConfusionMatrixPlot of the candidate on the eval split, as counts.

    rows: actual class, columns: predicted class (argmax); None when the evaluation has no such
    plot (an EvalConfig without it)."""
    import tensorflow_model_analysis as tfma

    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue
        for kv in plots.plot_keys_and_values:
            if (not kv.value.HasField("multi_class_confusion_matrix_at_thresholds")
                    or kv.key.model_name not in ("", "candidate")):
                continue
            matrices = kv.value.multi_class_confusion_matrix_at_thresholds.matrices
            if not matrices:
                continue
            entries = matrices[0].entries
            size = max([len(class_names)] + [max(e.actual_class_id, e.predicted_class_id) + 1
                                              for e in entries])
            names = list(class_names) + [f"class id {i}" for i in range(len(class_names), size)]
            counts = [[0] * size for _ in range(size)]
            unpredicted = [0] * size
            for entry in entries:
                count = int(round(entry.num_weighted_examples))
                if entry.predicted_class_id < 0:
                    unpredicted[entry.actual_class_id] += count
                else:
                    counts[entry.actual_class_id][entry.predicted_class_id] += count
            return {"classes": names, "counts": counts, "no_prediction": unpredicted}
    return None


def _thumbnail(image_bytes: bytes) -> Optional[str]:
    """A small JPEG of an encoded image as a data: URI; None if PIL cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=80)
    except (UnidentifiedImageError, OSError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _eval_examples(examples_artifact, split: str, limit: int):
    """(image bytes, label, relative path) of the first `limit` examples of one split."""
    import tensorflow as tf

    from inception_retrain.components import features

    pattern = os.path.join(examples_artifact.uri, f"Split-{split}", "*")
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        return
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit)
    for record in dataset:
        example = tf.train.Example.FromString(record.numpy())
        feature = example.features.feature
        yield (feature[features.IMAGE_KEY].bytes_list.value[0],
               feature[features.LABEL_KEY].bytes_list.value[0].decode("utf-8"),
               feature[features.PATH_KEY].bytes_list.value[0].decode("utf-8"))


def misclassified(store, evaluator_execution, max_examples: int = MAX_EXAMPLES,
                  max_thumbnails: int = MAX_THUMBNAILS, batch_size: int = 16) -> Dict[str, Any]:
    """Runs the candidate's serving signature (raw image bytes in, what TF Serving clients send)
    on up to max_examples examples of the Evaluator's eval split; returns the misclassified
    ones, with thumbnails for the first max_thumbnails."""
    import tensorflow as tf
    from tfx.utils import path_utils

    from inception_retrain.components import features

    result: Dict[str, Any] = {"examined": 0, "misclassified": 0, "items": [], "skipped": ""}
    if max_examples <= 0:
        result["skipped"] = "turned off (--report-examples 0)"
        return result
    inputs = summary.input_artifacts(store, evaluator_execution)
    if not inputs.get("model") or not inputs.get("examples"):
        result["skipped"] = "the Evaluator's inputs are not recorded"
        return result
    model_artifact = inputs["model"][0]
    model_dir = path_utils.serving_model_path(model_artifact.uri)
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        result["skipped"] = f"no SavedModel in {model_dir}"
        return result
    serve = tf.saved_model.load(model_dir).signatures[features.SERVING_BYTES_SIGNATURE]
    batch: List[Tuple[bytes, str, str]] = []

    def flush():
        outputs = serve(**{features.BYTES_INPUT: tf.constant([b[0] for b in batch])})
        predicted = [p.decode("utf-8") for p in outputs["predicted_class"].numpy()]
        scores = outputs["scores"].numpy().max(axis=-1)
        for (image, label, path), guess, score in zip(batch, predicted, scores):
            result["examined"] += 1
            if guess == label:
                continue
            result["misclassified"] += 1
            if len(result["items"]) < max_thumbnails:
                result["items"].append({"path": path, "label": label, "predicted": guess,
                                        "score": round(float(score), 4),
                                        "thumbnail": _thumbnail(image)})
        batch.clear()

    for example in _eval_examples(inputs["examples"][0], "eval", max_examples):
        batch.append(example)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return result


def _previous_failure(json_path: str, run_id: Optional[str]) -> Tuple[str, str]:
    """The failure message and log path an earlier report of the same run recorded."""
    if not os.path.exists(json_path):
        return "", ""
    with open(json_path) as f:
        previous = json.load(f)
    if previous.get("run", {}).get("run_id") != run_id:
        return "", ""
    return previous.get("failure") or "", previous.get("log_path") or ""


def _safe_name(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in run_id).strip("-")


def collect(config: config_lib.PipelineConfig, run_summary: Optional[Dict] = None,
            max_examples: int = MAX_EXAMPLES) -> Dict[str, Any]:
    """Everything the report shows, as a JSON-ready dict (thumbnails as data: URIs)."""
    store = summary.open_store(config.metadata_path)
    nodes = summary.latest_run_executions(store, config.pipeline_name)
    if not nodes:
        raise FileNotFoundError(f"no run of pipeline {config.pipeline_name!r} in "
                                f"{config.metadata_path}")
    if run_summary is None:
        run_summary = summary.collect(config.metadata_path, config.pipeline_name)
    data: Dict[str, Any] = {"format": REPORT_FORMAT, "generated_at": datetime.datetime.now()
                            .isoformat(timespec="seconds"),
                            "run": run_facts(store, nodes), "summary": run_summary,
                            "metadata_path": config.metadata_path,
                            "pipeline_root": config.pipeline_root,
                            "gate_checks": [], "confusion_matrix": None, "misclassified": None}
    if "Evaluator" in nodes and run_summary.get("evaluation"):
        evaluation_uri = summary.output_artifacts(store, nodes["Evaluator"])["evaluation"][0].uri
        class_names = _class_names(evaluation_uri)
        data["gate_checks"] = gate_checks(evaluation_uri, class_names)
        data["confusion_matrix"] = confusion_matrix(evaluation_uri, class_names)
        data["misclassified"] = misclassified(store, nodes["Evaluator"], max_examples)
    data_report = (run_summary.get("data") or {}).get("report")
    if data_report and os.path.exists(data_report):
        with open(data_report, encoding="utf-8") as f:
            data["data_report_text"] = f.read()
    return data


def build(config: config_lib.PipelineConfig, run_summary: Optional[Dict] = None,
          failure: str = "", log_path: str = "", max_examples: int = MAX_EXAMPLES,
          output_dir: Optional[str] = None) -> ReportFiles:
    """Writes report.html and report.json for the newest run (under
    <work_dir>/reports/<run id>/ unless output_dir), and the model card of a pushed version."""
    data = collect(config, run_summary, max_examples)
    run_id = data["run"]["run_id"] or "unknown-run"
    output_dir = output_dir or os.path.join(config.work_dir, "reports", _safe_name(run_id))
    os.makedirs(output_dir, exist_ok=True)
    html_path = os.path.join(output_dir, REPORT_HTML)
    json_path = os.path.join(output_dir, REPORT_JSON)
    if not failure:
        failure, log_path = _previous_failure(json_path, run_id)
    data["failure"], data["log_path"] = failure, log_path
    data["report_html"] = html_path
    status, sentence = verdict(data)
    data["verdict"] = {"status": status, "text": sentence}
    data["model_card"] = model_card.write(data)
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(render_html(data))
    machine = dict(data)
    machine.pop("data_report_text", None)
    if data["misclassified"]:
        machine["misclassified"] = dict(data["misclassified"], items=[
            {k: v for k, v in item.items() if k != "thumbnail"}
            for item in data["misclassified"]["items"]])
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(_finite(machine), f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")
    return ReportFiles(html_path, json_path, data["model_card"])


def _finite(value):
    """NaN and infinities (e.g. the precision of a class never predicted) become null: strict
    JSON parsers refuse NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# -- verdict -----------------------------------------------------------------------------------

def verdict(data: Dict[str, Any]) -> Tuple[str, str]:
    """(css class, one sentence) saying how the run ended."""
    run_summary = data["summary"]
    failed = [c["component"] for c in run_summary["components"] if c["state"] == "FAILED"]
    evaluation, push = run_summary.get("evaluation"), run_summary.get("push")
    if failed:
        reason = f": {data['failure']}" if data.get("failure") else ""
        return "bad", f"Failed at {', '.join(failed)}{reason}"
    if data.get("failure"):
        return "bad", f"Failed: {data['failure']}"
    if evaluation is None:
        return "bad", "Stopped before evaluation; nothing was pushed"
    if not evaluation["blessed"]:
        first = evaluation["failures"][0] if evaluation["failures"] else "a threshold failed"
        return "warn", f"Not blessed ({first}); the served model is unchanged"
    if push and push["pushed"] and not model_card.pushed_by_this_run(run_summary):
        return "good", (f"Reused from cache: nothing changed since the run that pushed version "
                        f"{push['version']}")
    if push and push["pushed"]:
        return "good", f"Blessed and pushed as version {push['version']}"
    return "warn", "Blessed, but nothing was pushed"


# -- SVG ---------------------------------------------------------------------------------------

_COLORS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989")


def _nice_ticks(low: float, high: float, count: int = 5) -> List[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value <= high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    return ticks


def line_chart(series: Dict[str, List[Optional[float]]], title: str,
               boundary: Optional[int] = None, width: int = 440, height: int = 230) -> str:
    """An inline SVG line chart over epochs (1-based); `boundary` draws the phase change after
    that many epochs. Missing or non-finite values leave gaps."""
    left, right, top, bottom = 52, 12, 28, 52
    finite = [v for values in series.values() for v in values
              if v is not None and math.isfinite(v)]
    epochs = max((len(v) for v in series.values()), default=0)
    if not finite or epochs == 0:
        return (f'<svg class="chart" width="{width}" height="60" role="img"><text x="8" y="30">'
                f'{html.escape(title)}: no values</text></svg>')
    ticks = _nice_ticks(min(finite), max(finite))
    y_low, y_high = ticks[0], ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(epoch: int) -> float:  # epoch is 1-based
        return left + (plot_w * (epoch - 1) / (epochs - 1) if epochs > 1 else plot_w / 2)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (value - y_low) / ((y_high - y_low) or 1))

    out = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
           f' role="img" aria-label="{html.escape(title)}">',
           f'<text x="{left}" y="16" class="title">{html.escape(title)}</text>']
    for tick in ticks:
        y = y_of(tick)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'class="grid"/><text x="{left - 6}" y="{y + 4:.1f}" class="tick" '
                   f'text-anchor="end">{tick:.4g}</text>')
    step = max(1, math.ceil(epochs / 10))
    for epoch in range(1, epochs + 1, step):
        out.append(f'<text x="{x_of(epoch):.1f}" y="{height - bottom + 16}" class="tick" '
                   f'text-anchor="middle">{epoch}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - bottom + 30}" class="tick" '
               f'text-anchor="middle">epoch</text>')
    if boundary and 0 < boundary < epochs:
        x = (x_of(boundary) + x_of(boundary + 1)) / 2
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" '
                   f'class="boundary"/><text x="{x + 4:.1f}" y="{top + 12}" class="tick">'
                   f'phase 2</text>')
    for index, (name, values) in enumerate(series.items()):
        color = _COLORS[index % len(_COLORS)]
        segments, current = [], []
        for epoch, value in enumerate(values, start=1):
            if value is None or not math.isfinite(value):
                if current:
                    segments.append(current)
                current = []
                continue
            current.append((x_of(epoch), y_of(value)))
        if current:
            segments.append(current)
        for segment in segments:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
            out.append(f'<polyline points="{points}" fill="none" stroke="{color}" '
                       f'stroke-width="2"/>')
            out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>'
                       for x, y in segment)
        legend_x = left + 110 * index
        out.append(f'<rect x="{legend_x}" y="{height - 12}" width="14" height="4" '
                   f'fill="{color}"/><text x="{legend_x + 18}" y="{height - 6}" '
                   f'class="legend">{html.escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def confusion_svg(matrix: Dict[str, Any]) -> str:
    """The confusion matrix as an SVG grid: rows actual, columns predicted, shade by the row's
    share (recall on the diagonal), counts written in the cells."""
    names, counts = matrix["classes"], matrix["counts"]
    size = len(names)
    cell = 44 if size <= 8 else 28 if size <= 20 else 14
    label_w = min(180, 8 + 7 * max((len(n) for n in names), default=1))
    left, top = label_w + 24, label_w + 24
    width, height = left + cell * size + 10, top + cell * size + 10
    out = [f'<svg class="confusion" width="{width}" height="{height}" viewBox="0 0 {width} '
           f'{height}" role="img" aria-label="confusion matrix">',
           f'<text x="{left + cell * size / 2:.0f}" y="12" class="tick" text-anchor="middle">'
           f'predicted</text>',
           f'<text x="12" y="{top + cell * size / 2:.0f}" class="tick" text-anchor="middle" '
           f'transform="rotate(-90 12 {top + cell * size / 2:.0f})">actual</text>']
    for i, name in enumerate(names):
        short = html.escape(name if len(name) <= 24 else name[:23] + "…")
        out.append(f'<text x="{left - 6}" y="{top + cell * i + cell / 2 + 4:.0f}" class="tick" '
                   f'text-anchor="end"><title>{html.escape(name)}</title>{short}</text>')
        x = left + cell * i + cell / 2 + 4
        out.append(f'<text x="{x:.0f}" y="{top - 6}" class="tick" '
                   f'transform="rotate(-60 {x:.0f} {top - 6})"><title>{html.escape(name)}</title>'
                   f'{short}</text>')
    for i, row in enumerate(counts):
        total = sum(row) + matrix["no_prediction"][i]
        for j, count in enumerate(row):
            share = count / total if total else 0.0
            hue = 140 if i == j else 0
            fill = f"hsl({hue}, 60%, {97 - 50 * share:.0f}%)" if count else "#fafafa"
            out.append(f'<rect x="{left + cell * j}" y="{top + cell * i}" width="{cell}" '
                       f'height="{cell}" fill="{fill}" stroke="#d0d7de"><title>actual '
                       f'{html.escape(names[i])}, predicted {html.escape(names[j])}: {count}'
                       f'</title></rect>')
            if count and cell >= 28:
                out.append(f'<text x="{left + cell * j + cell / 2:.0f}" '
                           f'y="{top + cell * i + cell / 2 + 4:.0f}" class="cell" '
                           f'text-anchor="middle">{count}</text>')
    out.append("</svg>")
    return "".join(out)


# -- HTML --------------------------------------------------------------------------------------

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
figcaption{word-break:break-all}code,pre{font:12px ui-monospace,Menlo,Consolas,monospace}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:420px}ul{margin:4px 0}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Optional[float], digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return '<td class="num na">–</td>'
    return f'<td class="num">{value:.{digits}f}</td>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """rows hold ready-made cells (<td>...</td>)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _components_html(run_summary: Dict) -> str:
    rows = [[f"<td>{_e(c['component'])}</td>",
             f'<td class="{"fail" if c["state"] == "FAILED" else ""}">{_e(c["state"])}</td>',
             _num(c["seconds"], 1)] for c in run_summary["components"]]
    return "<h2>Components</h2>" + _table(["component", "state", "seconds"], rows)


def _data_html(data: Dict) -> str:
    section = data["summary"].get("data") or {}
    out = ["<h2>Data</h2>"]
    if data["run"].get("data_root"):
        out.append(f"<p>Images from <code>{_e(data['run']['data_root'])}</code>.</p>")
    counts = section.get("class_counts") or {}
    if counts:
        splits = list(counts)
        classes = sorted(set().union(*counts.values()))
        biggest = max([sum(counts[s].get(c, 0) for s in splits) for c in classes] or [1]) or 1
        rows = []
        for name in classes:
            total = sum(counts[s].get(name, 0) for s in splits)
            rows.append([f"<td>{_e(name)}</td>"]
                        + [f'<td class="num">{counts[s].get(name, 0)}</td>' for s in splits]
                        + [f'<td><span class="bar" style="width:{120 * total / biggest:.0f}px">'
                           f'</span>{total}</td>'])
        rows.append(["<td><b>total</b></td>"]
                    + [f'<td class="num"><b>{sum(counts[s].values())}</b></td>' for s in splits]
                    + [f"<td><b>{sum(sum(c.values()) for c in counts.values())}</b></td>"])
        out.append("<h3>Examples per class and split</h3>"
                   + _table(["class"] + splits + ["all splits"], rows))
    for warning in section.get("warnings", []):
        out.append(f'<p class="warn verdict">Data warning: {_e(warning)}</p>')
    if "anomalies" in section:
        anomalies = section["anomalies"]
        out.append(f"<h3>Anomalies ({len(anomalies)})</h3>")
        out.append("<p>None: every split matches the curated schema.</p>" if not anomalies else
                   "<ul>" + "".join(f"<li>{_e(a)}</li>" for a in anomalies) + "</ul>")
    if "quarantine" in section:
        quarantine = section["quarantine"]
        out.append(f"<h3>Quarantined files ({len(quarantine)})</h3>")
        if quarantine:
            shown = quarantine[:200]
            out.append(_table(["file", "category", "reason"], [
                [f"<td><code>{_e(q.get('relative_path'))}</code></td>",
                 f"<td>{_e(q.get('category', ''))}</td>", f"<td>{_e(q.get('reason'))}</td>"]
                for q in shown]))
            if len(quarantine) > len(shown):
                out.append(f"<p>… and {len(quarantine) - len(shown)} more (report.json has "
                           "all).</p>")
        else:
            out.append("<p>None: every file was read.</p>")
    if data.get("data_report_text"):
        out.append(f"<details><summary>The DataGate's data report "
                   f"(<code>{_e(section.get('report'))}</code>)</summary>"
                   f"<pre>{_e(data['data_report_text'])}</pre></details>")
    return "".join(out)


def _training_html(training: Optional[Dict]) -> str:
    out = ["<h2>Training</h2>"]
    if not training:
        return out[0] + "<p>The Trainer did not run or left no training report.</p>"
    weights = str(training.get("base_weights", ""))
    if weights.lower().startswith("random"):
        out.append(f'<p class="banner">Base weights: {_e(weights)}. A model trained from random '
                   "initialisation is far below real transfer learning; see the README "
                   "(Base weights, offline).</p>")
    else:
        out.append(f"<p>Base weights: {_e(weights)}.</p>")
    if training.get("strategy"):
        out.append(f"<p>Hardware: {_e(training['strategy'])}.</p>")
    rows, merged, boundary = [], {}, None
    for phase in ("phase1", "phase2"):
        info = training.get(phase) or {}
        if "skipped" in info:
            rows.append([f"<td>{phase}</td>", f'<td colspan="4">skipped: {_e(info["skipped"])}'
                         "</td>"])
            continue
        history = info.get("history", {})
        val_loss = [v for v in history.get("val_loss", []) if v is not None]
        rows.append([f"<td>{phase}</td>", f'<td class="num">{_e(info.get("epochs_run"))}</td>',
                     _num(info.get("seconds"), 1),
                     _num(min(val_loss) if val_loss else None),
                     f"<td>{_e(info.get('kept_phase1_weights', ''))}</td>"])
        if phase == "phase2" and merged:
            boundary = max(len(v) for v in merged.values())
        offset = max((len(v) for v in merged.values()), default=0)
        for name, values in history.items():
            merged.setdefault(name, [None] * offset)
            merged[name] = merged[name] + [None] * (offset - len(merged[name])) + list(values)
    out.append(_table(["phase", "epochs", "seconds", "best val_loss", "note"], rows))
    charts = []
    for metric in ("loss", "accuracy"):
        series = {name: merged[name] for name in (metric, f"val_{metric}") if name in merged}
        if series:
            charts.append(line_chart(series, f"{metric} per epoch (phase 1, then phase 2)",
                                     boundary))
    if charts:
        out.append(f'<div class="charts">{"".join(charts)}</div>')
    return "".join(out)


_PER_CLASS_COLUMNS = (("precision", "top1_precision"), ("recall", "top1_recall"),
                      ("calibration", "calibration"))


def _metrics_html(metrics: Dict[str, float], per_class: Dict[str, Dict[str, float]],
                  support: Dict[str, int]) -> str:
    out = [_table(["metric", "value"], [[f"<td>{_e(k)}</td>", _num(v, 0 if "count" in k else 4)]
                                        for k, v in sorted(metrics.items())])]
    if per_class or support:
        names = sorted(set(per_class) | set(support))
        out.append(_table(["class", "examples"] + [c for c, _ in _PER_CLASS_COLUMNS], [
            [f"<td>{_e(name)}</td>", f'<td class="num">{support.get(name, 0)}</td>']
            + [_num((per_class.get(name) or {}).get(key)) for _, key in _PER_CLASS_COLUMNS]
            for name in names]))
    return "".join(out)


def _evaluation_html(data: Dict) -> str:
    evaluation = data["summary"].get("evaluation")
    out = ["<h2>Evaluation (eval split)</h2>"]
    if not evaluation:
        return out[0] + "<p>The Evaluator did not run.</p>"
    baseline = evaluation.get("baseline") or {}
    if baseline:
        text = (f"served version {baseline.get('version')} ({baseline.get('path')})"
                if baseline.get("source") == "served" else
                f"{baseline.get('source')}"
                + (f" ({baseline.get('note') or baseline.get('uri')})"
                   if baseline.get("note") or baseline.get("uri") else ""))
        out.append(f"<p>Baseline for the no-regression check: {_e(text)}"
                   + (f"; not used: {_e(baseline['dropped'])}" if baseline.get("dropped")
                      else "") + ".</p>")
    counts = ((data["summary"].get("data") or {}).get("class_counts") or {}).get("eval", {})
    out.append(_metrics_html(evaluation.get("metrics", {}), evaluation.get("per_class") or {},
                             counts))
    out.append("<p class=\"meta\">Precision and recall are those of the top-1 class; "
               "calibration is mean predicted probability over actual frequency.</p>")
    matrix = data.get("confusion_matrix")
    if matrix:
        out.append("<h3>Confusion matrix</h3>" + confusion_svg(matrix))
        if any(matrix["no_prediction"]):
            out.append(f"<p>Examples without a predicted class: "
                       f"{sum(matrix['no_prediction'])}.</p>")
    wrong = data.get("misclassified")
    if wrong is not None:
        out.append("<h3>Misclassified eval images</h3>")
        if wrong["skipped"]:
            out.append(f"<p>Not computed: {_e(wrong['skipped'])}.</p>")
        else:
            out.append(f"<p>{wrong['misclassified']} of {wrong['examined']} eval examples "
                       "classified by the candidate's serving signature were wrong"
                       + (f"; the first {len(wrong['items'])} are shown"
                          if wrong["misclassified"] > len(wrong["items"]) else "") + ".</p>")
            figures = []
            for item in wrong["items"]:
                image = (f'<img src="{item["thumbnail"]}" alt="{_e(item["path"])}">'
                         if item.get("thumbnail") else "<p>(unreadable)</p>")
                figures.append(f"<figure>{image}<figcaption><b>{_e(item['label'])}</b> → "
                               f"{_e(item['predicted'])} ({item['score']:.2f})<br>"
                               f"<code>{_e(item['path'])}</code></figcaption></figure>")
            out.append(f'<div class="thumbs">{"".join(figures)}</div>')
    return "".join(out)


def _blessing_html(data: Dict) -> str:
    evaluation = data["summary"].get("evaluation")
    if not evaluation:
        return ""
    out = ["<h2>Blessing decision</h2>",
           f"<p><b>{'Blessed' if evaluation['blessed'] else 'Not blessed'}</b>: "
           + ("every threshold below was met." if evaluation["blessed"] else
              "at least one threshold failed.") + "</p>"]
    rows = []
    for check in data.get("gate_checks", []):
        status = ('<td class="pass">passed</td>' if check["passed"] else
                  '<td class="fail">FAILED</td>' if check["passed"] is False else
                  '<td class="na">not applied (no baseline value)</td>')
        rows.append([f"<td>{_e(check['metric'])}</td>", f"<td>{_e(check['class'] or 'all')}</td>",
                     f"<td>{_e(check['condition'])}</td>", _num(check["value"]), status])
    if rows:
        out.append(_table(["metric", "class", "threshold", "value", "result"], rows))
    if evaluation["failures"]:
        out.append("<ul>" + "".join(f"<li>{_e(f)}</li>" for f in evaluation["failures"])
                   + "</ul>")
    return "".join(out)


def _test_split_html(run_summary: Dict) -> str:
    test_split = run_summary.get("test_split")
    if not test_split:
        return ""
    out = ["<h2>Test split</h2>"]
    if test_split.get("skipped"):
        return out[0] + f"<p>Not evaluated: {_e(test_split['skipped'])}.</p>"
    counts = ((run_summary.get("data") or {}).get("class_counts") or {}).get("test", {})
    out.append("<p>The blessed candidate on the held-out test split; recorded, never used for "
               "the blessing.</p>")
    out.append(_metrics_html(test_split.get("metrics", {}), test_split.get("per_class") or {},
                             counts))
    return "".join(out)


def _push_html(data: Dict) -> str:
    push = data["summary"].get("push")
    out = ["<h2>Push</h2>"]
    if not push:
        return out[0] + "<p>The Pusher did not run: nothing was pushed.</p>"
    if not push["pushed"]:
        return out[0] + "<p>Nothing pushed; the served model is unchanged.</p>"
    base = os.path.dirname(str(push["destination"]).rstrip("/"))
    out.append(f"<p>Version <b>{_e(push['version'])}</b> at <code>{_e(push['destination'])}"
               f"</code>. TF Serving serves the highest version under <code>{_e(base)}</code> "
               f"(<code>--model_base_path={_e(base)}</code>).</p>")
    if push.get("pruned_versions"):
        out.append(f"<p>Removed old versions: {_e(push['pruned_versions'])}.</p>")
    if data.get("model_card"):
        out.append(f"<p>Model card: <code>{_e(data['model_card'])}</code>.</p>")
    return "".join(out)


def render_html(data: Dict[str, Any]) -> str:
    """The whole report page."""
    run_summary, run = data["summary"], data["run"]
    css_class, sentence = data["verdict"]["status"], data["verdict"]["text"]
    wall = f", {run['wall_seconds']:.0f} s" if run.get("wall_seconds") is not None else ""
    footer = [f"metadata store <code>{_e(data['metadata_path'])}</code>",
              f"artifacts <code>{_e(data['pipeline_root'])}</code>",
              f"machine-readable summary <code>{REPORT_JSON}</code> beside this file"]
    if data.get("log_path"):
        footer.append(f"run log <code>{_e(data['log_path'])}</code>")
    body = [f"<h1>Run report: {_e(run_summary['pipeline'])}</h1>",
            f'<p class="meta">run {_e(run.get("run_id"))}, started {_e(run.get("started"))}'
            f"{wall}; report generated {_e(data['generated_at'])}</p>",
            f'<p class="verdict {css_class}">{_e(sentence)}</p>',
            _components_html(run_summary), _data_html(data),
            _training_html(run_summary.get("training")), _evaluation_html(data),
            _blessing_html(data), _test_split_html(run_summary), _push_html(data),
            "<h2>Where things are</h2><ul>" + "".join(f"<li>{f}</li>" for f in footer)
            + "</ul>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(run_summary['pipeline'])} run {_e(run.get('run_id'))}</title>"
            f"<style>{_CSS}</style></head><body><main>{''.join(body)}</main></body></html>\n")
