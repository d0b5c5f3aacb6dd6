"""The split's memory: ImageExampleGen's assignment of groups to splits (split_assignment),
recorded in the Examples artifact, and the ledger of every group's split beside the model
base path, so later ingests keep earlier groups where they were. Files through tf.io.gfile (local
paths and object stores alike)."""
import datetime
import json
import logging
import posixpath
from typing import Any, Dict, List, Mapping, Tuple

import tensorflow as tf

from inception_retrain.components.image_example_gen import split_assignment


def group_label(example, index_record) -> Tuple[Tuple[str, str], int]:
    """((group, label), 1) of one tf.Example, index_record reading its fields."""
    record = index_record(example)
    return (record["group"], record["label"]), 1


def assign_groups(counts: List[Tuple[Tuple[str, str], int]], shares: List[Tuple[str, int]],
                  ledger: Mapping[str, str], record_path: str) -> Dict[str, str]:
    """{group: split} from ((group, label), images) counts; writes the split record (method,
    groups kept from the ledger and new, images and groups per split and class) to
    record_path. One task does this (a retried one writes the same record)."""
    groups: Dict[str, Dict[str, int]] = {}
    for (group, label), n in counts:
        groups.setdefault(group, {})[label] = n
    assignment = split_assignment.assign(groups, shares, ledger)
    kept = sum(1 for g in groups if ledger.get(g) == assignment[g])
    record = {"method": split_assignment.METHOD, "shares": dict(shares),
              "groups_kept": kept, "groups_new": len(groups) - kept,
              "counts": split_assignment.split_counts(groups, assignment,
                                                      [n for n, _ in shares]),
              "assignment": {g: {"split": assignment[g],
                                 "stratum": split_assignment.majority_class(groups[g])}
                             for g in sorted(groups)}}
    if record_path:
        _write_json_atomically(record_path, record)
    return assignment


def _write_json_atomically(path: str, value: Any) -> None:
    """The whole file written under a temporary name, then renamed over path."""
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        json.dump(value, f, sort_keys=True)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def update_ledger(path: str, ledger: Dict[str, Dict[str, str]], record: Dict[str, Any]) -> None:
    """Adds this ingest's new groups to the ledger at path (written whole to a temporary file,
    then renamed over the old one); nothing without a ledger path or a split record."""
    new = {g: e for g, e in (record.get("assignment") or {}).items()
           if ledger.get(g, {}).get("split") != e["split"]}
    if not path or not new:
        return
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    groups = dict(ledger)
    groups.update({g: dict(e, assigned=now) for g, e in new.items()})
    _write_json_atomically(path, {"method": split_assignment.METHOD, "groups": groups})
    logging.info("split ledger %s: %d group(s) added", path, len(new))
