"""A Markdown model card for each pushed version: model, intended use, data, metrics, limits.

Written by the report step to <push_base>/model_cards/<version>.md, beside the version
directories, never inside one: a published version directory stays exactly what the
ServingPusher renamed into place (components/pusher/versions.py), and TF Serving only looks at
children whose names are integers, so `model_cards/` is invisible to it and to retention.
"""
import json
import math
import os
import posixpath
import re
import subprocess
from typing import Any, Dict, List, Optional, Tuple

from inception_retrain.run_report import split_sites
from inception_retrain.run_report.record import DataSection, RunRecord, TrainingSection

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


# Characters a Markdown renderer would act on inline (backslash-escapable ASCII punctuation that
# forms emphasis, links, code, headings); &, < and > become HTML entities, so no renderer
# (Markdown or plain HTML) sees a tag or an entity of the input's.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-!")
# | (a table cell separator; \| is an escape only where tables are enabled) and ~ (GitHub's
# strikethrough; no escapable character for Python-Markdown) as entities too: tables split
# cells at literal | only.
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", "~": "&#126;"}


def md(value: Any) -> str:
    """value as literal Markdown text, also inside a table cell: every user-supplied string of
    the card (class names, paths, config values, messages) goes through here or code()."""
    text = " ".join(str(value).splitlines())  # a line break would end a table row or a list
    return "".join(_HTML_ENTITIES.get(c) or (f"\\{c}" if c in _MARKDOWN_SPECIAL else c)
                   for c in text)


def code(value: Any) -> str:
    """value as a Markdown code span, whatever backticks it holds. Inside a span renderers show
    & < > literally (no entities) and some split a table row at |, so a value holding one of
    those, or a backslash, is escaped text (md) instead."""
    text = " ".join(str(value).splitlines())
    if any(c in text for c in "&<>|\\"):
        return md(text)
    fence = "`" * (1 + max(map(len, re.findall(r"`+", text)), default=0))
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fmt(value: Optional[float]) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4f}"


def _counts_table(data: DataSection) -> List[str]:
    splits = data.splits
    lines = ["| class | " + " | ".join(map(md, splits)) + " |",
             "|---" * (len(splits) + 1) + "|"]
    lines += [f"| {md(name)} | " + " | ".join(str(data.count(s, name)) for s in splits) + " |"
              for name in data.classes]
    lines.append("| **total** | " + " | ".join(str(data.split_total(s)) for s in splits)
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


def limits(record: RunRecord) -> List[str]:
    """What a reader must know before trusting the numbers, derived from the run itself."""
    found = []
    if record.training and record.training.base_weights_random:
        found.append("The base network started from random weights, not ImageNet: accuracy is "
                     "far below what transfer learning reaches on the same data.")
    metrics = record.evaluation.metrics if record.evaluation else {}
    count = metrics.get("example_count") or 0
    if count and count < 200:
        low, high = wilson_interval(metrics.get("sparse_categorical_accuracy", 0) * count, count)
        found.append(f"Only {int(count)} eval images: the accuracy could plausibly be anywhere "
                     f"from {low:.2f} to {high:.2f}.")
    data = record.data or DataSection()
    counts = data.class_counts or {}
    train, evaluation = counts.get("train", {}), counts.get("eval", {})
    few = sorted(name for name, n in train.items() if n < 30)
    if few:
        found.append(f"Classes with fewer than 30 training images: {', '.join(map(md, few))}.")
    missing = sorted(name for name in train if not evaluation.get(name))
    if missing:
        found.append(f"Classes absent from the eval split (no measured accuracy for them): "
                     f"{', '.join(map(md, missing))}.")
    if train and min(train.values()) > 0 and max(train.values()) / min(train.values()) >= 3:
        found.append(f"The training classes are imbalanced (largest / smallest = "
                     f"{max(train.values()) / min(train.values()):.1f}).")
    for warning in data.warnings or []:
        found.append(f"Data warning: {md(warning)}")
    found += split_sites.card_limits(record)
    found.append("Every image is assigned one of the known classes, including images of none "
                 "of them; use the score and review low-confidence predictions.")
    found.append("Metrics come from images of the same source as the training images; they "
                 "say nothing about other scanners, cameras, stains or sites.")
    return found


def _metrics_lines(split: str, metrics: Dict[str, float],
                   per_class: Dict[str, Dict[str, float]]) -> List[str]:
    if not metrics:
        return []
    lines = []
    accuracy = _accuracy_line(metrics, split)
    if accuracy:
        lines.append(accuracy)
    lines += [f"- {md(name)}: {_fmt(value)}" for name, value in sorted(metrics.items())
              if name not in ("sparse_categorical_accuracy", "example_count")]
    if per_class:
        lines += ["", f"| class ({split}) | precision | recall |", "|---|---|---|"]
        lines += [f"| {md(name)} | {_fmt(values.get('top1_precision'))} | "
                  f"{_fmt(values.get('top1_recall'))} |"
                  for name, values in sorted(per_class.items())]
    return lines + [""]


def _training_lines(training: Optional[TrainingSection]) -> List[str]:
    lines = []
    for phase in training.phases if training else ():
        if phase.skipped is not None:
            lines.append(f"- {md(phase.name)}: skipped ({md(phase.skipped)}).")
        else:
            lines.append(f"- {md(phase.name)}: {md(phase.epochs_run)} epoch(s), best val_loss "
                         f"{_fmt(phase.best_val_loss)}"
                         + (f"; {md(phase.kept_phase1_weights)}" if phase.kept_phase1_weights
                            else "") + ".")
    return lines


def code_version() -> Dict[str, str]:
    """This package's version and the git commit of its checkout (with "-dirty" when files
    differ from it), "" where unknown (an installed copy without .git)."""
    from importlib import metadata

    try:
        package = metadata.version("inception-retrain")
    except metadata.PackageNotFoundError:
        package = ""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = ""
    try:
        commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        if commit and subprocess.run(["git", "-C", repo, "status", "--porcelain",
                                      "--untracked-files=no"], capture_output=True, text=True,
                                     timeout=10).stdout.strip():
            commit += "-dirty"
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"package": package, "commit": commit}


def changes(record: RunRecord, previous) -> List[str]:
    """What differs from the version this one replaces (previous: its history.RunEntry)."""
    if previous is None:
        return ["First version: no earlier version was pushed from this work dir."]
    from inception_retrain.run_report import history

    current = history.run_entry(record)
    out = [f"Replaces version {md(previous.pushed_version)} (run {code(previous.run_id)})."]
    if current.accuracy is not None and previous.accuracy is not None:
        out.append(f"Eval accuracy {previous.accuracy:.4f} → {current.accuracy:.4f} "
                   f"({current.accuracy - previous.accuracy:+.4f}).")
    if current.examples != previous.examples:
        out.append("Examples per split: " + ", ".join(
            f"{md(split)} {previous.examples.get(split, 0)} → {current.examples.get(split, 0)}"
            for split in sorted(set(current.examples) | set(previous.examples))) + ".")
    if current.data_root != previous.data_root:
        out.append(f"Data root: {code(previous.data_root)} → {code(current.data_root)}.")
    if current.base_weights != previous.base_weights:
        out.append(f"Base weights: {md(previous.base_weights)} → {md(current.base_weights)}.")
    config, before = current.training_config, previous.training_config
    changed = sorted(k for k in set(config) | set(before) if config.get(k) != before.get(k))
    out += [f"training.{md(k)}: {code(before.get(k))} → {code(config.get(k))}." for k in changed]
    if len(out) == 1:
        out.append("Same data, base weights and training settings; retrained.")
    return out


def _settings_lines(config: Dict[str, Any]) -> List[str]:
    if not config:
        return []
    return (["", "| training setting | value |", "|---|---|"]
            + [f"| {md(key)} | {code(value)} |" for key, value in sorted(config.items())])


def render(record: RunRecord, report_html: Optional[str] = None, settings=None,
           previous=None, versions: Optional[Dict[str, str]] = None) -> str:
    """The card's Markdown text for the version the run pushed; report_html: the full
    report's path; settings: the configuration's model_card section (what only the user
    knows); previous: the history.RunEntry of the version it replaces."""
    return "\n".join(_render_lines(record, report_html, settings, previous,
                                   versions if versions is not None else code_version()))


def _render_lines(record, report_html, settings, previous, versions) -> List[str]:
    run, push, training = record.run, record.push, record.training
    data = record.data or DataSection()
    classes = (training.class_names if training else None) or data.classes
    config = training.config if training else {}
    lines = [f"# Model card: version {md(push.version)}", "",
             f"Pipeline {code(record.pipeline)}, run {code(run.run_id)} "
             f"(started {md(run.started)}). Full report: {code(report_html)}.", "",
             "## Model details", "",
             f"- Version {md(push.version)}, pushed {md(_pushed_date(record))}.",
             "- Owners: " + (", ".join(map(md, settings.owners)) if settings and
                             settings.owners else "not given (set model_card.owners)") + ".",
             "- License: " + (md(settings.license) if settings and settings.license
                              else "not given (set model_card.license)") + ".",
             f"- Code: inception-retrain {md(versions.get('package') or '?')}, commit "
             f"{code(versions.get('commit') or 'unknown')}."]
    lines += [f"- Reference: {md(r)}" for r in (settings.references if settings else ())]
    lines += ["", "## Changes since the previous version", ""]
    lines += [f"- {line}" for line in changes(record, previous)]
    lines += ["", "## Model", "",
             f"- InceptionV3 fine-tuned in two phases: a new head on the frozen network, then "
             f"the top {md(config.get('unfreeze_blocks', '?'))} inception blocks; image size "
             f"{md(config.get('image_size', '?'))} px.",
             f"- Base weights: {md(training.base_weights if training else 'unknown')}.",
             f"- Served from {code(push.destination)} (TF Serving model base path: the folder "
             "above it).",
             "- Input (`serving_default`): encoded image bytes (`images`; JSON `{\"b64\": ...}` "
             "over REST). Output: `scores` (one probability per class), `classes`, "
             "`predicted_class`.",
             f"- Classes ({len(classes)}): {', '.join(map(md, classes))}.", "",
             "## Intended use", "",
             f"Sorting images into exactly these {len(classes)} classes, for images that look "
             "like the training images (same kind of source, resolution and preparation). "
             "It is a decision aid: where a wrong class has consequences, a person reviews the "
             "prediction.", "",
             "## Data", ""]
    if run.data_root:
        lines += [f"Images from {code(run.data_root)}.", ""]
    if data.class_counts:
        lines += _counts_table(data) + [""]
    if data.quarantine is not None:
        lines += [f"Quarantined (unreadable or refused) files: {len(data.quarantine)}.", ""]
    lines += (["## Training", ""] + _training_lines(training) + _settings_lines(config)
              + ["", "## Metrics", ""])
    if record.evaluation:
        lines += _metrics_lines("eval", record.evaluation.metrics, record.evaluation.per_class)
    if record.test_split:
        lines += _metrics_lines("test", record.test_split.metrics, record.test_split.per_class)
    passed = [c for c in (record.evaluation.checks if record.evaluation else []) if c["passed"]]
    if passed:
        lines.append("Blessed: " + "; ".join(
            f"{md(c['metric'])}{' [' + md(c['class']) + ']' if c['class'] else ''} "
            f"{_fmt(c['value'])} ({md(c['condition'])})" for c in passed) + ".")
        lines.append("")
    lines += ["## Limits", ""] + [f"- {item}" for item in limits(record)] + [""]
    lines += ["## Ethical considerations", ""] + (
        [f"- {md(item)}" for item in settings.ethical_considerations]
        if settings and settings.ethical_considerations else
        ["- None recorded: set model_card.ethical_considerations (e.g. who may be harmed by a "
         "wrong class, and how predictions are reviewed)."]) + [""]
    return lines


def _pushed_date(record: RunRecord) -> str:
    return record.run.started or "unknown"


def to_model_card_json(record: RunRecord, settings=None, previous=None,
                       versions: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The card in the shape of Google's Model Card Toolkit schema (model_details,
    model_parameters, quantitative_analysis, considerations), the fields that apply."""
    versions = versions if versions is not None else code_version()
    push, training, evaluation = record.push, record.training, record.evaluation
    data = record.data or DataSection()
    classes = (training.class_names if training else None) or data.classes
    metrics = []
    for split, section in (("eval", evaluation), ("test", record.test_split)):
        values = section.metrics if section is not None else {}
        accuracy, count = values.get("sparse_categorical_accuracy"), values.get("example_count")
        if accuracy is not None and count:
            low, high = wilson_interval(accuracy * count, count)
            metrics.append({"type": "accuracy", "value": round(accuracy, 6), "slice": split,
                            "confidence_interval": {"lower_bound": round(low, 6),
                                                    "upper_bound": round(high, 6)}})
        for name, per in sorted((section.per_class if section is not None else {}).items()):
            for metric in ("top1_precision", "top1_recall"):
                if per.get(metric) is not None and math.isfinite(per[metric]):
                    metrics.append({"type": metric, "value": round(per[metric], 6),
                                    "slice": f"{split}, class {name}"})
    references = [{"reference": r} for r in (settings.references if settings else ())]
    return {
        "schema": "model_card_toolkit model-card 0.0.2 (the fields that apply)",
        "model_details": {
            "name": f"{record.pipeline} ({push.destination})",
            "overview": "InceptionV3 fine-tuned in two phases on labeled image folders; "
                        f"classes: {', '.join(classes)}.",
            "owners": [{"name": o} for o in (settings.owners if settings else ())],
            "version": {"name": str(push.version), "date": _pushed_date(record),
                        "diff": " ".join(changes(record, previous))},
            "licenses": ([{"custom_text": settings.license}]
                         if settings and settings.license else []),
            "references": references,
            "code_version": versions,
        },
        "model_parameters": {
            "model_architecture": "InceptionV3, new head (standardisation, dropout, dense)",
            "input_format": "serving_default: encoded image bytes (images)",
            "output_format": "scores, classes, predicted_class",
            "data": [{"name": split, "counts": dict(data.class_counts[split])}
                     for split in data.splits] if data.class_counts else [],
            "training_settings": dict(training.config) if training else {},
            "base_weights": training.base_weights if training else None,
        },
        "quantitative_analysis": {"performance_metrics": metrics},
        "considerations": {
            "use_cases": [{"description": f"Sorting images into these {len(classes)} classes, "
                                          "for images like the training images; a person "
                                          "reviews predictions where a wrong class matters."}],
            "limitations": [{"description": item} for item in limits(record)],
            "ethical_considerations": [{"name": item} for item in
                                       (settings.ethical_considerations if settings else ())],
        },
    }


def json_path(card: str) -> str:
    """<push_base>/model_cards/<version>.json beside <version>.md."""
    return card[:-len(".md")] + ".json" if card.endswith(".md") else card + ".json"


def write(record: RunRecord, report_html: Optional[str] = None, settings=None,
          history=None) -> Optional[str]:
    """Writes the card of the version the run pushed; returns its path (None: nothing pushed).

    A Pusher reused from cache means the same model and blessing as the run that pushed it: its
    card is written only if missing (e.g. that run was not started from this command line).
    Local files are written to a temporary name and renamed, so a reader never sees half a card.
    """
    if not record.published_version:
        return None
    push = record.push
    path = card_path(str(push.destination), push.version)
    remote = "://" in path
    if remote:
        import tensorflow as tf

        exists = tf.io.gfile.exists(path)
    else:
        exists = os.path.exists(path)
    if exists and not push.by_this_run and settings is None:
        return path
    from inception_retrain.run_report.history import previous_version

    previous = previous_version(history, push.version)
    versions = code_version()
    text = render(record, report_html, settings, previous, versions)
    card_json = json.dumps(to_model_card_json(record, settings, previous, versions), indent=2,
                           sort_keys=True, default=str)
    for target, content in ((path, text), (json_path(path), card_json + "\n")):
        if remote:
            tf.io.gfile.makedirs(posixpath.dirname(target))
            with tf.io.gfile.GFile(target, "w") as f:
                f.write(content)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = f"{target}.partial"
        with open(partial, "w", encoding="utf-8") as f:
            f.write(content)
        os.replace(partial, target)
    return path
