"""Training settings; a plain dataclass (no TensorFlow import) so configs validate instantly."""
import dataclasses
import math
from typing import Dict

# InceptionV3 needs at least 75 px a side. Above 1024 px the activations (train and cache)
# grow with the square of the side, 12x those at 299 px: one batch of 32 no longer fits a
# common GPU or a CPU's memory, and ImageNet weights were learnt at 299 px, so nothing is
# gained in accuracy for a cost that fails late, in the Trainer, after the whole upstream ran.
IMAGE_SIZE_RANGE = (75, 1024)
# What numpy and TensorFlow accept as a seed (tf_keras.utils.set_random_seed refuses others).
SEED_RANGE = (0, 2 ** 32 - 1)
PRECISIONS = ("auto", "float32", "bfloat16", "float16")  # as precision.CHOICES (no TF import)
STAIN_NORMALIZATIONS = ("none", "reinhard")  # in the Transform graph (transform/stain.py)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of both phases (the pipeline passes them as Trainer custom_config)."""

    image_size: int = 299
    batch_size: int = 32
    phase1_epochs: int = 10
    phase1_learning_rate: float = 1e-3
    phase2_epochs: int = 5
    phase2_learning_rate: float = 1e-4
    unfreeze_blocks: int = 2
    dropout: float = 0.2
    early_stopping_patience: int = 3
    base_weights: str = "imagenet"
    use_class_weights: bool = True
    feature_cache: bool = True            # run the frozen network once per image (train.py)
    max_activation_cache_gb: float = 200.0  # disk budget of the cache; above it (or above the
    #                                         free disk) phase 2 reads images every epoch
    precision: str = "auto"               # auto | float32 | bfloat16 | float16 (precision.py)
    lr_schedule: str = "cosine"           # per phase: cosine decay to 0, or constant
    augment_flip: bool = False            # augmentation (training split only) needs
    augment_rotation: float = 0.0         # feature_cache: false, since augmented images
    augment_zoom: float = 0.0             # differ every epoch; rotation is a fraction of a
    augment_contrast: float = 0.0         # full turn, zoom of the side, contrast and
    augment_brightness: float = 0.0       # brightness factors
    stain_jitter: float = 0.0             # HED colour jitter strength (an augmentation too)
    stain_normalization: str = "none"     # none | reinhard, fitted on the training split
    seed: int = 42

    def __post_init__(self):
        problems = [f"{f.name} must be a finite number, got {getattr(self, f.name)}"
                    for f in dataclasses.fields(self)
                    if isinstance(getattr(self, f.name), float)
                    and not math.isfinite(getattr(self, f.name))]
        if problems:  # NaN passes every comparison below
            raise ValueError("; ".join(f"training.{p}" for p in problems))
        if self.image_size < IMAGE_SIZE_RANGE[0]:
            problems.append(f"image_size must be at least 75 (InceptionV3's minimum), "
                            f"got {self.image_size}")
        elif self.image_size > IMAGE_SIZE_RANGE[1]:
            problems.append(f"image_size must be at most {IMAGE_SIZE_RANGE[1]} (activations "
                            f"grow with its square), got {self.image_size}")
        if not SEED_RANGE[0] <= self.seed <= SEED_RANGE[1]:
            problems.append(f"seed must be in 0..2**32-1 (what TensorFlow accepts), "
                            f"got {self.seed}")
        for name in ("batch_size", "early_stopping_patience"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("phase1_epochs", "phase2_epochs"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.phase1_epochs == 0:
            problems.append("phase1_epochs must be at least 1: phase 1 trains the new head")
        for name in ("phase1_learning_rate", "phase2_learning_rate"):
            if not 0 < getattr(self, name) < 1:
                problems.append(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if not 0 <= self.unfreeze_blocks <= 11:
            problems.append(f"unfreeze_blocks must be 0..11 (InceptionV3 has 11 blocks), "
                            f"got {self.unfreeze_blocks}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.max_activation_cache_gb < 0:
            problems.append(f"max_activation_cache_gb must be 0 or more, "
                            f"got {self.max_activation_cache_gb}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, "
                            f"got {self.precision!r}")
        if self.lr_schedule not in ("cosine", "constant"):
            problems.append(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")
        if self.stain_normalization not in STAIN_NORMALIZATIONS:
            problems.append(f"stain_normalization must be one of "
                            f"{', '.join(STAIN_NORMALIZATIONS)}, got {self.stain_normalization!r}")
        for name in ("augment_rotation", "augment_zoom", "augment_contrast",
                     "augment_brightness", "stain_jitter"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.augments and self.feature_cache:
            problems.append("feature_cache must be false when augmentation is on: augmented "
                            "images differ every epoch, so the frozen network's outputs cannot "
                            "be computed once")
        if problems:
            raise ValueError("; ".join(f"training.{p}" for p in problems))

    @property
    def augments(self) -> bool:
        return bool(self.augment_flip or self.augment_rotation or self.augment_zoom
                    or self.augment_contrast or self.augment_brightness or self.stain_jitter)

    @classmethod
    def from_dict(cls, values: Dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**values)
