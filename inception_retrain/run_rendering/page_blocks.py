"""The building blocks inside the report page's sections (escaped cells, tables, thumbnail
figures, the DataGate's Markdown, the page's one class order), kept apart from page.py's
section layout so that each stays short and the blocks are testable on their own."""
import html
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from inception_retrain.run_reading.record import DataSection, RunRecord, RunReport


def escape(value: Any) -> str:
    return html.escape(str(value))


CELL_LIMIT = 80  # characters of a table cell's text; the rest is in its tooltip


def text_cell(value: Any, limit: int = CELL_LIMIT, css: str = "", code: bool = False) -> str:
    """A table cell of text, escaped; a value longer than limit (an error text as "base
    weights", a long path) is cut to limit with "…", its full text in the cell's title (shown
    on hover). Every table of the page makes its text cells here."""
    text = "" if value is None else str(value)
    attributes = f' class="{css}"' if css else ""
    if len(text) > limit:
        attributes += f' title="{escape(text)}"'
        text = text[:limit - 1].rstrip() + "…"
    inner = f"<code>{escape(text)}</code>" if code else escape(text)
    return f"<td{attributes}>{inner}</td>"


def number_cell(value: Optional[float], digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return '<td class="num na">–</td>'
    return f'<td class="num">{value:.{digits}f}</td>'


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """rows hold ready-made cells (<td>...</td>)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def counts_html(data: DataSection) -> str:
    splits, classes = data.splits, data.classes
    biggest = max([data.class_total(c) for c in classes] or [1]) or 1
    rows = []
    for name in classes:
        total = data.class_total(name)
        rows.append([text_cell(name)]
                    + [f'<td class="num">{data.count(s, name)}</td>' for s in splits]
                    + [f'<td><span class="bar" style="width:{120 * total / biggest:.0f}px">'
                       f'</span>{total}</td>'])
    rows.append(["<td><b>total</b></td>"]
                + [f'<td class="num"><b>{data.split_total(s)}</b></td>' for s in splits]
                + [f"<td><b>{sum(data.split_total(s) for s in splits)}</b></td>"])
    return ("<h3>Examples per class and split</h3>"
            + table(["class"] + splits + ["all splits"], rows))


def quarantine_html(quarantine: List[Dict[str, str]]) -> str:
    out = [f"<h3>Quarantined files ({len(quarantine)})</h3>"]
    if not quarantine:
        return out[0] + "<p>None: every file was read.</p>"
    shown = quarantine[:200]
    out.append(table(["file", "category", "reason"], [
        [text_cell(q.get("relative_path"), code=True), text_cell(q.get("category", "")),
         text_cell(q.get("reason"))]
        for q in shown]))
    if len(quarantine) > len(shown):
        out.append(f"<p>… and {len(quarantine) - len(shown)} more (report.json has all).</p>")
    return "".join(out)


# The DataGate report's sections (components/data_gate/report.py: its "## " headings, without
# a count in brackets) that the page shows itself, each with when the page has that section
# (page._data_html, split_sites.split_html).
def _split_shown(data: DataSection) -> bool:
    return bool(data.split and data.split.get("split"))


DUPLICATED_SECTIONS = {
    "Examples per class and split": lambda data: bool(data.class_counts),
    "Split": _split_shown, "Leakage checks": _split_shown,
    "Quarantined files": lambda data: data.quarantine is not None,
    "Schema anomalies": lambda data: data.anomalies is not None,
}


def data_report_parts(data: DataSection) -> Tuple[str, List[str]]:
    """The DataGate's Markdown report without the sections the page already shows (class
    counts, split, leakage, quarantine, anomalies), and the titles of those left out."""
    shown = {title for title, on_page in DUPLICATED_SECTIONS.items() if on_page(data)}
    kept, left_out, dropping = [], [], False
    for line in (data.report_text or "").splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            name = title.split(" (", 1)[0]
            dropping = name in shown
            if dropping:
                left_out.append(name)
        if not dropping:
            kept.append(line)
    return "\n".join(kept) + "\n", left_out


def data_report_html(data: DataSection) -> str:
    """The DataGate's report, collapsed, with only what the page does not show elsewhere."""
    if not data.report_text:
        return ""
    text, left_out = data_report_parts(data)
    note = (f'<p class="meta">Left out here, shown above: {escape(", ".join(left_out))}.</p>'
            if left_out else "")
    return (f"<details><summary>The DataGate's data report "
            f"(<code>{escape(data.report_path)}</code>)</summary>{note}"
            f'<div class="md">{markdown_html(text)}</div></details>')


def markdown_html(text: str) -> str:
    """The DataGate's Markdown report as HTML. The text is HTML-escaped first, so a class
    name or path in it can never become a tag; Markdown's own syntax (headings, lists,
    tables, code) survives escaping."""
    import markdown

    return markdown.markdown(html.escape(text, quote=False),
                             extensions=["tables", "fenced_code"], output_format="html")


def class_order(record: RunRecord) -> List[str]:
    """The one class order of the whole page: sorted names (counts, metrics, confusion
    matrices, the side-by-side comparison and the misclassified images all use it)."""
    names = set(record.data.classes if record.data else [])
    if record.evaluation:
        names |= set(record.evaluation.class_names) | set(record.evaluation.per_class)
    if record.training:
        names |= set(record.training.class_names)
    return sorted(names)


def reorder_matrix(matrix: Dict[str, Any], order: Sequence[str]) -> Dict[str, Any]:
    """A confusion matrix with rows and columns in `order` (classes it lacks are left out;
    its own classes missing from order come last)."""
    names = matrix["classes"]
    index = [names.index(n) for n in order if n in names]
    index += [i for i in range(len(names)) if i not in index]
    return {"classes": [names[i] for i in index],
            "counts": [[matrix["counts"][i][j] for j in index] for i in index],
            "no_prediction": [matrix["no_prediction"][i] for i in index]}


def samples_html(report: RunReport) -> str:
    """Sample images per class and the image sizes per split (run_reading.samples)."""
    found = report.extras.get("samples")
    if not found:
        return ""
    out = []
    if found.get("samples"):
        out.append("<h3>Sample training images per class</h3>")
        for name in class_order(report.record) or sorted(found["samples"]):
            items = found["samples"].get(name)
            if not items:
                continue
            figures = "".join(
                '<figure class="sample">'
                + (f'<img src="{i["thumbnail"]}" alt="{escape(i["path"])}">'
                   if i.get("thumbnail") else "<p>(unreadable)</p>")
                + f'<figcaption><span class="nowrap">{i["width"]}×{i["height"]} px</span>'
                f"</figcaption></figure>" for i in items)
            out.append(f'<p class="pair"><b>{escape(name)}</b></p>'
                       f'<div class="thumbs samples">{figures}</div>')
    sizes = found.get("sizes") or {}
    if sizes:
        from inception_retrain.run_reading.samples import SIZE_BUCKETS

        buckets = [label for _, label in SIZE_BUCKETS
                   if any(label in per_split for per_split in sizes.values())]
        biggest = max(n for per_split in sizes.values() for n in per_split.values()) or 1
        rows = [[text_cell(label)]
                + [f'<td class="num">{sizes[split].get(label, 0)}</td>' for split in sizes]
                + [f'<td><span class="bar" style="width:'
                   f'{120 * sum(sizes[s].get(label, 0) for s in sizes) / biggest / len(sizes):.0f}'
                   f'px"></span></td>'] for label in buckets]
        out.append(f"<h3>Image sizes (longest side as ingested: {found.get('min_side')} to "
                   f"{found.get('max_side')} px)</h3>"
                   + table(["longest side"] + list(sizes) + [""], rows))
    return "".join(out)


_PER_CLASS_COLUMNS = (("precision", "top1_precision"), ("recall", "top1_recall"),
                      ("calibration", "calibration"))


def metrics_html(metrics: Dict[str, float], per_class: Dict[str, Dict[str, float]],
                 support: Dict[str, int], top_k: Optional[int] = None,
                 num_classes: int = 0) -> str:
    hidden = set()
    if top_k is not None and num_classes and top_k >= num_classes:  # always 1: says nothing
        hidden = {k for k in metrics if k.startswith("sparse_top_k_categorical_accuracy")}
    out = [table(["metric", "value"],
                 [[text_cell(k), number_cell(v, 0 if "count" in k else 4)]
                  for k, v in sorted(metrics.items()) if k not in hidden])]
    if hidden:
        out.append(f'<p class="meta">Top-{top_k} accuracy is not shown: with '
                   f"{num_classes} classes it is 1 by definition.</p>")
    if per_class or support:
        names = sorted(set(per_class) | set(support))
        out.append(table(["class", "examples"] + [c for c, _ in _PER_CLASS_COLUMNS], [
            [text_cell(name), f'<td class="num">{support.get(name, 0)}</td>']
            + [number_cell((per_class.get(name) or {}).get(key)) for _, key in _PER_CLASS_COLUMNS]
            for name in names]))
    return "".join(out)


def misclassified_html(wrong: Dict[str, Any], order: Sequence[str] = ()) -> str:
    out = ["<h3>Misclassified eval images</h3>"]
    if wrong["skipped"]:
        return out[0] + f"<p>Not computed: {escape(wrong['skipped'])}.</p>"
    out.append(f"<p>{wrong['misclassified']} of {wrong['examined']} eval examples "
               "classified by the candidate's serving signature were wrong"
               + (f"; {len(wrong['items'])} are shown, taken in turn from each true class, "
                  "most confident first" if wrong["misclassified"] > len(wrong["items"])
                  else "") + ". Grouped by true → predicted class, most confident first.</p>")
    rank = {name: i for i, name in enumerate(order)}
    groups: Dict[Any, List[Dict[str, Any]]] = {}
    for item in wrong["items"]:
        groups.setdefault((item["label"], item["predicted"]), []).append(item)
    for (label, predicted) in sorted(groups, key=lambda p: (rank.get(p[0], len(rank)), p[0],
                                                            rank.get(p[1], len(rank)), p[1])):
        items = sorted(groups[(label, predicted)], key=lambda i: (-i["score"], i["path"]))
        figures = []
        for item in items:
            image = (f'<img src="{item["thumbnail"]}" alt="{escape(item["path"])}">'
                     if item.get("thumbnail") else "<p>(unreadable)</p>")
            figures.append(f"<figure>{image}<figcaption>"
                           f'<span class="nowrap">score {item["score"]:.2f}</span><br>'
                           f"<code>{escape(item['path'])}</code></figcaption></figure>")
        out.append(f'<p class="pair"><b>{escape(label)}</b> → <b>{escape(predicted)}</b> '
                   f"({len(items)})</p>"
                   f'<div class="thumbs">{"".join(figures)}</div>')
    return "".join(out)
