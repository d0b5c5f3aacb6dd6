"""The model card of a version `inception-retrain rollback` publishes. That version is a copy
of an earlier version's model: its card restates the earlier version's card (its JSON, in the
Model Card Toolkit's schema) and adds the rollback's facts from the push records
(serving.versions): which version it copies, which it replaced, when, and the reason given.
It claims nothing new about training, data or metrics.
"""
import copy
from typing import Any, Dict, List, Optional

from inception_retrain.components import artifact_files
from inception_retrain.run_rendering import card_json, model_card
from inception_retrain.run_rendering.model_card import md
from inception_retrain.serving import versions


def _card_of(base: str, version: int) -> str:
    return model_card.card_path(versions.version_path(base, version), version)


def rollback_facts(version: int, record: Dict[str, Any], original: Dict[str, Any],
                   carried: bool, original_card: str) -> List[str]:
    """The rollback in plain sentences, from the push records of both versions."""
    of = record["rollback_of"]
    facts = [f"Version {version} is a rollback of version {of}: a copy of its model, "
             f"published {record.get('published_at') or 'at a time not recorded'}."]
    replaced = record.get("replaced")
    facts.append(f"It replaced version {replaced}, the version served until then."
                 if replaced is not None else "It replaced no served version.")
    facts.append(f"Reason: {record['reason']}" if record.get("reason") else
                 "Reason: none given (inception-retrain rollback --reason TEXT records one).")
    if original.get("rollback_of") is not None:
        facts.append(f"Version {of} was itself a rollback of version "
                     f"{original['rollback_of']}.")
    facts.append(f"Nothing was retrained: the model, its training, data and metrics are version "
                 f"{of}'s, restated from its card ({original_card})." if carried else
                 f"Version {of}'s card was not found ({original_card}): nothing about the "
                 "model's training, data or metrics is stated here.")
    return facts


def to_json(version: int, path: str, facts: List[str], carried: Optional[Dict[str, Any]],
            published_at: Optional[str]) -> Dict[str, Any]:
    """The original card's JSON with this version's details and the rollback's facts."""
    card = {key: copy.deepcopy(value) for key, value in (carried or {}).items()
            if key in card_json.TOP_LEVEL}  # a card written before the schema was kept
    card["schema_version"] = card_json.SCHEMA_VERSION
    details = card.setdefault("model_details", {})
    earlier = details.get("documentation")
    details["documentation"] = "\n".join(facts) + (
        "\nCarried over from the original card:\n" + earlier if earlier else "")
    details["version"] = {"name": str(version), "diff": " ".join(facts)}
    date = card_json.version_date(published_at)
    if date:
        details["version"]["date"] = date
    details["path"] = path
    details.setdefault("name", path)
    return card


def _metric_line(metric: Dict[str, Any]) -> str:
    interval = metric.get("confidence_interval") or {}
    bounds = (f" (95% interval {_num(interval.get('lower_bound'))} to "
              f"{_num(interval.get('upper_bound'))})" if interval else "")
    return (f"{md(metric.get('type', '?'))} ({md(metric.get('slice', 'all'))}): "
            f"{_num(metric.get('value'))}{bounds}")


def _num(value: Any) -> str:
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return md(value)


def render(version: int, of: int, facts: List[str], carried: Optional[Dict[str, Any]]) -> str:
    """The Markdown card: the rollback's facts, then the original card's, as it states them."""
    lines = [f"# Model card: version {version} (rollback of version {of})", "",
             "## Rollback", ""] + [f"- {md(fact)}" for fact in facts] + [""]
    if not carried:
        return "\n".join(lines)
    details = carried.get("model_details") or {}
    parameters = carried.get("model_parameters") or {}
    considerations = carried.get("considerations") or {}
    lines += [f"## From the card of version {of}", ""]
    lines += [f"- {md(line)}" for line in
              [details.get("overview", "")] + (details.get("documentation") or "").splitlines()
              if line]
    lines += [f"- Owners: {', '.join(md(o.get('name', '')) for o in details['owners'])}."
              ] if details.get("owners") else []
    lines += [f"- License: {md(item.get('custom_text') or item.get('identifier'))}."
              for item in details.get("licenses") or []]
    lines += [f"- Reference: {md(item.get('reference'))}" for item in
              details.get("references") or []]
    sections = [("Data", [f"{md(d.get('name', ''))}: {md(d.get('description', ''))}"
                          for d in parameters.get("data") or []]),
                ("Metrics", [_metric_line(m) for m in (carried.get("quantitative_analysis")
                                                       or {}).get("performance_metrics") or []]),
                ("Limits", [md(item.get("description", ""))
                            for item in considerations.get("limitations") or []]),
                ("Ethical considerations", [md(item.get("name", "")) for item in
                                            considerations.get("ethical_considerations") or []])]
    for title, items in sections:
        if items:
            lines += ["", f"### {title}", ""] + [f"- {item}" for item in items]
    return "\n".join(lines + [""])


def write(base: str, version: int) -> str:
    """Writes the card of rollback version `version` under base; returns its path."""
    record = versions.read_push_record(base, version)
    of = record.get("rollback_of")
    if of is None:
        raise versions.ServingDirError(f"version {version} under {base} is not a rollback")
    original_card = model_card.json_path(_card_of(base, of))
    carried = artifact_files.read_json(original_card)
    original = versions.read_push_record(base, of)
    facts = rollback_facts(version, record, original, carried is not None, original_card)
    path = _card_of(base, version)
    model_card.write_files(path, render(version, of, facts, carried),
                           to_json(version, versions.version_path(base, version), facts,
                                   carried, record.get("published_at")))
    return path
