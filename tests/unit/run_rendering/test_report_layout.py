"""Issue 26, the report puts the answer first: a table of contents after the verdict, the
candidate against the served model right after it, the DataGate's report collapsed without the
sections the page shows itself, long table values cut with the full text on hover, the loss
chart's log scale chosen over positive values only; and the console's plain sentence when there
was no served model. Pages rendered from records built here, the DataGate's Markdown by its own
renderer."""
import dataclasses
import html
import re

import pytest

from inception_retrain.components.data_gate import report as data_gate_report
from inception_retrain.components.evaluator import evidence_rules
from inception_retrain.run_reading import headline
from inception_retrain.run_reading.history import History
from inception_retrain.run_reading.index_contract import RunEntry
from inception_retrain.run_reading.record import (
    ComponentRun,
    DataSection,
    EvaluationSection,
    Phase,
    RunInfo,
    RunRecord,
    RunReport,
    TrainingSection,
)
from inception_retrain.run_rendering import charts, page, page_blocks, summary

COUNTS = {"train": {"a": 12, "b": 10}, "eval": {"a": 4, "b": 4}}
QUARANTINE = [{"relative_path": "a/x.txt", "category": "format", "reason": "not an image"}]
SPLIT = {"grouped": False, "groups": 0, "method": "hash of the path", "sites": {},
         "splits": {s: {"images": sum(c.values()), "groups": 0, "images_per_group": {},
                        "class_balance_distance": 0.01, "class_balance_worst": "a", "sites": {},
                        "classes": {k: {"images": n, "groups": 0} for k, n in c.items()}}
                    for s, c in COUNTS.items()}}
LEAKAGE = {"groups_in_several_splits": {}, "groups_in_several_splits_count": 0,
           "duplicates_across_splits": {}, "duplicates_across_splits_count": 0,
           "label_conflicts": {}, "label_conflicts_count": 0, "duplicates_within_class": {}}
LONG = "RuntimeError: ImageNet weights could not be downloaded (" + "proxy refused; " * 8 + ")"


def _data_report() -> str:
    """The DataGate's Markdown as its component renders it."""
    facts = {"class_counts": COUNTS, "failures": [], "warnings": [], "span": 0,
             "quarantined": 1, "skipped": 0, "class_weights": {"a": 0.9, "b": 1.1},
             "split": SPLIT, "leakage": LEAKAGE, "label_drift": None}
    return data_gate_report.render(facts, QUARANTINE, [], {"train": {"width": {
        "min": 32, "median": 40, "mean": 40.0, "max": 48}}}, {"train": {"jpeg": 22}})


def _evaluation():
    per_class = {name: {"top1_precision": 0.8, "top1_recall": 0.75,
                        "top1_precision [baseline]": 0.6, "top1_recall [baseline]": 0.5}
                 for name in ("a", "b")}
    return headline.with_headline(EvaluationSection(
        metrics={"sparse_categorical_accuracy": 0.75, "example_count": 8.0,
                 "sparse_categorical_accuracy [baseline]": 0.5},
        per_class=per_class, baseline={"source": "served", "version": 1, "path": "/s/1"},
        blessed=True, failures=[], validation_ok=True, class_names=["a", "b"]))


def _record(data=None, training=None, components=()):
    data = data if data is not None else DataSection(
        class_counts=COUNTS, quarantine=QUARANTINE, anomalies=[], report_path="/r/data_report.md",
        report_text=_data_report(), split={"split": SPLIT, "leakage": LEAKAGE})
    return RunRecord(pipeline="p", run=RunInfo(run_id="r1", started="2026-12-07T10:00:00"),
                     components=components, data=data, training=training,
                     evaluation=_evaluation())


def _page(record, history=None) -> str:
    return page.render_html(RunReport(record, "now", "m.sqlite", "root", status="good",
                                      verdict="Blessed and pushed as version 2",
                                      history=history))


def _titles(text):
    """The page's own section headings (not those of the embedded DataGate report)."""
    return re.findall(r"<h2[^>]*>([^<]+)</h2>", re.sub(r'<div class="md">.*?</div>', "", text,
                                                         flags=re.S))


def test_the_contents_follow_the_verdict_and_link_every_section():
    text = _page(_record())
    nav = text.split('<nav class="toc" id="contents">', 1)[1].split("</nav>", 1)[0]
    anchors = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', nav)
    titles = _titles(text)
    assert len(titles) >= 8
    assert [title for _, title in anchors] == titles, "one link per section, in page order"
    for anchor, title in anchors:
        target = text.index(f'id="{anchor}"')
        assert target < text.index(f">{title}</h2>") < target + 200, (anchor, title)
    assert text.index('id="verdict"') < text.index('id="contents"') < text.index("<h2")


def test_the_candidate_against_the_served_model_comes_first():
    titles = _titles(_page(_record()))
    assert titles[0] == "Candidate against the served model"
    assert titles.index("Evaluation (eval split)") > titles.index("Components")


def test_the_data_report_is_collapsed_without_the_sections_the_page_has():
    text = _page(_record())
    details = text.split("<details><summary>The DataGate's data report", 1)[1].split(
        "</details>", 1)[0]
    assert "<details open" not in text
    headings = re.findall(r"<h2>([^<]+)</h2>", details)
    assert headings == ["Label drift", "Image sizes (pixels, as stored)", "Source formats"]
    assert "Verdict: passed" in details, "what the page has not is kept"
    assert ("Left out here, shown above: Examples per class and split, Split, Leakage checks, "
            "Quarantined files, Schema anomalies.") in details


def test_the_data_report_keeps_what_the_page_does_not_show():
    """A run whose statistics and split were not read: the page has no counts or split, so
    the DataGate's own are the only ones and stay."""
    data = DataSection(report_path="/r/data_report.md", report_text=_data_report())
    kept, left_out = page_blocks.data_report_parts(data)
    assert left_out == []
    assert "## Examples per class and split" in kept and "## Split" in kept
    assert "## Quarantined files (1)" in kept


def test_long_table_values_are_cut_with_the_full_text_on_hover():
    cell = page_blocks.text_cell(LONG)
    assert cell == (f'<td title="{html.escape(LONG)}">'
                    f"{html.escape(LONG[:page_blocks.CELL_LIMIT - 1].rstrip())}…</td>")
    assert page_blocks.text_cell("short") == "<td>short</td>"
    entry = RunEntry(run_id="r0", started="2026-12-06", data_root="/d", span=None, examples={},
                     base_weights=LONG, accuracy=0.5, eval_examples=8, interval=(0.2, 0.8),
                     blessed=True, why="", pushed_version=1, reused=False, pipeline="p")
    record = _record(data=DataSection(quarantine=[dict(QUARANTINE[0], reason=LONG)]),
                     components=(ComponentRun("Trainer", "FAILED", 1.0, error=LONG),))
    text = _page(record, History((entry,), (), None, "/s"))
    assert text.count(f'title="{html.escape(LONG)}"') == 3, "components, quarantine, history"
    assert f">{html.escape(LONG)}<" not in text, "never shown in full in a cell"


def _training(val_loss):
    return TrainingSection(report={}, base_weights="imagenet", base_weights_random=False,
                           class_names=["a", "b"], strategy=None, config={}, phases=(
                               Phase("phase1", epochs_run=2, seconds=1.0, history={
                                   "loss": [1.2, 0.9], "val_loss": val_loss[:2]}),
                               Phase("phase2", epochs_run=2, seconds=1.0, history={
                                   "loss": [0.8, 35.0], "val_loss": val_loss[2:]})))


@pytest.mark.parametrize("odd", [0.0, float("nan"), float("inf"), -1.0])
def test_the_log_scale_is_chosen_over_positive_values_only(odd):
    series = {"loss": [1.2, 0.9, 0.8, 35.0], "val_loss": [0.7, odd, 0.7, 84.0]}
    assert charts.wide_range(series), "a spike over 20x the positive minimum"
    assert not charts.wide_range({"loss": [1.0, 0.5, odd]})
    svg = charts.line_chart(series, "loss", 2, log_scale=True)
    assert svg.count("<circle") == 7, "the odd value is a gap, the rest is drawn"
    ticks = re.findall(r'text-anchor="end">([^<]+)</text>', svg)
    assert "1" in ticks and "100" in ticks
    text = _page(_record(training=_training([0.7, odd, 0.7, 84.0])))
    assert "loss per epoch (phase 1, then phase 2), log scale" in text


def test_the_console_says_plainly_that_there_was_no_served_model():
    rule = evidence_rules.regression_rule(None, evidence_rules.EvidenceSettings())
    evaluation = dataclasses.replace(_evaluation(), evidence={
        "split": "eval", "comparison": None, "rule": rule})
    text = summary.render(RunRecord(pipeline="p", evaluation=evaluation))
    assert ("  no-regression rule: not applied, there was no served model to compare with"
            in text.splitlines())
    assert "did not apply: passed" not in text
