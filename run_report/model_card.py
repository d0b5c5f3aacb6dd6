"""A Markdown model card for each pushed version: model, intended use, data, metrics, limits.

Written by the report step to <push_base>/model_cards/<version>.md, beside the version
directories, never inside one: a published version directory stays exactly what the
ServingPusher renamed into place (components/pusher/versions.py), and TF Serving only looks at
children whose names are integers, so `model_cards/` is invisible to it and to retention.
"""
import math
import os
import posixpath
from typing import Any, Dict, List, Optional, Tuple

CARDS_DIR = "model_cards"


def card_path(destination: str, version: Any) -> str:
    """<push_base>/model_cards/<version>.md for a version published at <push_base>/<version>."""
    join = posixpath.join if "://" in destination else os.path.join
    base = posixpath.dirname(destination.rstrip("/")) if "://" in destination else \
        os.path.dirname(destination.rstrip(os.sep))
    return join(base, CARDS_DIR, f"{version}.md")


def wilson_interval(successes: float, total: float, z: float = 1.96) -> Tuple[float, float]:
    """95% Wilson score interval of a proportion: honest error bars for small eval sets."""
    if total <= 0:
        return 0.0, 1.0
    p = successes / total
    denominator = 1 + z * z / total
    center = (p + z * z / (2 * total)) / denominator
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, center - margin), min(1.0, center + margin)


def _fmt(value: Optional[float]) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4f}"


def _counts_table(counts: Dict[str, Dict[str, int]]) -> List[str]:
    splits = list(counts)
    classes = sorted(set().union(*counts.values())) if counts else []
    lines = ["| class | " + " | ".join(splits) + " |", "|---" * (len(splits) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(counts[s].get(name, 0)) for s in splits) + " |"
              for name in classes]
    lines.append("| **total** | " + " | ".join(str(sum(counts[s].values())) for s in splits)
                 + " |")
    return lines


def _accuracy_line(metrics: Dict[str, float], split: str) -> Optional[str]:
    accuracy = metrics.get("sparse_categorical_accuracy")
    count = metrics.get("example_count")
    if accuracy is None or not count:
        return None
    low, high = wilson_interval(accuracy * count, count)
    return (f"- Accuracy on the {split} split: **{accuracy:.4f}** on {int(count)} image(s) "
            f"(95% interval {low:.2f} to {high:.2f}).")


def limits(data: Dict[str, Any]) -> List[str]:
    """What a reader must know before trusting the numbers, derived from the run itself."""
    run_summary = data["summary"]
    found = []
    training = run_summary.get("training") or {}
    if str(training.get("base_weights", "")).lower().startswith("random"):
        found.append("The base network started from random weights, not ImageNet: accuracy is "
                     "far below what transfer learning reaches on the same data.")
    metrics = (run_summary.get("evaluation") or {}).get("metrics", {})
    count = metrics.get("example_count") or 0
    if count and count < 200:
        low, high = wilson_interval(metrics.get("sparse_categorical_accuracy", 0) * count, count)
        found.append(f"Only {int(count)} eval images: the accuracy could plausibly be anywhere "
                     f"from {low:.2f} to {high:.2f}.")
    counts = (run_summary.get("data") or {}).get("class_counts") or {}
    train, evaluation = counts.get("train", {}), counts.get("eval", {})
    few = sorted(name for name, n in train.items() if n < 30)
    if few:
        found.append(f"Classes with fewer than 30 training images: {', '.join(few)}.")
    missing = sorted(name for name in train if not evaluation.get(name))
    if missing:
        found.append(f"Classes absent from the eval split (no measured accuracy for them): "
                     f"{', '.join(missing)}.")
    if train and min(train.values()) > 0 and max(train.values()) / min(train.values()) >= 3:
        found.append(f"The training classes are imbalanced (largest / smallest = "
                     f"{max(train.values()) / min(train.values()):.1f}).")
    for warning in (run_summary.get("data") or {}).get("warnings", []):
        found.append(f"Data warning: {warning}")
    found.append("Every image is assigned one of the known classes, including images of none "
                 "of them; use the score and review low-confidence predictions.")
    found.append("Metrics come from images of the same source as the training images; they "
                 "say nothing about other scanners, cameras, stains or sites.")
    return found


def render(data: Dict[str, Any]) -> str:
    """The card's Markdown text for the pushed version in report data (run_report.report)."""
    run_summary, run = data["summary"], data["run"]
    push = run_summary["push"]
    training = run_summary.get("training") or {}
    evaluation = run_summary.get("evaluation") or {}
    counts = (run_summary.get("data") or {}).get("class_counts") or {}
    classes = training.get("class_names") or sorted(set().union(*counts.values()) if counts
                                                    else [])
    config = training.get("config") or {}
    lines = [f"# Model card: version {push['version']}", "",
             f"Pipeline `{run_summary['pipeline']}`, run `{run.get('run_id')}` "
             f"(started {run.get('started')}). Full report: `{data.get('report_html')}`.", "",
             "## Model", "",
             f"- InceptionV3 fine-tuned in two phases: a new head on the frozen network, then "
             f"the top {config.get('unfreeze_blocks', '?')} inception blocks; image size "
             f"{config.get('image_size', '?')} px.",
             f"- Base weights: {training.get('base_weights', 'unknown')}.",
             f"- Served from `{push['destination']}` (TF Serving model base path: the folder "
             "above it).",
             "- Input (`serving_default`): encoded image bytes (`images`; JSON `{\"b64\": ...}` "
             "over REST). Output: `scores` (one probability per class), `classes`, "
             "`predicted_class`.",
             f"- Classes ({len(classes)}): {', '.join(classes)}.", "",
             "## Intended use", "",
             f"Sorting images into exactly these {len(classes)} classes, for images that look "
             "like the training images (same kind of source, resolution and preparation). "
             "It is a decision aid: where a wrong class has consequences, a person reviews the "
             "prediction.", "",
             "## Data", ""]
    if run.get("data_root"):
        lines += [f"Images from `{run['data_root']}`.", ""]
    if counts:
        lines += _counts_table(counts) + [""]
    quarantine = (run_summary.get("data") or {}).get("quarantine")
    if quarantine is not None:
        lines += [f"Quarantined (unreadable or refused) files: {len(quarantine)}.", ""]
    lines += ["## Training", ""]
    for phase in ("phase1", "phase2"):
        info = training.get(phase) or {}
        if "skipped" in info:
            lines.append(f"- {phase}: skipped ({info['skipped']}).")
        elif info:
            val_loss = [v for v in info.get("history", {}).get("val_loss", []) if v is not None]
            lines.append(f"- {phase}: {info.get('epochs_run')} epoch(s), best val_loss "
                         f"{_fmt(min(val_loss) if val_loss else None)}"
                         + (f"; {info['kept_phase1_weights']}" if info.get("kept_phase1_weights")
                            else "") + ".")
    lines += ["", "## Metrics", ""]
    for split, section in (("eval", evaluation), ("test", run_summary.get("test_split") or {})):
        metrics = section.get("metrics") or {}
        if not metrics:
            continue
        accuracy = _accuracy_line(metrics, split)
        if accuracy:
            lines.append(accuracy)
        lines += [f"- {name}: {_fmt(value)}" for name, value in sorted(metrics.items())
                  if name not in ("sparse_categorical_accuracy", "example_count")]
        per_class = section.get("per_class") or {}
        if per_class:
            lines += ["", f"| class ({split}) | precision | recall |", "|---|---|---|"]
            lines += [f"| {name} | {_fmt(values.get('top1_precision'))} | "
                      f"{_fmt(values.get('top1_recall'))} |"
                      for name, values in sorted(per_class.items())]
        lines.append("")
    passed = [c for c in data.get("gate_checks", []) if c["passed"]]
    if passed:
        lines.append("Blessed: " + "; ".join(
            f"{c['metric']}{' [' + c['class'] + ']' if c['class'] else ''} {_fmt(c['value'])} "
            f"({c['condition']})" for c in passed) + ".")
        lines.append("")
    lines += ["## Limits", ""] + [f"- {item}" for item in limits(data)] + [""]
    return "\n".join(lines)


def _pushed(run_summary: Dict[str, Any]) -> bool:
    push = run_summary.get("push")
    return bool(push and push.get("pushed") and push.get("destination"))


def pushed_by_this_run(run_summary: Dict[str, Any]) -> bool:
    """True when the run's Pusher executed and published a version (not reused from cache:
    a cached Pusher reports the version an earlier run published)."""
    states = {c["component"]: c["state"] for c in run_summary.get("components", [])}
    return _pushed(run_summary) and states.get("Pusher") == "COMPLETE"


def write(data: Dict[str, Any]) -> Optional[str]:
    """Writes the card of the version the run pushed; returns its path (None: nothing pushed).

    A Pusher reused from cache means the same model and blessing as the run that pushed it: its
    card is written only if missing (e.g. that run was not started from this command line).
    Local files are written to a temporary name and renamed, so a reader never sees half a card.
    """
    if not _pushed(data["summary"]):
        return None
    push = data["summary"]["push"]
    path = card_path(str(push["destination"]), push["version"])
    remote = "://" in path
    if remote:
        import tensorflow as tf

        exists = tf.io.gfile.exists(path)
    else:
        exists = os.path.exists(path)
    if exists and not pushed_by_this_run(data["summary"]):
        return path
    text = render(data)
    if remote:
        tf.io.gfile.makedirs(posixpath.dirname(path))
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(partial, path)
    return path
