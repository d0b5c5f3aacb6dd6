"""A Markdown model card for each pushed version: model, intended use, data, metrics, limits;
every statement from the run record (run_rendering.card_facts), its JSON twin in the Model Card
Toolkit's schema (run_rendering.card_json).

Written by the report step to <push_base>/model_cards/<version>.md, beside the version
directories, never inside one: a published version directory stays exactly what the
ServingPusher renamed into place (serving/versions.py), and TF Serving only looks at
children whose names are integers, so `model_cards/` is invisible to it and to retention.
"""
import json
import math
import os
import posixpath
import re
from typing import Any, Dict, List, Optional

from inception_retrain.components import artifact_files
from inception_retrain.run_reading.record import DataSection, RunRecord
from inception_retrain.run_rendering import card_facts, card_json

CARDS_DIR = "model_cards"


def card_path(destination: str, version: Any) -> str:
    """<push_base>/model_cards/<version>.md for a version published at <push_base>/<version>."""
    join = posixpath.join if "://" in destination else os.path.join
    base = posixpath.dirname(destination.rstrip("/")) if "://" in destination else \
        os.path.dirname(destination.rstrip(os.sep))
    return join(base, CARDS_DIR, f"{version}.md")


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


MARKDOWN = card_facts.Style(md, code)


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


def _metrics_lines(split: str, section) -> List[str]:
    metrics, per_class = section.metrics, section.per_class
    lines = []
    measured = card_facts.accuracy(metrics)
    if measured is not None:
        value, count, low, high = measured
        lines.append(f"- Accuracy on the {split} split: **{value:.4f}** on {count} image(s) "
                     f"(95% interval {low:.2f} to {high:.2f}).")
    lines += [f"- {md(name)}: {_fmt(value)}" for name, value in sorted(metrics.items())
              if name not in ("sparse_categorical_accuracy", "example_count")]
    lines += [f"- {line}" for line in card_facts.evidence_lines(section.evidence, MARKDOWN)]
    if per_class:
        lines += ["", f"| class ({split}) | precision | recall |", "|---|---|---|"]
        lines += [f"| {md(name)} | {_fmt(values.get('top1_precision'))} | "
                  f"{_fmt(values.get('top1_recall'))} |"
                  for name, values in sorted(per_class.items())]
    return lines + [""] if lines else []


def limits(record: RunRecord) -> List[str]:
    """The card's limits (card_facts.limits), as Markdown."""
    return card_facts.limits(record, MARKDOWN)


def _settings_lines(training) -> List[str]:
    rows = card_facts.settings_rows(training, MARKDOWN)
    if not rows:
        return []
    return (["", "| training setting | value |", "|---|---|"]
            + [f"| {md(key)} | {value} |" for key, value in rows])


def render(record: RunRecord, report_html: Optional[str] = None, settings=None,
           previous=None) -> str:
    """The card's Markdown text for the version the run pushed; report_html: the full
    report's path; settings: the configuration's model_card section (what only the user
    knows); previous: the history.RunEntry of the version it replaces."""
    return "\n".join(_render_lines(record, report_html, settings, previous))


def _details_lines(record, report_html, settings) -> List[str]:
    run, push = record.run, record.push
    lines = [f"# Model card: version {md(push.version)}", "",
             f"Pipeline {code(record.pipeline)}, run {code(run.run_id)} "
             f"(started {md(run.started)}). Full report: {code(report_html)}.", "",
             "## Model details", "",
             f"- Version {md(push.version)}, pushed {md(card_facts.pushed_at(record))}.",
             "- Owners: " + (", ".join(map(md, settings.owners)) if settings and
                             settings.owners else "not given (set model_card.owners)") + ".",
             "- License: " + (md(settings.license) if settings and settings.license
                              else "not given (set model_card.license)") + ".",
             _code_line(record)]
    return lines + [f"- Reference: {md(r)}" for r in (settings.references if settings else ())]


def _model_lines(record) -> List[str]:
    training, push = record.training, record.push
    classes = (training.class_names if training else None) or (record.data or
                                                               DataSection()).classes
    if training is None:
        weights = "unknown (the trainer's report was not read)"
    else:
        weights = md(card_facts.weights_used(training)) + (
            f" (requested: {code(training.config.get('base_weights'))})"
            if card_facts.weights_differ(training) else "")
    size = training.config.get("image_size", "?") if training else "?"
    return ["## Model", "",
            f"- {card_facts.model_summary(training, MARKDOWN)} Image size {md(size)} px.",
            f"- Base weights used: {weights}.",
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
            "prediction.", ""]


def _data_lines(record) -> List[str]:
    data = record.data or DataSection()
    lines = ["## Data", ""]
    if record.run.data_root:
        lines += [f"Images from {code(record.run.data_root)}.", ""]
    if data.class_counts:
        lines += _counts_table(data) + [""]
    facts = card_facts.split_facts(record, MARKDOWN)
    if facts:
        lines += [f"- {line}" for line in facts] + [""]
    if data.quarantine is not None:
        lines += [f"Quarantined (unreadable or refused) files: {len(data.quarantine)}.", ""]
    return lines


def _code_line(record) -> str:
    trained_by = card_facts.code_version(record)
    if trained_by is None:
        return "- Code: not recorded by the Trainer."
    return f"- Code: inception-retrain {md(trained_by[0])}, commit {code(trained_by[1])}."


def _render_lines(record, report_html, settings, previous) -> List[str]:
    lines = _details_lines(record, report_html, settings)
    lines += ["", "## Changes since the previous version", ""]
    lines += [f"- {line}" for line in card_facts.changes(record, previous, MARKDOWN)]
    lines += [""] + _model_lines(record) + _data_lines(record)
    lines += (["## Training", ""]
              + [f"- {line}" for line in card_facts.phase_lines(record.training, MARKDOWN)]
              + _settings_lines(record.training) + ["", "## Metrics", ""])
    for split, section in (("eval", record.evaluation), ("test", record.test_split)):
        if section is not None:
            lines += _metrics_lines(split, section)
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


def json_path(card: str) -> str:
    """<push_base>/model_cards/<version>.json beside <version>.md."""
    return card[:-len(".md")] + ".json" if card.endswith(".md") else card + ".json"


def write_files(path: str, text: str, card: Dict[str, Any]) -> None:
    """Writes a card's Markdown at path and its JSON beside it. Local files are written to a
    temporary name and renamed, so a reader never sees half a card."""
    content = json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    for target, body in ((path, text), (json_path(path), content)):
        partial = target if "://" in target else f"{target}.partial"  # no rename remotely
        with artifact_files.open_text(partial, "w") as f:
            f.write(body)
        if partial != target:
            os.replace(partial, target)


def write(record: RunRecord, report_html: Optional[str] = None, settings=None,
          history=None) -> Optional[str]:
    """Writes the card of the version the run pushed; returns its path (None: nothing pushed).

    A Pusher reused from cache means the same model and blessing as the run that pushed it: its
    card is written only if missing (e.g. that run was not started from this command line).
    """
    if not record.published_version:
        return None
    push = record.push
    path = card_path(str(push.destination), push.version)
    if artifact_files.exists(path) and not push.by_this_run and settings is None:
        return path
    from inception_retrain.run_reading.history import previous_version

    previous = previous_version(history, push.version)
    write_files(path, render(record, report_html, settings, previous),
                card_json.to_model_card_json(record, settings, previous))
    return path
