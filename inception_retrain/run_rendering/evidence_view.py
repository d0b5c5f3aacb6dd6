"""The Evaluator's evidence record (components/evaluator/evidence_contract.py) in words: the
paired candidate-vs-served comparison, overall and per class, with its interval, test and
number of examples behind it; whether the evidence was enough; group (slide) level results and
calibration. Renders the dict the record carries, nothing else; console lines and HTML."""
import html
from typing import Any, Dict, List, Optional, Sequence

from inception_retrain.run_rendering import charts
from inception_retrain.run_rendering.page_blocks import text_cell

MAX_CHANGED_LINES = 10


def _num(value: Optional[float], digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def interval_text(interval: Optional[Sequence[float]], signed: bool = False) -> str:
    if not interval or interval[0] is None or interval[1] is None:
        return "[–]"
    return f"[{_num(interval[0], 2, signed)}, {_num(interval[1], 2, signed)}]"


def _sample_size(row: Dict[str, Any]) -> str:
    groups = row.get("groups")
    text = f"{row.get('examples', 0)} images"
    return text + (f", {groups} groups" if groups is not None else "")


def comparison_sentence(comparison: Dict[str, Any]) -> str:
    """One line: accuracy of both, the paired difference with its interval, the test, the
    verdict ("better" or "worse" only when significant at the stated level)."""
    overall = comparison["overall"]
    p_value = overall.get("p_value")
    return (f"accuracy {_num(overall.get('candidate'))} against {_num(overall.get('baseline'))}"
            f" ({comparison.get('baseline', 'baseline')}): difference "
            f"{_num(overall.get('difference'), signed=True)} "
            f"{interval_text(overall.get('interval'), True)}"
            + (f", p = {p_value:.3g}" if p_value is not None else "")
            + f" on {_sample_size(overall)}: {overall.get('verdict')}"
            f" (level {comparison.get('level')}; {comparison.get('method')})")


def _class_rows(comparison: Dict[str, Any], order: Sequence[str]) -> List[List[str]]:
    per_class = comparison.get("per_class") or {}
    rows = []
    for name in [c for c in order if c in per_class] + sorted(set(per_class) - set(order)):
        row = per_class[name]
        p_value = row.get("p_value")
        rows.append([name, str(row.get("examples", 0)), _num(row.get("candidate")),
                     _num(row.get("baseline")), _num(row.get("difference"), signed=True),
                     interval_text(row.get("interval"), True),
                     "–" if p_value is None else f"{p_value:.3g}", str(row.get("verdict"))])
    return rows


CLASS_COLUMNS = ("class", "images", "candidate", "baseline", "difference", "interval", "p",
                 "verdict")


def console_lines(evidence: Optional[Dict[str, Any]], order: Sequence[str] = ()) -> List[str]:
    """What the console summary shows of the evidence: the paired comparison per class, the
    images whose prediction changed, the no-regression rule, group level and calibration
    (missing evidence is among the blessing's failures, listed after this)."""
    if not evidence:
        return []
    out = []
    comparison = evidence.get("comparison")
    if comparison:
        out.append("Candidate against the baseline, paired on the same "
                   f"{evidence.get('split', 'eval')} examples:")
        out.append("  " + comparison_sentence(comparison))
        rows = _class_rows(comparison, order)
        if rows:
            widths = [max(len(r[i]) for r in rows + [list(CLASS_COLUMNS)])
                      for i in range(len(CLASS_COLUMNS))]
            for row in [list(CLASS_COLUMNS)] + rows:
                out.append("    " + "  ".join(cell.ljust(width) if i in (0, 7)
                                              else cell.rjust(width)
                                              for i, (cell, width) in
                                              enumerate(zip(row, widths))).rstrip())
        changed = comparison.get("changed") or []
        out.append(f"  predictions changed on {len(changed)} image(s)"
                   + (":" if changed else ""))
        for item in changed[:MAX_CHANGED_LINES]:
            out.append(f"    {item.get('path')}: {item.get('baseline')} -> "
                       f"{item.get('candidate')} (true {item.get('label')})")
        if len(changed) > MAX_CHANGED_LINES:
            out.append(f"    ... and {len(changed) - MAX_CHANGED_LINES} more (the report "
                       "lists all)")
    rule = evidence.get("rule")
    if rule and (rule.get("applied") is False or not comparison):
        out.append("  no-regression rule: not applied, there was no served model to compare "
                   "with")
    elif rule:
        out.append(f"  no-regression rule ({rule.get('regression_rule')}): {rule.get('text')}"
                   f": {'passed' if rule.get('passed') else 'FAILED'}")
    out.extend(candidate_lines(evidence))
    return out


def candidate_lines(evidence: Optional[Dict[str, Any]]) -> List[str]:
    """Calibration and group-level accuracy of the candidate on the evidence's split."""
    if not evidence:
        return []
    candidate = evidence.get("candidate") or {}
    out = []
    if candidate.get("ece") is not None:
        out.append(f"  calibration: expected calibration error {candidate['ece']:.3f} "
                   f"({evidence.get('split', 'eval')} split, 10 confidence bins)")
    group = candidate.get("group_level")
    if group:
        out.append(f"  per group ({group.get('aggregation')} of tile predictions): accuracy "
                   f"{_num(group.get('accuracy'))} "
                   f"{interval_text(group.get('accuracy_interval'))} on "
                   f"{group.get('groups')} groups; recall "
                   + ", ".join(f"{c} {_num(v)}" for c, v in
                               sorted((group.get("per_class_recall") or {}).items())))
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    e = html.escape
    return (f'<table class="{css}"><thead><tr>' + "".join(f"<th>{e(h)}</th>" for h in header)
            + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(text_cell(c) for c in row) + "</tr>"
                      for row in rows) + "</tbody></table>")


def _verdict_css(verdict: Optional[str]) -> str:
    return {"better": "up", "worse": "down"}.get(verdict or "", "")


def comparison_html(evidence: Optional[Dict[str, Any]], order: Sequence[str]) -> str:
    """The paired comparison as the report's lead of "Candidate against the served model":
    a change is coloured only when the test calls it significant."""
    comparison = (evidence or {}).get("comparison")
    if not comparison:
        return ""
    e = html.escape
    overall = comparison["overall"]
    out = [f'<p class="paired {_verdict_css(overall.get("verdict"))}"><b>Paired on the same '
           f'examples</b>: {e(comparison_sentence(comparison))}.</p>',
           f"<p class=\"meta\">Discordant images: the candidate alone right on "
           f"{overall.get('candidate_only_correct')}, the baseline alone right on "
           f"{overall.get('baseline_only_correct')}. A change is called better or worse only "
           f"when it is significant at level {e(str(comparison.get('level')))}.</p>"]
    rows = _class_rows(comparison, order)
    if rows:
        body = []
        for row in rows:
            cells = "".join(f'<td class="num">{e(c)}</td>' for c in row[1:7])
            body.append(f"<tr>{text_cell(row[0])}{cells}"
                        f"{text_cell(row[7], css=_verdict_css(row[7]))}</tr>")
        out.append('<h3>Per class (recall, paired)</h3><table class="compare paired-class">'
                   "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in CLASS_COLUMNS)
                   + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")
    changed = comparison.get("changed") or []
    out.append(f"<h3>Images whose prediction changed ({len(changed)})</h3>")
    if changed:
        out.append("<details><summary>list</summary>" + _table(
            ["image", "group", "true", "baseline", "candidate"],
            [[str(c.get("path")), str(c.get("group") or ""), str(c.get("label")),
              str(c.get("baseline")), str(c.get("candidate"))] for c in changed],
            "changed") + "</details>")
    return "".join(out)


def evidence_html(evidence: Optional[Dict[str, Any]]) -> str:
    """Whether the evidence was enough, group-level results and calibration of one split."""
    if not evidence:
        return ""
    e = html.escape
    out = []
    rules = evidence.get("evidence") or {}
    if rules:
        minimum = (f"at least {rules.get('min_examples_per_class')} images per class"
                   + (f" and {rules.get('min_groups_per_class')} groups per class"
                      if evidence.get("grouped") else ""))
        if rules.get("enough"):
            out.append(f"<p>Evidence: enough ({e(minimum)} in the "
                       f"{e(str(evidence.get('split')))} split).</p>")
        else:
            out.append(f'<p class="fail">Evidence: not enough ({e(minimum)} required):</p><ul>'
                       + "".join(f"<li>{e(p)}</li>" for p in rules.get("problems") or [])
                       + "</ul>")
    candidate = evidence.get("candidate") or {}
    group = candidate.get("group_level")
    if group:
        out.append(f"<h3>Per group ({e(str(group.get('aggregation')))} of tile predictions)"
                   f"</h3><p>Accuracy {_num(group.get('accuracy'))} "
                   f"{interval_text(group.get('accuracy_interval'))} on "
                   f"{group.get('groups')} groups.</p>")
        recall = group.get("per_class_recall") or {}
        if recall:
            out.append(_table(["class", "group recall"],
                              [[c, _num(v)] for c, v in sorted(recall.items())]))
        confusion = group.get("confusion")
        if confusion and confusion.get("labels"):
            out.append(charts.confusion_svg(group_matrix(confusion)))
    if candidate.get("reliability"):
        out.append(f"<h3>Calibration</h3><p>Expected calibration error "
                   f"{_num(candidate.get('ece'))} (10 equal-width bins of the top-1 score).</p>"
                   + charts.reliability_svg(candidate["reliability"]))
    return "".join(out)


def group_matrix(confusion: Dict[str, Any]) -> Dict[str, Any]:
    """The evidence record's group confusion ({labels, matrix}) in the shape charts.confusion_svg
    draws (the report's confusion matrices: classes, rows of counts, no_prediction)."""
    labels = list(confusion["labels"])
    return {"classes": labels, "counts": [list(row) for row in confusion["matrix"]],
            "no_prediction": [0] * len(labels)}
