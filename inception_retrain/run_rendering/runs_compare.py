"""Any two runs side by side (`inception-retrain compare RUN_A RUN_B`), from their run index
entries: the eval metrics, per-class precision and recall (compare.COLUMNS, as the report's
candidate-against-served section has them) and examples per class and split, each with B - A.
Differences only: no test of significance (the report's paired comparison is for a candidate
against the model served when it was gated)."""
from typing import Any, Dict, List, Optional

from inception_retrain.run_reading.index_contract import RunEntry
from inception_retrain.run_rendering.compare import BASELINE, CHANGE, COLUMNS


def _row(name: str, a: Optional[float], b: Optional[float], **extra) -> Dict[str, Any]:
    change = b - a if a is not None and b is not None else None
    return dict(extra, name=name, a=a, b=b, change=change)


def _own_metrics(entry: RunEntry) -> Dict[str, float]:
    """The run's candidate metrics (not its served baseline's, nor the change against it)."""
    return {k: v for k, v in entry.metrics.items()
            if not (k.endswith(BASELINE) or k.endswith(CHANGE)) and isinstance(v, (int, float))}


def compare(a: RunEntry, b: RunEntry) -> Dict[str, Any]:
    """{a, b: the runs in short, same_data, metrics, per_class, class_counts: rows of name, a,
    b and change (b - a; None where either is unknown)}."""
    metrics_a, metrics_b = _own_metrics(a), _own_metrics(b)
    metrics = [_row(name, metrics_a.get(name), metrics_b.get(name))
               for name in sorted(set(metrics_a) | set(metrics_b))]
    per_class: List[Dict[str, Any]] = []
    for name in sorted(set(a.per_class) | set(b.per_class)):
        for label, key in COLUMNS:
            per_class.append(_row(label, a.per_class.get(name, {}).get(key),
                                  b.per_class.get(name, {}).get(key), **{"class": name}))
    counts: List[Dict[str, Any]] = []
    for split in sorted(set(a.class_counts) | set(b.class_counts)):
        in_a, in_b = a.class_counts.get(split, {}), b.class_counts.get(split, {})
        for name in sorted(set(in_a) | set(in_b)):
            counts.append(_row(split, in_a.get(name), in_b.get(name), **{"class": name}))
    return {"a": _short(a), "b": _short(b),
            "same_data": bool(a.data_fingerprint and a.data_fingerprint == b.data_fingerprint),
            "metrics": metrics, "per_class": per_class, "class_counts": counts}


def _short(entry: RunEntry) -> Dict[str, Any]:
    return {"run_id": entry.run_id, "started": entry.started, "verdict": entry.verdict,
            "outcome": entry.outcome, "data_root": entry.data_root,
            "data_fingerprint": entry.data_fingerprint, "pushed_version": entry.pushed_version}
