"""Issue 26: the answer first. The headline numbers (eval accuracy with its interval and count,
the served model's, the rule that decided) and, on the console, the candidate against the
served model per class; from records built here."""
from inception_retrain.run_reading import headline
from inception_retrain.run_reading.record import (
    DataSection,
    EvaluationSection,
    RunRecord,
)
from inception_retrain.run_rendering import summary


def _evaluation(blessed=True):
    per_class = {"a": {"top1_precision": 0.8, "top1_recall": 0.9,
                       "top1_precision [baseline]": 0.7, "top1_recall [baseline]": 0.6},
                 "b": {"top1_precision": 0.9, "top1_recall": 0.8,
                       "top1_precision [baseline]": 0.6, "top1_recall [baseline]": 0.7}}
    return headline.with_headline(EvaluationSection(
        metrics={"sparse_categorical_accuracy": 0.85, "example_count": 40.0,
                 "sparse_categorical_accuracy [baseline]": 0.65},
        per_class=per_class, baseline={"source": "served", "version": 2, "path": "/s/2"},
        blessed=blessed, failures=[] if blessed else ["accuracy 0.85 fails >= 0.9"],
        validation_ok=blessed, class_names=["a", "b"]))


def test_the_headline_has_the_interval_count_baseline_and_rule():
    head = _evaluation().headline
    assert (head.accuracy, head.examples, head.baseline_accuracy) == (0.85, 40, 0.65)
    assert head.interval[0] < 0.85 < head.interval[1]
    assert head.decisive_rule == "every threshold met"
    assert _evaluation(False).headline.decisive_rule == "accuracy 0.85 fails >= 0.9"


def test_the_console_shows_the_numbers_and_the_comparison_per_class():
    record = RunRecord(pipeline="p", evaluation=_evaluation(False),
                       data=DataSection(class_counts={"eval": {"a": 20, "b": 20}}))
    text = summary.render(record)
    low, high = record.evaluation.headline.interval
    assert (f"Eval accuracy 0.850 [{low:.3f}, {high:.3f}] (95 % Wilson score interval) on 40 "
            "images; served version 2: 0.650") in text
    assert "Decided by: accuracy 0.85 fails >= 0.9." in text
    assert "Candidate against the served model, per class (eval split):" in text
    assert "  a                              20     0.8000  0.7000  0.9000  0.6000 +0.3000" in text


def test_the_report_opens_with_the_verdict_and_its_numbers():
    from inception_retrain.run_reading.record import RunReport
    from inception_retrain.run_rendering import page

    record = RunRecord(pipeline="p", evaluation=_evaluation(False))
    html = page.render_html(RunReport(record, "now", "m.sqlite", "root", status="warn",
                                      verdict="Not blessed"))
    banner = html.split('<div class="verdict warn" id="verdict">', 1)[1].split("</div>", 1)[0]
    assert "Not blessed" in banner and "Eval accuracy 0.850" in banner
    assert "served version 2: 0.650" in banner and "Decided by: accuracy 0.85" in banner
    assert html.index('id="verdict"') < html.index("<h2>")
