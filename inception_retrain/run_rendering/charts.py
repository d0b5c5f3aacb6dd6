"""Inline SVG for the run report: line charts of the training curves and the confusion matrix.
No script, no external reference: the page stays one self-contained file."""
import html
import math
from typing import Any, Dict, List, Optional

_COLORS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989")


def _nice_ticks(low: float, high: float, count: int = 5) -> List[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value <= high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    return ticks


def wide_range(series: Dict[str, List[Optional[float]]], ratio: float = 20.0) -> bool:
    """True when the positive finite values span more than `ratio` (a phase-2 loss spike): a
    linear axis would flatten everything else, so the chart goes to a log scale. Zeros,
    negatives, NaN and infinities are left out of the choice (the log chart leaves gaps
    there): a val_loss of exactly 0 does not keep the chart linear."""
    values = [v for vs in series.values() for v in vs
              if v is not None and math.isfinite(v) and v > 0]
    return bool(values) and max(values) / min(values) > ratio


def line_chart(series: Dict[str, List[Optional[float]]], title: str,
               boundary: Optional[int] = None, width: int = 440, height: int = 230,
               log_scale: bool = False) -> str:
    """An inline SVG line chart over epochs (1-based); `boundary` draws the phase change after
    that many epochs. Missing or non-finite values leave gaps (and values <= 0 on a log
    scale)."""
    left, right, top, bottom = 52, 12, 28, 52
    if log_scale:
        series = {name: [math.log10(v) if v is not None and math.isfinite(v) and v > 0
                         else None for v in values] for name, values in series.items()}
    finite = [v for values in series.values() for v in values
              if v is not None and math.isfinite(v)]
    epochs = max((len(v) for v in series.values()), default=0)
    if not finite or epochs == 0:
        return (f'<svg class="chart" width="{width}" height="60" role="img"><text x="8" y="30">'
                f'{html.escape(title)}: no values</text></svg>')
    ticks = _nice_ticks(min(finite), max(finite))
    y_low, y_high = ticks[0], ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(epoch: int) -> float:  # epoch is 1-based
        return left + (plot_w * (epoch - 1) / (epochs - 1) if epochs > 1 else plot_w / 2)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (value - y_low) / ((y_high - y_low) or 1))

    out = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
           f' role="img" aria-label="{html.escape(title)}">',
           f'<text x="{left}" y="16" class="title">{html.escape(title)}</text>']
    for tick in ticks:
        y = y_of(tick)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'class="grid"/><text x="{left - 6}" y="{y + 4:.1f}" class="tick" '
                   f'text-anchor="end">{(10 ** tick if log_scale else tick):.3g}</text>')
    step = max(1, math.ceil(epochs / 10))
    for epoch in range(1, epochs + 1, step):
        out.append(f'<text x="{x_of(epoch):.1f}" y="{height - bottom + 16}" class="tick" '
                   f'text-anchor="middle">{epoch}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - bottom + 30}" class="tick" '
               f'text-anchor="middle">epoch</text>')
    if boundary and 0 < boundary < epochs:
        x = (x_of(boundary) + x_of(boundary + 1)) / 2
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" '
                   f'class="boundary"/><text x="{x + 4:.1f}" y="{top + 12}" class="tick">'
                   f'phase 2</text>')
    for index, (name, values) in enumerate(series.items()):
        color = _COLORS[index % len(_COLORS)]
        segments, current = [], []
        for epoch, value in enumerate(values, start=1):
            if value is None or not math.isfinite(value):
                if current:
                    segments.append(current)
                current = []
                continue
            current.append((x_of(epoch), y_of(value)))
        if current:
            segments.append(current)
        for segment in segments:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
            out.append(f'<polyline points="{points}" fill="none" stroke="{color}" '
                       f'stroke-width="2"/>')
            out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>'
                       for x, y in segment)
        legend_x = left + 110 * index
        out.append(f'<rect x="{legend_x}" y="{height - 12}" width="14" height="4" '
                   f'fill="{color}"/><text x="{legend_x + 18}" y="{height - 6}" '
                   f'class="legend">{html.escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def confusion_svg(matrix: Dict[str, Any]) -> str:
    """The confusion matrix as an SVG grid: rows actual, columns predicted, shade by the row's
    share (recall on the diagonal), counts written in the cells."""
    names, counts = matrix["classes"], matrix["counts"]
    size = len(names)
    cell = 44 if size <= 8 else 28 if size <= 20 else 14
    label_w = min(180, 8 + 7 * max((len(n) for n in names), default=1))
    left, top = label_w + 24, label_w + 24
    width, height = left + cell * size + 10, top + cell * size + 10
    out = [f'<svg class="confusion" width="{width}" height="{height}" viewBox="0 0 {width} '
           f'{height}" role="img" aria-label="confusion matrix">',
           f'<text x="{left + cell * size / 2:.0f}" y="12" class="tick" text-anchor="middle">'
           f'predicted</text>',
           f'<text x="12" y="{top + cell * size / 2:.0f}" class="tick" text-anchor="middle" '
           f'transform="rotate(-90 12 {top + cell * size / 2:.0f})">actual</text>']
    for i, name in enumerate(names):
        short = html.escape(name if len(name) <= 24 else name[:23] + "…")
        out.append(f'<text x="{left - 6}" y="{top + cell * i + cell / 2 + 4:.0f}" class="tick" '
                   f'text-anchor="end"><title>{html.escape(name)}</title>{short}</text>')
        x = left + cell * i + cell / 2 + 4
        out.append(f'<text x="{x:.0f}" y="{top - 6}" class="tick" '
                   f'transform="rotate(-60 {x:.0f} {top - 6})"><title>{html.escape(name)}</title>'
                   f'{short}</text>')
    for i, row in enumerate(counts):
        total = sum(row) + matrix["no_prediction"][i]
        for j, count in enumerate(row):
            share = count / total if total else 0.0
            hue = 140 if i == j else 0
            fill = f"hsl({hue}, 60%, {97 - 50 * share:.0f}%)" if count else "#fafafa"
            out.append(f'<rect x="{left + cell * j}" y="{top + cell * i}" width="{cell}" '
                       f'height="{cell}" fill="{fill}" stroke="#d0d7de"><title>actual '
                       f'{html.escape(names[i])}, predicted {html.escape(names[j])}: {count}'
                       f'</title></rect>')
            if count and cell >= 28:
                out.append(f'<text x="{left + cell * j + cell / 2:.0f}" '
                           f'y="{top + cell * i + cell / 2 + 4:.0f}" class="cell" '
                           f'text-anchor="middle">{count}</text>')
    out.append("</svg>")
    return "".join(out)


def version_accuracy_svg(points, served: Optional[int] = None, width: int = 520,
                         height: int = 230) -> str:
    """Eval accuracy per pushed version: (version, accuracy, low, high) points, each with its
    95% interval as a whisker, joined in version order; the served version ringed."""
    left, right, top, bottom = 52, 16, 28, 44
    title = "eval accuracy per version (95% interval; ringed: served)"
    points = sorted(points)
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(points)

    pad = 24  # the first and last points, their whiskers and labels stay inside

    def x_of(index: int) -> float:
        return left + pad + ((plot_w - 2 * pad) * index / (n - 1) if n > 1
                             else (plot_w - 2 * pad) / 2)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - value)

    out = [f'<svg class="history" width="{width}" height="{height}" viewBox="0 0 {width} '
           f'{height}" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{left}" y="16" class="title">{html.escape(title)}</text>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_of(tick)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'class="grid"/><text x="{left - 6}" y="{y + 4:.1f}" class="tick" '
                   f'text-anchor="end">{tick:g}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" class="tick" '
               f'text-anchor="middle">version</text>')
    coords = [(x_of(i), y_of(acc)) for i, (_, acc, _, _) in enumerate(points)]
    if n > 1:
        out.append('<polyline points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
                   + f'" fill="none" stroke="{_COLORS[0]}" stroke-width="2"/>')
    for i, (version, accuracy, low, high) in enumerate(points):
        x, y = coords[i]
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y_of(high):.1f}" '
                   f'y2="{y_of(low):.1f}" stroke="{_COLORS[0]}" stroke-opacity="0.45" '
                   f'stroke-width="6" class="interval"/>')
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{_COLORS[0]}" '
                   f'class="version-point" data-version="{version}" '
                   f'data-accuracy="{accuracy:.4f}"><title>version {version}: accuracy '
                   f'{accuracy:.4f} (95% interval {low:.2f} to {high:.2f})</title></circle>')
        if version == served:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="none" '
                       f'stroke="{_COLORS[2]}" stroke-width="2"/>')
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" class="tick" '
                   f'text-anchor="middle">{version}</text>')
    out.append("</svg>")
    return "".join(out)


def reliability_svg(bins: List[Dict[str, Any]], width: int = 300, height: int = 300) -> str:
    """A reliability diagram: per confidence bin of the top-1 score, the accuracy (a bar, its
    count in the tooltip) against the diagonal of perfect calibration."""
    left, right, top, bottom = 44, 12, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    title = "reliability: accuracy per confidence bin"
    out = [f'<svg class="reliability" width="{width}" height="{height}" viewBox="0 0 {width} '
           f'{height}" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{left}" y="16" class="title">{html.escape(title)}</text>']
    for tick in (0.0, 0.5, 1.0):
        y, x = top + plot_h * (1 - tick), left + plot_w * tick
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'class="grid"/><text x="{left - 6}" y="{y + 4:.1f}" class="tick" '
                   f'text-anchor="end">{tick:g}</text><text x="{x:.1f}" '
                   f'y="{top + plot_h + 16}" class="tick" text-anchor="middle">{tick:g}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" class="tick" '
               f'text-anchor="middle">confidence</text>')
    for b in bins:
        x, w = left + plot_w * b["low"], plot_w * (b["high"] - b["low"])
        h = plot_h * (b["accuracy"] or 0.0)
        out.append(f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(w - 2, 1):.1f}"'
                   f' height="{h:.1f}" fill="{_COLORS[0]}" fill-opacity="0.6" class="bin">'
                   f'<title>confidence {b["low"]:.1f} to {b["high"]:.1f}: {b["count"]} images, '
                   f'mean confidence {b["confidence"]:.2f}, accuracy {b["accuracy"]:.2f}'
                   f'</title></rect>')
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top}" '
               f'stroke="{_COLORS[1]}" stroke-dasharray="4 3"/>')
    out.append("</svg>")
    return "".join(out)
