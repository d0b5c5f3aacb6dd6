"""The DataGate's rules, each declared once: a GateThresholds field holds the rule's name, type,
default, help, check and the node that reads it. The configuration's `data.<rule>` keys, their
help in the config reference, the DataGate's parameters and the DAG's wiring are all derived
from these fields. Standard library only (and the node ids), so the configuration loads without
TensorFlow."""
import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from inception_retrain.components import node_ids

POLICIES = ("fail", "warn")

# check -> whether a value passes it; _MUST_BE: what its message says the value must be
_CHECKS: Dict[str, Callable[[Any], bool]] = {
    "at_least_1": lambda v: v >= 1,
    "fraction": lambda v: 0 <= v <= 1,
    "ratio": lambda v: v == 0 or v >= 1,
    "policy": lambda v: v in POLICIES,
}
_MUST_BE = {"at_least_1": "at least 1", "fraction": "in [0, 1]",
            "ratio": "0 (off) or at least 1", "policy": f"one of {', '.join(POLICIES)}"}


def _rule(default: Any, check: str, help: str, reader: str = node_ids.DATA_GATE):
    return dataclasses.field(default=default,
                             metadata={"help": help, "check": check, "reader": reader})


@dataclasses.dataclass(frozen=True)
class GateThresholds:
    """What the gate enforces. Ratios and fractions of 0 switch that check off."""

    min_examples_per_class: int = _rule(
        2, "at_least_1", "DataGate: fewer training examples in any class stop the run")
    max_quarantined_fraction: float = _rule(
        0.05, "fraction", "DataGate: more unreadable files than this share stop the run (0..1)")
    max_class_ratio: float = _rule(
        10.0, "ratio", "DataGate: largest / smallest training class; 0 = off")
    min_class_fraction: float = _rule(
        0.0, "fraction", "DataGate: smallest class's share of train (0..1); 0 = off")
    on_imbalance: str = _rule(
        "fail", "policy", "fail | warn when a class-balance rule is broken")
    max_label_drift: float = _rule(
        0.1, "fraction", "largest change of a class's share vs. the previous span; 0 = off")
    on_drift: str = _rule("warn", "policy", "fail | warn when the label drift is exceeded")
    on_group_leakage: str = _rule(
        "fail", "policy", "fail | warn when a group (slide) is in more than one split")
    on_duplicates: str = _rule(
        "warn", "policy", "fail | warn when identical files are in more than one split")
    on_label_conflict: str = _rule(
        "fail", "policy", "fail | warn when identical files carry different labels")
    on_split_coverage: str = _rule(
        "fail", "policy", "fail | warn when a class has no image (or no group) in a split")

    def __post_init__(self):
        problems = self.problems()
        if problems:
            raise ValueError(problems[0])

    def problems(self, prefix: str = "",
                 hint: Optional[Callable[[Any, Sequence[str]], str]] = None) -> List[str]:
        """A message per rule whose value its check refuses, naming prefix + rule; hint adds
        e.g. a "did you mean" for a mistyped policy."""
        found = []
        for field in dataclasses.fields(GateThresholds):
            check, value = field.metadata["check"], getattr(self, field.name)
            if not _CHECKS[check](value):
                suffix = hint(value, POLICIES) if hint and check == "policy" else ""
                found.append(f"{prefix}{field.name} must be {_MUST_BE[check]}, "
                             f"got {value!r}{suffix}")
        return found

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "GateThresholds":
        """The rules found in a mapping (e.g. a component's parameters: TFX leaves out those
        not set), the declared default for the others; other keys are ignored."""
        return cls(**{name: values[name] for name in rule_names() if name in values})


def rule_names(reader: Optional[str] = None) -> List[str]:
    """Every rule's name in declaration order; with reader, only the rules that node reads."""
    return [f.name for f in dataclasses.fields(GateThresholds)
            if reader is None or f.metadata["reader"] == reader]


DEFAULTS = GateThresholds()
