"""The answer first: the verdict with its numbers (the candidate's eval accuracy with its
interval and count, the served model's, the paired difference, the rule that decided), as
lines for the console and a banner at the top of the report. Rendered
from the record's Headline (run_reading.headline) only."""
import html
from typing import Dict, List, Optional, Sequence

from inception_retrain.run_reading.record import EvaluationSection, RunReport


def baseline_text(baseline: Dict) -> str:
    """The evaluation's baseline in words: "served version 3 (path)", "none (first run)"."""
    if baseline.get("source") == "served":
        return f"served version {baseline.get('version')} ({baseline.get('path')})"
    detail = baseline.get("note") or baseline.get("uri")
    return f"{baseline.get('source')}" + (f" ({detail})" if detail else "")


def _num(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _interval(interval: Optional[Sequence[float]], signed: bool = False) -> str:
    if not interval:
        return ""
    return f" [{_num(interval[0], signed)}, {_num(interval[1], signed)}]"


def numbers(evaluation: Optional[EvaluationSection]) -> List[str]:
    """The headline as sentences: the candidate's accuracy, the served model's on the same
    images and the paired difference, the rule that decided ([] without an evaluation)."""
    head = evaluation.headline if evaluation else None
    if head is None:
        return []
    candidate = (f"Eval accuracy {_num(head.accuracy)}{_interval(head.interval)}"
                 + (f" ({head.interval_method} interval)" if head.interval_method else "")
                 + (f" on {head.examples} images" if head.examples else ""))
    baseline = evaluation.baseline or {}
    if head.baseline_accuracy is None:
        served = ("no served model to compare with"
                  + (f" (baseline: {baseline_text(baseline)})" if baseline else ""))
    else:
        who = (f"served version {baseline.get('version')}"
               if baseline.get("source") == "served" else "the baseline")
        served = (f"{who}: {_num(head.baseline_accuracy)}"
                  f"{_interval(head.baseline_interval)} on the same images")
        if head.difference is not None:
            served += (f"; paired difference {_num(head.difference, True)}"
                       f"{_interval(head.difference_interval, True)}"
                       + (f": {head.difference_verdict}" if head.difference_verdict else ""))
    return [f"{candidate}; {served}.", f"Decided by: {head.decisive_rule}."]


def banner_html(report: RunReport) -> str:
    """The verdict banner at the top of the page: how the run ended, then the numbers."""
    e = html.escape
    lines = numbers(report.record.evaluation)
    return (f'<div class="verdict {e(report.status)}" id="verdict">'
            f'<p class="answer">{e(report.verdict)}</p>'
            + "".join(f'<p class="numbers">{e(line)}</p>' for line in lines) + "</div>")
