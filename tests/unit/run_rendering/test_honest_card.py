"""Issue 24, item 1: the model card states what ran, not what was configured. Each test builds
a run record by hand (run_reading.record dataclasses) as the reader would from a run that went
that way, and checks the card's Markdown (as a browser shows it) and its JSON twin."""
import dataclasses
import json
import re
from html.parser import HTMLParser

import markdown

from inception_retrain.run_reading import reader
from inception_retrain.run_reading.record import (
    DataSection,
    EvaluationSection,
    Phase,
    PushSection,
    RunInfo,
    RunRecord,
    TrainingSection,
)
from inception_retrain.run_rendering import card_json, model_card
from inception_retrain.serving import versions

VERSIONS = {"package": "0.1.0", "commit": "abc123"}
UNAVAILABLE = ("RANDOM INITIALISATION: ImageNet weights could not be downloaded (URL fetch "
               "failure on https://storage.googleapis.com/x/inception_v3_notop.h5: None -- "
               "[Errno -3] Temporary failure in name resolution); accuracy will be far below a "
               "real transfer-learning run")   # what components/trainer/model.py records
STARTED, PUSHED = "2026-01-01T10:00:00", "2026-03-04T05:06:07+00:00"


def _phases(phase2="ran"):
    one = Phase("phase1", epochs_run=3, history={"val_loss": [0.9, 0.7, 0.6]})
    if phase2 == "skipped":
        return one, Phase("phase2", skipped="phase2_epochs or unfreeze_blocks is 0")
    kept = ("phase 2's best val_loss 0.7000 did not beat phase 1's 0.6000; the phase-1 model "
            "is exported") if phase2 == "discarded" else ""
    return one, Phase("phase2", epochs_run=2, history={"val_loss": [0.8, 0.7]},
                      kept_phase1_weights=kept)


def _record(requested="imagenet", used="ImageNet (Keras cache /root/.keras/models/w.h5)",
            random=False, phase2="ran", pushed_at=PUSHED, **config):
    config = dict({"base_weights": requested, "phase1_epochs": 3,
                   "phase2_epochs": 0 if phase2 == "skipped" else 2, "unfreeze_blocks": 2,
                   "image_size": 299, "seed": 7}, **config)
    training = TrainingSection(report={}, base_weights=used, base_weights_random=random,
                               class_names=["daisy", "roses"], strategy=None, config=config,
                               phases=_phases(phase2), code_version=VERSIONS)
    evaluation = EvaluationSection(
        metrics={"sparse_categorical_accuracy": 0.75, "example_count": 40.0},
        per_class={"daisy": {"top1_precision": 0.7, "top1_recall": 0.8}}, baseline=None,
        blessed=True, failures=[], validation_ok=True)
    return RunRecord(
        pipeline="flowers", run=RunInfo(run_id="r1", data_root="/data", started=STARTED),
        data=DataSection(class_counts={"train": {"daisy": 40, "roses": 35},
                                       "eval": {"daisy": 20, "roses": 20}}),
        training=training, evaluation=evaluation,
        push=PushSection(pushed=True, destination="/serve/flowers/7", version=7,
                         by_this_run=True, pushed_at=pushed_at))


class _Text(HTMLParser):
    """The card as a reader sees it: each paragraph, list item and table row (its cells joined
    by " | ") as one line."""

    def __init__(self):
        super().__init__()
        self.lines, self._parts, self._cells = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._cells = []
        elif tag in ("td", "th"):
            self._parts = []

    def handle_endtag(self, tag):
        text = "".join(self._parts).strip()
        if tag in ("td", "th"):
            self._cells.append(text)
        elif tag == "tr":
            self.lines.append(" | ".join(self._cells))
        elif tag in ("p", "li", "h1", "h2", "h3"):
            self.lines.append(text)
        else:
            return
        self._parts = []

    def handle_data(self, data):
        self._parts.append(data)


def seen(record) -> list:
    parsed = _Text()
    parsed.feed(markdown.markdown(model_card.render(record),
                                  extensions=["tables"]))
    return parsed.lines


def _line(lines, prefix: str) -> str:
    found = [line for line in lines if line.startswith(prefix)]
    assert len(found) == 1, (prefix, lines)
    return found[0]


def _json(record) -> dict:
    return card_json.to_model_card_json(record)


def test_random_init_after_imagenet_was_requested_is_never_called_imagenet():
    record = _record(used=UNAVAILABLE, random=True)
    lines = seen(record)
    used = _line(lines, "Base weights used:")
    assert used.startswith("Base weights used: random initialisation (ImageNet weights "
                           "unavailable: ") and "Temporary failure in name resolution" in used
    assert used.endswith("(requested: imagenet).")
    row = _line(lines, "base_weights |")
    assert row.startswith("base_weights | requested imagenet; used: random initialisation "
                          "(ImageNet weights unavailable: ") and len(row) < 160, row
    assert any(line.startswith("The base network started from random weights") for line in lines)
    documentation = _json(record)["model_details"]["documentation"]
    assert "Base weights used: random initialisation (ImageNet weights unavailable:" in \
        documentation
    for text in lines + documentation.splitlines():
        assert not re.search(r"weights used: imagenet|^base_weights \| imagenet$", text, re.I)


def test_imagenet_weights_used_are_stated_without_a_requested_value():
    lines = seen(_record())
    assert _line(lines, "Base weights used:") == (
        "Base weights used: ImageNet (Keras cache /root/.keras/models/w.h5).")
    assert _line(lines, "base_weights |") == "base_weights | imagenet"
    assert not any("random" in line for line in lines)


def test_random_init_as_configured_is_not_a_difference():
    lines = seen(_record(requested="none", used="random initialisation (base_weights=none)",
                         random=True))
    assert _line(lines, "Base weights used:") == (
        "Base weights used: random initialisation (as configured).")
    assert _line(lines, "base_weights |") == "base_weights | none"


def test_phase_two_skipped_makes_no_fine_tuning_claim():
    record = _record(phase2="skipped", unfreeze_blocks=2)
    lines = seen(record)
    model = _line(lines, "InceptionV3")
    assert "phase 2 (fine-tuning) did not run: phase2_epochs or unfreeze_blocks is 0" in model
    for text in lines + [_json(record)["model_details"]["overview"]]:
        assert "inception block" not in text and "fine-tuned" not in text, text
    assert _line(lines, "unfreeze_blocks |") == (
        "unfreeze_blocks | requested 2; phase 2 did not run")
    assert _line(lines, "phase2:") == (
        "phase2: did not run (phase2_epochs or unfreeze_blocks is 0).")


def test_phase_two_discarded_says_the_phase_one_weights_were_kept():
    record = _record(phase2="discarded")
    model = _line(seen(record), "InceptionV3")
    assert "the top 2 inception block(s) fine-tuned (phase 2, 2 epoch(s))" in model
    assert model.endswith("so its weights were discarded and the phase-1 weights were kept "
                          "(the served model is the phase-1 model). Image size 299 px.")
    assert ", then the top" not in model
    assert "phase-1 weights were kept" in _json(record)["model_details"]["overview"]
    assert "weights discarded, phase-1 weights kept" in _line(seen(record), "phase2:")


def test_phase_two_that_ran_and_was_kept_is_stated_as_fine_tuning():
    model = _line(seen(_record()), "InceptionV3")
    assert model == ("InceptionV3 with a new classification head trained on the frozen "
                     "network (phase 1, 3 epoch(s)), then the top 2 inception block(s) "
                     "fine-tuned (phase 2, 2 epoch(s)). Image size 299 px.")


def test_early_stopping_shows_requested_and_run_epochs():
    record = _record(phase1_epochs=10)
    assert _line(seen(record), "phase1_epochs |") == (
        "phase1_epochs | requested 10; ran 3 of 10 epoch(s), stopped early (no val_loss gain)")


def test_the_push_time_is_the_publish_time_not_the_run_start():
    record = _record()
    pushed = _line(seen(record), "Version 7, pushed")
    assert pushed == f"Version 7, pushed {PUSHED}." and STARTED not in pushed
    assert _json(record)["model_details"]["version"]["date"] == "2026-03-04"
    unknown = _record(pushed_at=None)
    assert _line(seen(unknown), "Version 7, pushed") == (
        "Version 7, pushed at a time not recorded (no push record under the destination).")
    assert "date" not in _json(unknown)["model_details"]["version"]


def test_the_push_time_is_read_from_the_versions_push_record(tmp_path):
    """The reader takes pushed_at from serving.versions' per-version record."""
    model = tmp_path / "model"
    model.mkdir()
    (model / versions.SAVED_MODEL_FILE).write_bytes(b"graph")
    published = versions.publish(str(model), str(tmp_path / "flowers"), keep=2)
    recorded = versions.read_push_record(str(tmp_path / "flowers"), published.version)
    assert reader.published_at(published.path, published.version) == \
        recorded["published_at"]
    assert reader.published_at(str(tmp_path / "flowers" / "9"), 9) is None


def test_data_counts_per_split_and_class_are_in_both_forms():
    record = _record()
    lines = seen(record)
    assert "daisy | 40 | 20" in lines and "roses | 35 | 20" in lines
    data = _json(record)["model_parameters"]["data"]
    assert data == [{"name": "train split", "description": "75 images (daisy 40, roses 35)."},
                    {"name": "eval split", "description": "40 images (daisy 20, roses 20)."}]


EVIDENCE = {
    "split": "eval", "examples": 40, "grouped": True, "groups": 12,
    "evidence": {"enough": False, "problems": [
        "not enough evidence: class roses has 2 eval slides (minimum 3)"]},
    "candidate": {"accuracy": 0.75, "group_level": {
        "aggregation": "mean", "groups": 12, "accuracy": 0.8333,
        "accuracy_interval": [0.6, 0.95]}},
    "comparison": {"baseline": "served version 6", "level": 0.05,
                   "method": "paired bootstrap over 12 slides (2000 resamples)",
                   "overall": {"candidate": 0.75, "baseline": 0.7, "difference": 0.05,
                               "interval": [-0.1, 0.2], "p_value": 0.62, "examples": 40,
                               "groups": 12, "verdict": "no significant change"}}}


def test_the_evaluators_evidence_is_shown_when_the_record_has_it():
    record = dataclasses.replace(_record(), evaluation=dataclasses.replace(
        _record().evaluation, evidence=EVIDENCE))
    lines = seen(record)
    paired = _line(lines, "Paired on the same eval images:")
    assert "difference +0.050 [-0.10, +0.20], p = 0.62 on 40 images, 12 groups: no " \
           "significant change" in paired and "served version 6" in paired
    assert _line(lines, "Per group (eval split") == (
        "Per group (eval split, mean of tile predictions): accuracy 0.8333 [0.60, 0.95] on "
        "12 groups.")
    assert "Evidence: not enough evidence: class roses has 2 eval slides (minimum 3)" in lines
    metrics = _json(record)["quantitative_analysis"]["performance_metrics"]
    assert {"type": "accuracy per group (mean)", "value": "0.833300", "slice": "eval, groups",
            "confidence_interval": {"lower_bound": "0.600000",
                                    "upper_bound": "0.950000"}} in metrics
    assert seen(_record()) == [line for line in seen(_record())
                               if not line.startswith(("Paired", "Per group", "Evidence"))]


def test_json_values_are_plain_text():
    """No Markdown escapes inside the JSON's values (the Markdown card escapes its own)."""
    record = dataclasses.replace(_record(phase2="skipped"), run=RunInfo(
        run_id="r_1", data_root="/data/a|b", started=STARTED))
    text = json.dumps(_json(record), ensure_ascii=False)
    assert "phase2_epochs or unfreeze_blocks is 0" in text and "r_1" in text
    assert "\\\\" not in text and "&#" not in text and "`" not in text


def test_the_code_line_is_what_the_trainer_recorded_not_the_checkout_rendering_it():
    """The card names the package and commit from the Trainer's report; a report without them
    is said to be without them, never filled in from the code that renders the card."""
    record = _record()
    assert _line(seen(record), "Code:") == "Code: inception-retrain 0.1.0, commit abc123."
    unrecorded = dataclasses.replace(record, training=dataclasses.replace(
        record.training, code_version={}))
    assert _line(seen(unrecorded), "Code:") == "Code: not recorded by the Trainer."
    assert "Code: not recorded by the Trainer." in _json(unrecorded)["model_details"][
        "documentation"]
