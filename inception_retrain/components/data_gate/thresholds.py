"""The DataGate's rules as one typed value, and their defaults, written once: the DataGate
component and pipeline.config's data section take theirs from here. No imports beyond the
standard library, so the configuration loads without TensorFlow."""
import dataclasses

POLICIES = ("fail", "warn")


@dataclasses.dataclass(frozen=True)
class GateThresholds:
    """What the gate enforces. Ratios and fractions of 0 switch that check off."""

    min_examples_per_class: int = 2          # in the train split
    max_quarantined_fraction: float = 0.05   # bad files / all files
    max_class_ratio: float = 10.0            # largest / smallest class in the train split
    min_class_fraction: float = 0.0          # smallest class / train split
    on_imbalance: str = "fail"               # "fail" stops the pipeline, "warn" records it
    max_label_drift: float = 0.1             # L-infinity distance to the previous span
    on_drift: str = "warn"
    on_group_leakage: str = "fail"           # a group (slide) in more than one split
    on_duplicates: str = "warn"              # identical files in more than one split
    on_label_conflict: str = "fail"          # identical files under more than one label
    on_split_coverage: str = "fail"          # a class absent from a split (eval, test, ...)

    def __post_init__(self):
        for name in ("on_imbalance", "on_drift", "on_group_leakage", "on_duplicates",
                     "on_label_conflict", "on_split_coverage"):
            if getattr(self, name) not in POLICIES:
                raise ValueError(f"{name} must be one of {POLICIES}, got {getattr(self, name)!r}")


DEFAULTS = GateThresholds()
