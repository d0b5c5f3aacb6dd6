"""Issue 24, items 2 and 3: the card's JSON validates against the Model Card Toolkit's published
schema (vendored in run_rendering/model_card_schema/), as published and closed to the keys it
defines (what model_card_toolkit's ModelCard.from_json accepts); a rollback writes a card for
the version it creates, with the rollback's facts and the original card's, nothing new."""
import copy
import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from inception_retrain.pipeline import config as config_lib
from inception_retrain.run_reading.record import (
    DataSection,
    EvaluationSection,
    Phase,
    PushSection,
    RunInfo,
    RunRecord,
    TrainingSection,
)
from inception_retrain.run_rendering import card_json, model_card, rollback_card
from inception_retrain.serving import versions

SCHEMA = Path(model_card.__file__).parent / "model_card_schema" / "v0.0.2" / \
    "model_card.schema.json"
VERSIONS = {"package": "0.1.0", "commit": "abc123"}
HOSTILE = ["<svg onload=alert(1)>", "a|b", "*bold* _it_ `code`", "&amp; #h \\ ~~s~~"]


def _closed(schema):
    """The schema with every object that lists its properties closed to them."""
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if "properties" in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)
    close(schema)
    return schema


PUBLISHED = json.loads(SCHEMA.read_text())
VALIDATORS = [jsonschema.Draft7Validator(s, format_checker=jsonschema.Draft7Validator
                                         .FORMAT_CHECKER) for s in (PUBLISHED, _closed(PUBLISHED))]


def validate(card) -> None:
    for validator in VALIDATORS:
        errors = sorted(validator.iter_errors(card), key=str)
        assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def _record(classes=("daisy", "roses"), random=False, phase2=None, pushed_at="2026-03-04T05:06:07+00:00",
            destination="/serve/flowers/2", version=2, evidence=None):
    phases = (Phase("phase1", epochs_run=3, history={"val_loss": [0.9, 0.6, 0.7]}),
              phase2 or Phase("phase2", skipped="phase2_epochs or unfreeze_blocks is 0"))
    training = TrainingSection(
        report={}, base_weights="random initialisation (x)" if random else "ImageNet (cache)",
        base_weights_random=random, class_names=list(classes), strategy=None,
        config={"base_weights": "imagenet", "phase1_epochs": 3, "phase2_epochs": 0,
                "unfreeze_blocks": 2, "seed": 7, "augment_flip": [1, "x"]}, phases=phases,
        code_version=VERSIONS)
    evaluation = EvaluationSection(
        metrics={"sparse_categorical_accuracy": 0.75, "example_count": 8.0},
        per_class={name: {"top1_precision": 0.5, "top1_recall": float("nan")}
                   for name in classes},
        baseline=None, blessed=True, failures=[], validation_ok=True, evidence=evidence)
    return RunRecord(
        pipeline="flowers", run=RunInfo(run_id="r1", data_root="/data", started="2026-01-01"),
        data=DataSection(class_counts={"train": {c: 10 for c in classes},
                                       "eval": {c: 4 for c in classes}},
                         warnings=["class roses is rare"]),
        training=training, evaluation=evaluation,
        push=PushSection(pushed=True, destination=destination, version=version,
                         by_this_run=True, pushed_at=pushed_at))


SETTINGS = config_lib.ModelCardConfig(owners=("Lab <ml@lab>",), license="CC-BY-4.0",
                                      ethical_considerations=("Review *every* call.",),
                                      references=("https://lab.example/protocol",))
EVIDENCE = {"split": "eval", "candidate": {"group_level": {
    "aggregation": "mean", "groups": 3, "accuracy": 0.5, "accuracy_interval": [None, None]}},
    "evidence": {"problems": ["not enough evidence: class roses has 4 eval images (minimum 10)"]}}


@pytest.mark.parametrize("record, settings", [
    (_record(), None),
    (_record(random=True, pushed_at=None), SETTINGS),
    (_record(HOSTILE, phase2=Phase("phase2", epochs_run=2, history={"val_loss": [1.0]},
                                   kept_phase1_weights="phase 2 did not beat phase 1")),
     SETTINGS),
    (_record(evidence=EVIDENCE), SETTINGS),
    (dataclasses.replace(_record(), training=None, evaluation=None, data=None), None),
])
def test_the_cards_json_validates_against_the_model_card_toolkit_schema(record, settings):
    card = card_json.to_model_card_json(record, settings, None)
    validate(card)
    assert card["schema_version"] == "0.0.2"
    assert json.loads(json.dumps(card, allow_nan=False)) == card


def test_the_validators_refuse_what_the_old_card_had():
    """The checks can fail: the old card's top-level "schema" key, numeric metric values and
    nested keys of its own."""
    card = card_json.to_model_card_json(_record(), SETTINGS, None)
    for key, change in (("schema", "x"), ("quantitative_analysis", {"performance_metrics": [
            {"type": "accuracy", "value": 0.75}]})):
        with pytest.raises(AssertionError):
            validate(dict(card, **{key: change}))
    with pytest.raises(AssertionError, match="code_version"):
        validate(dict(card, model_details=dict(card["model_details"], code_version=VERSIONS)))
    with pytest.raises(AssertionError, match="date"):
        validate(dict(card, model_details=dict(card["model_details"], version={
            "name": "2", "date": "2026-03-04T05:06:07+00:00"})))


def test_json_values_keep_class_names_as_they_are():
    card = card_json.to_model_card_json(_record(HOSTILE), SETTINGS, None)
    assert card["model_details"]["overview"].endswith("Classes: " + ", ".join(HOSTILE) + ".")
    assert {"type": "top1_precision", "value": "0.500000", "slice": "eval, class a|b"} in \
        card["quantitative_analysis"]["performance_metrics"]
    assert card["considerations"]["ethical_considerations"] == [{"name": "Review *every* call."}]


def _publish(base: Path, tmp_path: Path, name: str) -> versions.Published:
    """A version of real files under base (the card reads push records, not the model)."""
    model = tmp_path / name
    (model / "variables").mkdir(parents=True)
    (model / versions.SAVED_MODEL_FILE).write_bytes(name.encode())
    return versions.publish(str(model), str(base), keep=5, source=name)


def test_a_rollback_card_states_the_rollback_and_carries_the_original_card(tmp_path):
    base = tmp_path / "flowers"
    first = _publish(base, tmp_path, "m1")
    record = _record(destination=first.path, version=1,
                     pushed_at=versions.read_push_record(str(base), 1)["published_at"])
    original = Path(model_card.write(record, None, SETTINGS))
    _publish(base, tmp_path, "m2")
    rolled = versions.rollback(str(base), 1, keep=5, reason="version 2 misses daisies")
    path = Path(rollback_card.write(str(base), rolled.version))

    assert path == base / model_card.CARDS_DIR / "3.md"
    text = path.read_text()
    assert text.startswith("# Model card: version 3 (rollback of version 1)\n")
    assert "- Version 3 is a rollback of version 1: a copy of its model, published " in text
    assert "- It replaced version 2, the version served until then." in text
    assert "- Reason: version 2 misses daisies" in text
    card = json.loads(path.with_suffix(".json").read_text())
    validate(card)
    before = json.loads(original.with_suffix(".json").read_text())
    assert card["model_details"]["version"]["name"] == "3"
    assert "Reason: version 2 misses daisies" in card["model_details"]["version"]["diff"]
    assert card["model_details"]["documentation"].endswith(
        "Carried over from the original card:\n" + before["model_details"]["documentation"])
    for key in ("quantitative_analysis", "considerations", "model_parameters"):
        assert card[key] == before[key], "the original's facts, nothing new about training"
    for line in before["model_details"]["documentation"].splitlines():
        assert model_card.md(line) in text
    assert "- accuracy (eval): 0.7500 (95% interval 0.4093 to 0.9285)" in text


def test_a_rollback_without_the_original_card_claims_nothing_about_training(tmp_path):
    base = tmp_path / "flowers"
    for name in ("m1", "m2"):
        _publish(base, tmp_path, name)
    rolled = versions.rollback(str(base), 1, keep=5)
    path = Path(rollback_card.write(str(base), rolled.version))
    text = path.read_text()
    assert "- " + model_card.md(
        "Reason: none given (inception-retrain rollback --reason TEXT records one).") in text
    assert "card was not found" in text and "nothing about the model's training" in text
    for claim in ("InceptionV3", "phase", "accuracy", "Base weights"):
        assert claim not in text
    card = json.loads(path.with_suffix(".json").read_text())
    validate(card)
    assert set(card) == {"schema_version", "model_details"}
    with pytest.raises(versions.ServingDirError, match="version 2 under .* is not a rollback"):
        rollback_card.write(str(base), 2)
