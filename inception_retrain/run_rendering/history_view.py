"""The work dir's history (run_reading.history.History) as text, for `inception-retrain history`
and `rollback`, and as the report's History section with the accuracy per version."""
import html
from typing import Dict, List, Optional, Tuple

from inception_retrain.run_reading.history import History
from inception_retrain.run_rendering import charts


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.4f}"


def interval_text(interval: Optional[Tuple[float, float]]) -> str:
    return "" if not interval else f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def _examples_text(examples: Dict[str, int]) -> str:
    return " ".join(f"{split} {n}" for split, n in examples.items()) or "–"


def plot_points(history: History) -> List[Tuple[int, float, float, float]]:
    """(version, accuracy, interval low, high) of every version with known metrics."""
    return [(v.version, v.accuracy, v.interval[0], v.interval[1]) for v in history.versions
            if v.accuracy is not None and v.interval]


def history_html(history: Optional[History], current_run: Optional[str] = None) -> str:
    """The report's History section: the runs, the versions and the accuracy per version."""
    if history is None:
        return ""
    e = html.escape
    out = ["<h2>History</h2>",
           f"<p>Every run of this pipeline in the work dir's metadata store, and every version "
           f"under <code>{e(history.push_base)}</code>; TF Serving serves version "
           f"<b>{e(str(history.served_version))}</b> now.</p>"]
    rows = []
    for run in history.runs:
        mark = " (this run)" if run.run_id == current_run else ""
        bad = run.blessed is False or run.blessed is None
        rows.append(
            f"<tr><td>{e(run.started or '?')}</td><td><code>{e(run.run_id)}</code>{mark}</td>"
            f"<td>{e(run.data_root or '?')}{e(f' span {run.span}' if run.span else '')}<br>"
            f"{e(_examples_text(run.examples))}</td><td>{e(run.base_weights or '–')}</td>"
            f'<td class="num">{_pct(run.accuracy)}</td>'
            f'<td class="num">{e(interval_text(run.interval))}</td>'
            f'<td class="{"fail" if bad else "pass"}">{e(run.outcome)}</td></tr>')
    out.append("<h3>Runs</h3><table><thead><tr><th>started</th><th>run</th><th>data</th>"
               "<th>base weights</th><th>eval accuracy</th><th>95% interval</th>"
               "<th>outcome</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    rows = [f"<tr><td class=\"num\">{v.version}{' (served)' if v.served else ''}</td>"
            f"<td>{e(v.published_at or '?')}</td><td>{e(v.origin)}</td>"
            f'<td class="num">{_pct(v.accuracy)}</td>'
            f'<td class="num">{e(interval_text(v.interval))}</td></tr>'
            for v in reversed(history.versions)]
    if rows:
        out.append("<h3>Pushed versions</h3><table><thead><tr><th>version</th>"
                   "<th>published</th><th>from</th><th>eval accuracy</th>"
                   "<th>95% interval</th></tr></thead><tbody>" + "".join(rows)
                   + "</tbody></table>")
    points = plot_points(history)
    if points:
        out.append(charts.version_accuracy_svg(points, history.served_version))
    return "".join(out)
