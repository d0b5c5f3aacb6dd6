"""Issue 16, items 3-6 without a pipeline: the history's entries and plot, the side-by-side
comparison, the mended report parts and the model card's user fields, on synthetic records."""
import dataclasses
import json
import re

import markdown
import pytest

from inception_retrain.pipeline import config as config_lib
from inception_retrain.run_reading import history, misclassified
from inception_retrain.run_reading.record import (
    DataSection,
    EvaluationSection,
    PushSection,
    RunInfo,
    RunRecord,
    TrainingSection,
)
from inception_retrain.run_rendering import (
    card_json,
    charts,
    compare,
    history_view,
    model_card,
    page_blocks,
)
from inception_retrain.serving import versions

CLASSES = ["roses", "daisy", "dandelion"]   # the model's vocabulary order (not sorted)


def _evaluation(accuracy=0.75, blessed=True, baseline=True, failures=()):
    per_class = {"daisy": {"top1_precision": 0.5, "top1_recall": 1.0},
                 "dandelion": {"top1_precision": 1.0, "top1_recall": 0.5},
                 "roses": {"top1_precision": float("nan"), "top1_recall": 0.0}}
    metrics = {"sparse_categorical_accuracy": accuracy, "example_count": 8.0,
               "sparse_top_k_categorical_accuracy": 1.0}
    if baseline:
        metrics["sparse_categorical_accuracy [baseline]"] = 0.5
        for name, values in per_class.items():
            values["top1_recall [baseline]"] = 0.25
            values["top1_recall (change vs baseline)"] = values["top1_recall"] - 0.25
            values["top1_precision [baseline]"] = 0.5
    matrix = {"classes": CLASSES, "counts": [[0, 1, 0], [0, 2, 0], [0, 1, 4]],
              "no_prediction": [0, 0, 0]}
    checks = [{"metric": "top1_recall", "class": name, "kind": "change",
               "condition": "change vs baseline >= -0.1", "value": 0.1, "passed": True}
              for name in CLASSES]
    return EvaluationSection(
        metrics=metrics, per_class=per_class,
        baseline={"source": "served", "version": 1, "path": "/s/1"} if baseline else
        {"source": "none", "note": "nothing served"},
        blessed=blessed, failures=list(failures), validation_ok=blessed, class_names=CLASSES,
        checks=checks, confusion_matrix=matrix,
        baseline_confusion_matrix=dict(matrix, counts=[[1, 0, 0], [1, 1, 0], [0, 0, 5]])
        if baseline else None, top_k=5)


def _record(run_id="r2", version=2, seed=7, **evaluation):
    data = DataSection(class_counts={"train": {"daisy": 7, "dandelion": 6, "roses": 8},
                                     "eval": {"daisy": 2, "dandelion": 4, "roses": 2}})
    training = TrainingSection(report={}, base_weights="none", base_weights_random=True,
                               class_names=CLASSES, strategy=None,
                               config={"seed": seed, "batch_size": 8}, phases=())
    return RunRecord(pipeline="p", run=RunInfo(run_id=run_id, data_root="/data",
                                               started="2026-12-01T10:00:00"),
                     data=data, training=training, evaluation=_evaluation(**evaluation),
                     push=PushSection(pushed=True, destination=f"/s/{version}", version=version,
                                      by_this_run=True))


def test_a_run_entry_has_its_accuracy_interval_and_outcome():
    entry = history.run_entry(_record())
    assert entry.accuracy == 0.75 and entry.eval_examples == 8
    low, high = history.wilson_interval(6, 8)
    assert entry.interval == (low, high) and low < 0.75 < high
    assert entry.outcome == "pushed version 2" and entry.examples == {"train": 21, "eval": 8}
    refused = history.run_entry(_record(blessed=False, failures=["acc = 0.1 fails >= 0.6"]))
    assert refused.outcome == "not blessed: acc = 0.1 fails >= 0.6"


def test_versions_carry_their_runs_metrics_and_rollbacks_their_originals(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"x")
    base = str(tmp_path / "serving" / "m")
    for _ in (1, 2):
        (model / "saved_model.pb").write_bytes(b"x" + bytes([_]))
        versions.publish(str(model), base, keep=5, source="run")
    versions.rollback(base, 1, keep=5)
    runs = [history.run_entry(_record("r1", 1, accuracy=0.6)),
            history.run_entry(_record("r2", 2, accuracy=0.8))]
    entries = history.version_entries(runs, base)
    assert [(v.version, v.run_id, v.accuracy, v.served) for v in entries] == [
        (1, "r1", 0.6, False), (2, "r2", 0.8, False), (3, "r1", 0.6, True)]
    assert entries[2].origin == "rollback to version 1"
    found = history.History(tuple(runs), entries, 3, base)
    svg = history_view.history_html(found, "r2")
    points = re.findall(r'data-version="(\d+)" data-accuracy="([0-9.]+)"', svg)
    assert points == [("1", "0.6000"), ("2", "0.8000"), ("3", "0.6000")]
    assert "(this run)" in svg and 'class="history"' in svg


def test_the_accuracy_plot_puts_each_version_at_its_accuracy():
    svg = charts.version_accuracy_svg([(2, 0.5, 0.2, 0.8), (1, 1.0, 0.6, 1.0)], served=2)
    cys = [float(y) for y in re.findall(r'<circle cx="[0-9.]+" cy="([0-9.]+)" r="4"', svg)]
    top, plot_h = 28, 230 - 28 - 44
    assert cys == [pytest.approx(top + plot_h * (1 - 1.0)), pytest.approx(top + plot_h * 0.5)]
    assert svg.count('r="8" fill="none"') == 1, "the served version is ringed"


def test_side_by_side_rows_and_section():
    evaluation = _evaluation()
    rows = compare.rows(evaluation, sorted(CLASSES))
    assert [r["class"] for r in rows] == ["daisy", "dandelion", "roses"]
    assert rows[0]["recall"] == {"candidate": 1.0, "baseline": 0.25, "change": 0.75}
    assert rows[2]["precision"]["candidate"] is None  # NaN: never predicted
    section = compare.comparison_html(evaluation, sorted(CLASSES), {"daisy": 2},
                                      lambda m: page_blocks.reorder_matrix(m, sorted(CLASSES)))
    assert section.count('<svg class="confusion"') == 2
    assert "+0.7500" in section and "recall rule" in section
    assert "sparse_top_k" not in section, "k=5 >= 3 classes: top-k hidden"
    none = compare.comparison_html(_evaluation(baseline=False), CLASSES, {})
    assert "No side-by-side comparison: nothing served." in none


def test_one_class_order_everywhere():
    record = _record()
    order = page_blocks.class_order(record)
    assert order == sorted(CLASSES)
    matrix = page_blocks.reorder_matrix(record.evaluation.confusion_matrix, order)
    assert matrix["classes"] == order
    # daisy (vocab id 1) row: [roses 0, daisy 2, dandelion 0] -> sorted [daisy, dandelion, roses]
    assert matrix["counts"][0] == [2, 0, 0]
    assert matrix["counts"][1] == [1, 4, 0]


def test_misclassified_are_balanced_across_classes_and_grouped_by_pair():
    wrong = ([{"path": f"a/{i}.jpg", "label": "a", "predicted": "b", "score": i / 100,
               "image": b""} for i in range(30)]
             + [{"path": "c/1.jpg", "label": "c", "predicted": "a", "score": 0.4, "image": b""},
                {"path": "c/2.jpg", "label": "c", "predicted": "b", "score": 0.9, "image": b""}])
    chosen = misclassified.select(wrong, 6)
    assert len(chosen) == 6
    assert sum(1 for i in chosen if i["label"] == "c") == 2, "the small class is not crowded out"
    a_scores = [i["score"] for i in chosen if i["label"] == "a"]
    assert a_scores == [0.29, 0.28, 0.27, 0.26], "most confident first"
    assert [(i["label"], i["predicted"]) for i in chosen] == [("a", "b")] * 4 + [
        ("c", "a"), ("c", "b")]


def test_the_data_report_is_html_and_no_tag_of_the_input_survives():
    text = "# Data report\n\n| class | n |\n|---|---|\n| <script>x</script> | 3 |\n\n- ok\n"
    rendered = page_blocks.markdown_html(text)
    assert "<table>" in rendered and "<h1>" in rendered and "<li>ok</li>" in rendered
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered


def test_loss_goes_to_a_log_scale_when_phase_two_spikes():
    series = {"loss": [1.2, 0.9, 0.8, 35.0], "val_loss": [0.7, 0.7, 0.7, 84.0]}
    assert charts.wide_range(series) and not charts.wide_range({"loss": [1.0, 0.5]})
    svg = charts.line_chart(series, "loss", 3, log_scale=True)
    ticks = re.findall(r'text-anchor="end">([^<]+)</text>', svg)
    assert "1" in ticks and "100" in ticks
    assert svg.count("<circle") == 8


def test_top_k_is_hidden_when_k_covers_every_class():
    metrics = {"sparse_top_k_categorical_accuracy": 1.0, "sparse_categorical_accuracy": 0.5}
    shown = page_blocks.metrics_html(metrics, {}, {}, top_k=5, num_classes=3)
    assert "sparse_top_k" not in shown and "Top-5 accuracy is not shown" in shown
    assert "sparse_top_k" in page_blocks.metrics_html(metrics, {}, {}, top_k=2, num_classes=3)


def test_model_card_user_fields_changes_and_json(tmp_path):
    settings = config_lib.ModelCardConfig(owners=("Lab <ml@lab>",), license="CC-BY-4.0",
                                          ethical_considerations=("Review *every* call.",),
                                          references=("https://lab/protocol",))
    previous = history.run_entry(_record("r1", 1, seed=42, accuracy=0.5))
    record = _record()
    record = dataclasses.replace(record, training=dataclasses.replace(
        record.training, code_version={"package": "0.1.0", "commit": "abc123"}))
    text = model_card.render(record, "/r.html", settings, previous)
    for heading in ("## Model details", "## Changes since the previous version",
                    "## Ethical considerations", "## Limits", "| training setting | value |"):
        assert heading in text
    assert "Lab &lt;ml@lab&gt;" in text and "Review \\*every\\* call." in text
    assert "Replaces version 1" in text and "training.seed: `42` → `7`." in text
    assert "Eval accuracy 0.5000 → 0.7500 (+0.2500)." in text and "`abc123`" in text
    html = markdown.markdown(text, extensions=["tables"])
    assert "<ml@lab>" not in html and "<em>" not in html
    card = card_json.to_model_card_json(record, settings, previous)
    assert card["model_details"]["owners"] == [{"name": "Lab <ml@lab>"}]
    assert card["model_details"]["version"]["name"] == "2"
    assert "Code: inception-retrain 0.1.0, commit abc123." in card["model_details"][
        "documentation"]  # the schema has no code_version key: a sentence of documentation
    json.dumps(card)
    first = model_card.render(record, None, None, None)
    assert "First version" in first and "not given (set model_card.owners)" in first


def test_the_card_is_rewritten_from_the_configuration_with_its_json_twin(tmp_path):
    record = dataclasses.replace(_record(), push=PushSection(
        pushed=True, destination=str(tmp_path / "m" / "2"), version=2, by_this_run=False))
    settings = config_lib.ModelCardConfig(owners=("A",))
    path = model_card.write(record, None, settings)
    assert path.endswith("model_cards/2.md")
    assert json.loads(open(model_card.json_path(path)).read())["model_details"]["owners"] == [
        {"name": "A"}]
    model_card.write(record, None, config_lib.ModelCardConfig(owners=("B",)))
    assert "- Owners: B." in open(path).read(), "regenerated from the config, nothing retyped"
