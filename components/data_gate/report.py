"""The data report a person opens: a Markdown file with the gate's verdict, examples per class
and split, class weights, label drift, image sizes and formats, quarantined files, anomalies."""
from typing import Any, Dict, List


def _table(header: List[str], rows: List[List[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def render(facts: Dict[str, Any], quarantine: List[Dict[str, str]], anomalies: List[str],
           sizes: Dict[str, Dict[str, Dict[str, float]]],
           formats: Dict[str, Dict[str, int]]) -> str:
    """facts: DataGate's data facts (counts, weights, verdict); sizes: {split: {width|height:
    summary}}; formats: {split: {source format: examples}}."""
    counts = facts["class_counts"]
    splits = list(counts)
    classes = sorted(set().union(*counts.values())) if counts else []
    out = ["# Data report", ""]
    if facts["failures"]:
        out += ["**Verdict: FAILED** — the pipeline stops before training:", ""]
        out += [f"- {line}" for line in facts["failures"]]
    else:
        out += ["**Verdict: passed**" + (" with warnings:" if facts["warnings"] else ".")]
    if facts["warnings"]:
        out += [""] + [f"- warning: {line}" for line in facts["warnings"]]
    out += ["", f"Span {facts.get('span', 0)}; files quarantined: {facts['quarantined']}, "
                f"hidden files skipped: {facts['skipped']}.", "",
            "## Examples per class and split", ""]
    weights = facts["class_weights"]
    out += _table(["class"] + splits + ["total", "class weight"],
                  [[c] + [counts[s].get(c, 0) for s in splits]
                   + [sum(counts[s].get(c, 0) for s in splits), f"{weights.get(c, 0):.3f}"]
                   for c in classes]
                  + [["**total**"] + [sum(counts[s].values()) for s in splits]
                     + [sum(sum(counts[s].values()) for s in splits), ""]])
    drift = facts.get("label_drift")
    out += ["", "## Label drift", ""]
    if drift:
        out.append(f"L-infinity distance to span {drift['previous_span']}: "
                   f"{drift['distance']:.3f} (largest for class {drift['class']}; threshold "
                   f"{drift['threshold']:g}). Previous span's files per class: "
                   + ", ".join(f"{c}: {n}" for c, n in sorted(drift["previous_counts"].items())))
    else:
        out.append("No previous span to compare with (use a `{SPAN}` input pattern).")
    out += ["", "## Image sizes (pixels, as stored)", ""]
    out += _table(["split", "dimension", "min", "median", "mean", "max"],
                  [[split, dim, *(summary[k] for k in ("min", "median", "mean", "max"))]
                   for split, by_dim in sizes.items() for dim, summary in by_dim.items()])
    out += ["", "## Source formats", ""]
    out += _table(["split"] + sorted(set().union(*formats.values())) if formats else ["split"],
                  [[split] + [by_format.get(f, 0) for f in sorted(set().union(*formats.values()))]
                   for split, by_format in formats.items()])
    out += ["", f"## Quarantined files ({len(quarantine)})", ""]
    if quarantine:
        out += _table(["file", "category", "reason"],
                      [[f"`{r['relative_path']}`", r.get("category", ""),
                        r["reason"].replace("|", "/")] for r in quarantine])
    else:
        out.append("None.")
    out += ["", "## Schema anomalies", ""]
    out += [f"- {line}" for line in anomalies] or ["None."]
    return "\n".join(out) + "\n"
