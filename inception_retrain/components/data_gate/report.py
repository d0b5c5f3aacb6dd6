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
    out += split_section(facts.get("split"), facts.get("leakage"))
    out += slide_section(facts.get("slides"))
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


def slide_section(accounts) -> List[str]:
    """Per whole-slide image: tiles kept, background skipped, dropped at the edge, and the level
    and scale read; nothing when no slide was tiled."""
    if not accounts:
        return []
    out = ["", f"## Whole-slide images ({len(accounts)})", ""]
    out += _table(["slide", "tiles kept", "background skipped", "dropped (out of bounds)",
                   "dropped (blurry)", "outside annotated regions", "um/px", "level (downsample)", "scale read"],
                  [[f"`{a['slide']}`", a["tiles_kept"], a["background_skipped"],
                    a["dropped_out_of_bounds"], a.get("dropped_blurry", 0),
                    a.get("outside_regions", 0), f"{a['mpp']:g}",
                    f"{a['level']} ({a['level_downsample']:g}x)", f"{a['scale']:g}"]
                   for a in accounts])
    return out


def split_section(split, leakage) -> List[str]:
    """The split (groups per split, images per group, distance of each split's class balance
    from the whole) and the leakage checks; nothing for a run without ImageExampleGen's index."""
    if not split:
        return []
    out = ["", "## Split", ""]
    out.append(f"Split by group: {split['groups']} groups (slides), every image of a group in "
               "one split." if split["grouped"] else
               "Split per image: no group key (data.group_pattern or a manifest's group "
               "column), so tiles of one slide can land in different splits.")
    if split.get("method"):
        out.append(f"Assignment: {split['method']}.")
    out.append("")
    classes = sorted(set().union(*(s.get("classes", {}) for s in split["splits"].values())))
    if classes:
        out += _table(["class"] + [f"{name}: images (groups)" for name in split["splits"]],
                      [[c] + [f"{s['classes'].get(c, {}).get('images', 0)} "
                              f"({s['classes'].get(c, {}).get('groups', 0)})"
                              for s in split["splits"].values()] for c in classes])
        out.append("")
    rows = []
    for name, s in split["splits"].items():
        dist = s["images_per_group"]
        rows.append([name, s["images"], s["groups"],
                     " / ".join(str(dist.get(k, "")) for k in ("min", "median", "max")),
                     f"{s['class_balance_distance']:.3f} ({s['class_balance_worst']})",
                     ", ".join(f"{k}: {v}" for k, v in s["sites"].items()) or "-"])
    out += _table(["split", "images", "groups", "images per group (min / median / max)",
                   "class balance vs. all (L-inf., class)", "images per site"], rows)
    if split.get("sites"):
        out += ["", "Groups per site: " + ", ".join(f"{k}: {v}"
                                                   for k, v in split["sites"].items())]
    if leakage is None:
        return out
    out += ["", "## Leakage checks", ""]
    groups = leakage["groups_in_several_splits"]
    out.append(f"- groups in more than one split: {leakage['groups_in_several_splits_count']}"
               + (": " + ", ".join(f"`{g}` ({', '.join(s)})" for g, s in groups.items())
                  if groups else ""))
    out.append(f"- identical files in more than one split: "
               f"{leakage['duplicates_across_splits_count']}")
    for entries in leakage["duplicates_across_splits"].values():
        out.append("  - " + ", ".join(f"`{e[2]}` ({e[0]})" for e in entries))
    out.append(f"- identical files under more than one label: "
               f"{leakage['label_conflicts_count']}")
    for entries in leakage["label_conflicts"].values():
        out.append("  - " + ", ".join(f"`{e[2]}` ({e[1]})" for e in entries))
    within = leakage["duplicates_within_class"]
    out.append("- extra copies within one class and split: "
               + (", ".join(f"{split_name}/{label}: {n}" for split_name, by_label in
                            within.items() for label, n in by_label.items()) or "0"))
    return out
