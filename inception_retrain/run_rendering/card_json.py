"""The model card as JSON in Google's Model Card Toolkit schema v0.0.2
(run_rendering/model_card_schema/, vendored): only keys that schema defines, so
model_card_toolkit's ModelCard.from_json loads it; every value plain text, no Markdown.

What the schema has no field for (base weights, phases, training settings, code version, push
time) goes into model_details.documentation as plain sentences.
"""
import math
import re
from typing import Any, Dict, List, Optional

from inception_retrain.run_reading.record import DataSection, RunRecord
from inception_retrain.run_rendering import card_facts

SCHEMA_VERSION = "0.0.2"
TOP_LEVEL = ("schema_version", "model_details", "model_parameters", "quantitative_analysis",
             "considerations")   # the schema's top-level properties (no others allowed)
INPUT_FORMAT = "serving_default: encoded image bytes (images; JSON {\"b64\": ...} over REST)"
OUTPUT_FORMAT = ("scores (one probability per class), classes, predicted_class")


def _number(value: float) -> str:
    """The schema's metric values and bounds are strings."""
    return f"{value:.6f}"


def version_date(timestamp: Optional[str]) -> Optional[str]:
    """The schema's version.date is a full date (YYYY-MM-DD); None when unknown."""
    found = re.match(r"\d{4}-\d{2}-\d{2}", timestamp or "")
    return found.group(0) if found else None


def _metrics(record: RunRecord) -> List[Dict[str, Any]]:
    out = []
    for split, section in (("eval", record.evaluation), ("test", record.test_split)):
        if section is None:
            continue
        measured = card_facts.accuracy(section.metrics)
        if measured is not None:
            value, _, low, high = measured
            out.append({"type": "accuracy", "value": _number(value), "slice": split,
                        "confidence_interval": {"lower_bound": _number(low),
                                                "upper_bound": _number(high)}})
        group = ((section.evidence or {}).get("candidate") or {}).get("group_level") or {}
        interval = group.get("accuracy_interval")
        if group.get("accuracy") is not None:
            metric = {"type": f"accuracy per group ({group.get('aggregation')})",
                      "value": _number(group["accuracy"]), "slice": f"{split}, groups"}
            if interval and None not in interval:
                metric["confidence_interval"] = {"lower_bound": _number(interval[0]),
                                                 "upper_bound": _number(interval[1])}
            out.append(metric)
        for name, per in sorted(section.per_class.items()):
            for kind in ("top1_precision", "top1_recall"):
                value = per.get(kind)
                if value is not None and math.isfinite(value):
                    out.append({"type": kind, "value": _number(value),
                                "slice": f"{split}, class {name}"})
    return out


def _datasets(record: RunRecord) -> List[Dict[str, str]]:
    data = record.data or DataSection()
    out = []
    for split in data.splits:
        counts = ", ".join(f"{name} {data.count(split, name)}" for name in data.classes)
        out.append({"name": f"{split} split",
                    "description": f"{data.split_total(split)} images ({counts})."})
    return out


def documentation(record: RunRecord) -> str:
    """What ran, in plain sentences (beyond the overview's summary): base weights, phases,
    settings, groups and sites, evidence, push, code."""
    training = record.training
    lines = []
    if training is not None:
        lines.append("Base weights used: " + card_facts.weights_used(training)
                     + (f" (requested: {training.config.get('base_weights')}); the trainer "
                        f"recorded: {training.base_weights}"
                        if card_facts.weights_differ(training) else "") + ".")
        lines += card_facts.phase_lines(training)
        lines.append("Training settings: " + "; ".join(
            f"{key} {value}" for key, value in card_facts.settings_rows(training)) + ".")
    lines += card_facts.split_facts(record)
    for section in (record.evaluation, record.test_split):
        lines += card_facts.evidence_lines(section.evidence if section else None)
    lines.append(f"Pushed {card_facts.pushed_at(record)} from run {record.run.run_id} "
                 f"(started {record.run.started or 'at an unknown time'}) of pipeline "
                 f"{record.pipeline}.")
    trained_by = card_facts.code_version(record)
    lines.append("Code: not recorded by the Trainer." if trained_by is None else
                 f"Code: inception-retrain {trained_by[0]}, commit {trained_by[1]}.")
    return "\n".join(lines)


def to_model_card_json(record: RunRecord, settings=None, previous=None) -> Dict[str, Any]:
    """The card of the version the run pushed, in the Model Card Toolkit's schema."""
    push, training = record.push, record.training
    data = record.data or DataSection()
    classes = (training.class_names if training else None) or data.classes
    version = {"name": str(push.version), "diff": " ".join(card_facts.changes(record, previous))}
    date = version_date(push.pushed_at)
    if date:
        version["date"] = date
    return {
        "schema_version": SCHEMA_VERSION,
        "model_details": {
            "name": f"{record.pipeline} ({push.destination})",
            "overview": f"{card_facts.model_summary(training)} Classes: {', '.join(classes)}.",
            "documentation": documentation(record),
            "owners": [{"name": o} for o in (settings.owners if settings else ())],
            "version": version,
            "licenses": ([{"custom_text": settings.license}]
                         if settings and settings.license else []),
            "references": [{"reference": r} for r in (settings.references if settings else ())],
            "path": str(push.destination),
        },
        "model_parameters": {
            "model_architecture": "InceptionV3, new head (standardisation, dropout, dense)",
            "input_format": INPUT_FORMAT,
            "output_format": OUTPUT_FORMAT,
            "data": _datasets(record),
        },
        "quantitative_analysis": {"performance_metrics": _metrics(record)},
        "considerations": {
            "use_cases": [{"description": f"Sorting images into these {len(classes)} classes, "
                                          "for images like the training images; a person "
                                          "reviews predictions where a wrong class matters."}],
            "limitations": [{"description": item} for item in card_facts.limits(record)],
            "ethical_considerations": [{"name": item} for item in
                                       (settings.ethical_considerations if settings else ())],
        },
    }
