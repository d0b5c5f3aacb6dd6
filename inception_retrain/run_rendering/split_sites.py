"""The run report's split, leakage and per-site sections, and the model card's limits on sites
and slides, from the record: the DataGate's split summary (DataSection.split: groups per split,
images per group, class balance, leakage) and the candidate's accuracy per site
(EvaluationSection.sites)."""
import html
from typing import Any, List, Optional

from inception_retrain.run_reading.evaluation import ACCURACY, COUNT
from inception_retrain.run_rendering.page_blocks import text_cell


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Optional[float], digits: int = 4) -> str:
    return ('<td class="num na">–</td>' if value is None
            else f'<td class="num">{value:.{digits}f}</td>')


def split_html(report) -> str:
    """The split and leakage section (after the data section)."""
    split = report.record.data.split if report.record.data else None
    if not split or not split.get("split"):
        return ""
    summary, leakage = split["split"], split.get("leakage") or {}
    out = ['<section id="split"><h2>Split</h2>']
    out.append(f"<p>Split by group: <b>{summary['groups']}</b> groups (slides); every image of "
               "a group is in one split.</p>" if summary["grouped"] else
               "<p>Split <b>per image</b>: no group key (<code>data.group_pattern</code> or a "
               "manifest's group column), so tiles of one slide can be in different "
               "splits.</p>")
    rows = []
    for name, s in summary["splits"].items():
        dist = s["images_per_group"]
        rows.append(f"<tr>{text_cell(name)}<td class=\"num\">{s['images']}</td>"
                    f"<td class=\"num\">{s['groups']}</td>"
                    + "".join(f'<td class="num">{_e(dist.get(k, "–"))}</td>'
                              for k in ("min", "median", "max"))
                    + f"<td class=\"num\">{s['class_balance_distance']:.3f}</td>"
                    + text_cell(s["class_balance_worst"])
                    + text_cell(", ".join(f"{k}: {v}" for k, v in s["sites"].items()) or "–")
                    + "</tr>")
    out.append('<table class="split"><thead><tr><th>split</th><th>images</th><th>groups</th>'
               "<th>images per group: min</th><th>median</th><th>max</th>"
               "<th>class balance vs. all (L-inf.)</th><th>class</th><th>images per site</th>"
               f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    out.append('<section id="leakage"><h3>Leakage checks</h3><table class="leakage"><thead>'
               "<tr><th>check</th><th>found</th><th>what</th></tr></thead><tbody>")
    groups = leakage.get("groups_in_several_splits", {})
    items = [("groups in more than one split", leakage.get("groups_in_several_splits_count", 0),
              "; ".join(f"{g} ({', '.join(s)})" for g, s in groups.items())),
             ("identical files in more than one split",
              leakage.get("duplicates_across_splits_count", 0),
              "; ".join(" = ".join(f"{e[2]} ({e[0]})" for e in c)
                        for c in leakage.get("duplicates_across_splits", {}).values())),
             ("identical files under more than one label",
              leakage.get("label_conflicts_count", 0),
              "; ".join(" = ".join(f"{e[2]} ({e[1]})" for e in c)
                        for c in leakage.get("label_conflicts", {}).values())),
             ("extra copies within one class and split",
              sum(n for by_label in leakage.get("duplicates_within_class", {}).values()
                  for n in by_label.values()),
              ", ".join(f"{s}/{label}: {n}" for s, by_label in
                        leakage.get("duplicates_within_class", {}).items()
                        for label, n in by_label.items()))]
    for name, count, what in items:
        out.append(f'<tr>{text_cell(name)}<td class="num {"fail" if count else "pass"}">'
                   f"{count}</td>{text_cell(what, code=True)}</tr>")
    out.append("</tbody></table></section></section>")
    return "".join(out)


def sites_html(report) -> str:
    """Accuracy per site beside the overall figure (after the evaluation section)."""
    evaluation = report.record.evaluation
    if evaluation is None:
        return ""
    sites, floor = evaluation.sites, evaluation.min_site_accuracy
    if not sites:
        return ""
    overall = evaluation.metrics
    rows = [f"<tr><td><b>all sites</b></td><td class=\"num\">{int(overall.get(COUNT, 0))}</td>"
            f"{_num(overall.get(ACCURACY))}<td></td></tr>"]
    worst = min(sites, key=lambda s: (sites[s].get(ACCURACY, 0.0), s))
    for site, m in sites.items():
        note = "worst" if site == worst else ""
        if floor and m.get(ACCURACY, 0.0) < floor:
            note = (note + "; " if note else "") + f"below the floor {floor:g}"
        rows.append(f"<tr>{text_cell(site)}<td class=\"num\">{int(m.get(COUNT, 0))}</td>"
                    f"{_num(m.get(ACCURACY))}{text_cell(note)}</tr>")
    floor_text = (f"The worst site must reach an accuracy of {floor:g} "
                  "(<code>evaluation.min_site_accuracy</code>)." if floor else
                  "No floor for the worst site (<code>evaluation.min_site_accuracy</code> is 0).")
    return ('<section id="sites"><h3>Accuracy per site (eval split)</h3>'
            '<table class="sites"><thead><tr><th>site</th><th>examples</th><th>accuracy</th>'
            f"<th>note</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p>{floor_text}</p></section>")


def card_limits(record, text=str) -> List[str]:
    """The model card's limits on where the training images came from; text: how the card
    shows a site's name (plain, or escaped for Markdown)."""
    summary = ((record.data.split if record.data else None) or {}).get("split")
    if not summary:
        return []
    train = summary["splits"].get("train", {})
    sites = summary.get("sites") or {}
    found = []
    if summary["grouped"]:
        found.append(f"The model saw {train.get('groups', 0)} slides (groups) in training, "
                     f"{summary['groups']} in all splits; a slide's tiles are alike, so the "
                     "number of slides, not of tiles, bounds what it learned.")
    else:
        found.append("The split was per image (no group key): tiles of one slide may be in "
                     "training and evaluation, which flatters the metrics.")
    if sites:
        found.append(f"Sites in the data ({len(sites)}): "
                     + ", ".join(f"{text(s)} ({n} slides)" for s, n in sites.items())
                     + "; it says nothing about other sites.")
    return found
