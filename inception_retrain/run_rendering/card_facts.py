"""The model card's statements, derived only from the run record (what ran, not what was
configured): base weights used, phases run, push time, data, settings, changes and limits.

Each statement is built with a Style: PLAIN for the card's JSON (plain text), or the Markdown
card's escaping (run_rendering.model_card.MARKDOWN), so both forms say the same thing.
"""
import dataclasses
import math
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from inception_retrain.run_reading import history
from inception_retrain.run_reading.history import wilson_interval
from inception_retrain.run_reading.record import (
    DataSection,
    Phase,
    RunRecord,
    TrainingSection,
)
from inception_retrain.run_rendering import evidence_view, split_sites

SHORT = 60   # characters of a value in the settings table


def _plain(value: Any) -> str:
    return " ".join(str(value).splitlines())


@dataclasses.dataclass(frozen=True)
class Style:
    """How a statement shows user-supplied text (text) and literal values (code)."""

    text: Callable[[Any], str]
    code: Callable[[Any], str]


PLAIN = Style(_plain, _plain)


def short(value: Any, limit: int = SHORT) -> str:
    text = _plain(value)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def weights_used(training: TrainingSection) -> str:
    """The base weights the trainer used, short: ImageNet, a file, or random initialisation
    (with why, when ImageNet was requested and unavailable)."""
    requested = training.config.get("base_weights")
    if not training.base_weights_random:
        return short(training.base_weights, 2 * SHORT)
    if requested in (None, "none"):
        return "random initialisation (as configured)"
    found = re.search(r"\((.*)\)", training.base_weights)  # the trainer's "(<error>)"
    error = (found.group(1) if found else training.base_weights).split(" -- ")[-1]
    reason = short(re.sub(r"\s*\bon \S+://\S+|\S+://\S+", "", error), 80)  # no URLs
    if requested == "imagenet":
        return f"random initialisation (ImageNet weights unavailable: {reason})"
    return f"random initialisation ({reason})"


def weights_differ(training: TrainingSection) -> bool:
    """Random initialisation although other weights were requested."""
    return training.base_weights_random and training.config.get("base_weights") not in (
        None, "none")


def phase(training: Optional[TrainingSection], name: str) -> Optional[Phase]:
    return next((p for p in training.phases if p.name == name), None) if training else None


def _last_epoch(training: TrainingSection, ran: Phase) -> Tuple[Any, Any]:
    """(the phase's last epoch, its configured epochs); a resumed phase starts later."""
    last = ran.epochs_run
    first = (training.report.get(ran.name) or {}).get("first_epoch")
    if isinstance(first, int) and isinstance(last, int):
        last = first - 1 + last
    return last, training.config.get(f"{ran.name}_epochs")


def _stopped_early(training: TrainingSection, ran: Phase) -> bool:
    last, configured = _last_epoch(training, ran)
    return isinstance(last, int) and isinstance(configured, int) and last < configured


def _epochs(training: TrainingSection, ran: Phase) -> str:
    last, configured = _last_epoch(training, ran)
    if _stopped_early(training, ran):
        return f"{last} of {configured} epoch(s), stopped early (no val_loss gain)"
    return f"{last} epoch(s)"


def model_summary(training: Optional[TrainingSection], style: Style = PLAIN) -> str:
    """How the served model was trained: the phases that ran, and which weights were kept."""
    if training is None:
        return "InceptionV3 with a new classification head (the trainer's report was not read)."
    one, two = phase(training, "phase1"), phase(training, "phase2")
    out = "InceptionV3 with a new classification head trained on the frozen network"
    if one is not None and one.skipped is None:
        out += f" (phase 1, {_epochs(training, one)})"
    blocks = style.text(training.config.get("unfreeze_blocks", "?"))
    if two is None:
        return out + "; no phase 2 in the trainer's report."
    if two.skipped is not None:
        return out + f"; phase 2 (fine-tuning) did not run: {style.text(two.skipped)}."
    tuned = f"the top {blocks} inception block(s) fine-tuned (phase 2, {_epochs(training, two)})"
    if two.kept_phase1_weights:
        return (out + f"; {tuned}, but phase 2 did not beat phase 1's val_loss, so its weights "
                "were discarded and the phase-1 weights were kept (the served model is the "
                "phase-1 model).")
    return out + f", then {tuned}."


def phase_lines(training: Optional[TrainingSection], style: Style = PLAIN) -> List[str]:
    lines = []
    for ran in training.phases if training else ():
        if ran.skipped is not None:
            lines.append(f"{style.text(ran.name)}: did not run ({style.text(ran.skipped)}).")
            continue
        best = ran.best_val_loss
        line = (f"{style.text(ran.name)}: {_epochs(training, ran)}, best val_loss "
                + (f"{best:.4f}" if best is not None and math.isfinite(best) else "–"))
        if ran.kept_phase1_weights:
            line += (f"; weights discarded, phase-1 weights kept "
                     f"({style.text(ran.kept_phase1_weights)})")
        lines.append(line + ".")
    return lines


def settings_rows(training: Optional[TrainingSection],
                  style: Style = PLAIN) -> List[Tuple[str, str]]:
    """(setting, value) of the trainer's configuration; where what ran differs from what was
    requested, both."""
    if training is None:
        return []
    two = phase(training, "phase2")
    skipped = two is not None and two.skipped is not None
    rows = []
    for key, value in sorted(training.config.items()):
        shown = style.code(short(value))
        ran = phase(training, key[:-len("_epochs")]) if key.endswith("_epochs") else None
        if key == "base_weights" and weights_differ(training):
            shown = f"requested {shown}; used: {style.text(weights_used(training))}"
        elif key in ("phase2_epochs", "unfreeze_blocks") and skipped and value:
            shown = f"requested {shown}; phase 2 did not run"
        elif ran is not None and ran.skipped is None and _stopped_early(training, ran):
            shown = f"requested {shown}; ran {style.text(_epochs(training, ran))}"
        rows.append((key, shown))
    return rows


def pushed_at(record: RunRecord) -> str:
    """When the version was published (its push record), never the run's start."""
    return (record.push.pushed_at if record.push and record.push.pushed_at
            else "at a time not recorded (no push record under the destination)")


def split_facts(record: RunRecord, style: Style = PLAIN) -> List[str]:
    """Groups (slides) and sites per split, from the DataGate's split.json when present."""
    summary = ((record.data.split if record.data else None) or {}).get("split")
    if not summary:
        return []
    lines = [f"Split by group: {summary['groups']} groups (slides) in all; every image of a "
             "group is in one split." if summary["grouped"] else
             "Split per image (no group key): tiles of one slide may be in several splits."]
    for name, facts in summary["splits"].items():
        sites = ", ".join(f"{style.text(s)} {n}" for s, n in (facts.get("sites") or {}).items())
        lines.append(f"{style.text(name)}: {facts['images']} images"
                     + (f", {facts['groups']} groups" if summary["grouped"] else "")
                     + (f"; images per site: {sites}" if sites else "") + ".")
    return lines


def limits(record: RunRecord, style: Style = PLAIN) -> List[str]:
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
        found.append("Classes with fewer than 30 training images: "
                     f"{', '.join(map(style.text, few))}.")
    missing = sorted(name for name in train if not evaluation.get(name))
    if missing:
        found.append(f"Classes absent from the eval split (no measured accuracy for them): "
                     f"{', '.join(map(style.text, missing))}.")
    if train and min(train.values()) > 0 and max(train.values()) / min(train.values()) >= 3:
        found.append(f"The training classes are imbalanced (largest / smallest = "
                     f"{max(train.values()) / min(train.values()):.1f}).")
    found += [f"Data warning: {style.text(warning)}" for warning in data.warnings or []]
    found += split_sites.card_limits(record, style.text)
    found += [f"Evidence: {style.text(problem)}" for problem in _evidence_problems(record)]
    found.append("Every image is assigned one of the known classes, including images of none "
                 "of them; use the score and review low-confidence predictions.")
    found.append("Metrics come from images of the same source as the training images; they "
                 "say nothing about other scanners, cameras, stains or sites.")
    return found


def _evidence_problems(record: RunRecord) -> List[str]:
    found = []
    for section in (record.evaluation, record.test_split):
        evidence = ((section.evidence if section else None) or {}).get("evidence") or {}
        found += [p for p in evidence.get("problems") or [] if p not in found]
    return found


def evidence_lines(evidence: Optional[Dict[str, Any]], style: Style = PLAIN) -> List[str]:
    """The Evaluator's evidence record of one split (when present): the paired comparison
    with the served model and the group-level accuracy."""
    if not evidence:
        return []
    split, out = style.text(evidence.get("split", "eval")), []
    if evidence.get("comparison"):
        out.append(f"Paired on the same {split} images: "
                   + style.text(evidence_view.comparison_sentence(evidence["comparison"])) + ".")
    group = (evidence.get("candidate") or {}).get("group_level")
    if group and group.get("accuracy") is not None:
        out.append(f"Per group ({split} split, {style.text(group.get('aggregation'))} of tile "
                   f"predictions): accuracy {group['accuracy']:.4f} "
                   f"{evidence_view.interval_text(group.get('accuracy_interval'))} on "
                   f"{group.get('groups')} groups.")
    return out


def changes(record: RunRecord, previous, style: Style = PLAIN) -> List[str]:
    """What differs from the version this one replaces (previous: its history.RunEntry)."""
    if previous is None:
        return ["First version: no earlier version was pushed from this work dir."]

    text, code = style.text, style.code
    current = history.run_entry(record)
    out = [f"Replaces version {text(previous.pushed_version)} (run {code(previous.run_id)})."]
    if current.accuracy is not None and previous.accuracy is not None:
        out.append(f"Eval accuracy {previous.accuracy:.4f} → {current.accuracy:.4f} "
                   f"({current.accuracy - previous.accuracy:+.4f}).")
    if current.examples != previous.examples:
        out.append("Examples per split: " + ", ".join(
            f"{text(split)} {previous.examples.get(split, 0)} → {current.examples.get(split, 0)}"
            for split in sorted(set(current.examples) | set(previous.examples))) + ".")
    if current.data_root != previous.data_root:
        out.append(f"Data root: {code(previous.data_root)} → {code(current.data_root)}.")
    if current.base_weights != previous.base_weights:
        out.append(f"Base weights: {text(short(previous.base_weights, 2 * SHORT))} → "
                   f"{text(short(current.base_weights, 2 * SHORT))}.")
    config, before = current.training_config, previous.training_config
    changed = sorted(k for k in set(config) | set(before) if config.get(k) != before.get(k))
    out += [f"training.{text(k)}: {code(short(before.get(k)))} → {code(short(config.get(k)))}."
            for k in changed]
    if len(out) == 1:
        out.append("Same data, base weights and training settings; retrained.")
    return out


def accuracy(metrics: Dict[str, float]) -> Optional[Tuple[float, int, float, float]]:
    """(accuracy, examples, 95% low, high) of a split's metrics, or None."""
    value, count = metrics.get("sparse_categorical_accuracy"), metrics.get("example_count")
    if value is None or not count or not math.isfinite(value):
        return None
    low, high = wilson_interval(value * count, count)
    return value, int(count), low, high


def code_version(record) -> Optional[Tuple[str, str]]:
    """(package version or "?", commit or "unknown") of the code that trained the model, as the
    Trainer recorded it; None when its report predates the record."""
    recorded = record.training.code_version if record.training else {}
    if not recorded:
        return None
    return recorded.get("package") or "?", recorded.get("commit") or "unknown"
