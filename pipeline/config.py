"""One typed, frozen configuration for a pipeline run, from a YAML file plus flags.

Everything is checked before any work starts: unknown keys, wrong types and impossible values
stop with a message naming the key (e.g. `training.phase1_epochs`). No TensorFlow import here.
"""
import dataclasses
import difflib
import math
import os
import posixpath
import typing
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from inception_retrain.components.data_gate.thresholds import DEFAULTS as _GATE
from inception_retrain.components.image_example_gen.ingest import IngestOptions
from inception_retrain.components.trainer.config import TrainConfig

_INGEST = IngestOptions()  # the ingest limits' defaults, written once in IngestOptions


class ConfigError(ValueError):
    """A configuration value is unknown, mistyped or impossible; the message names the key."""


# Where the Evaluator's no-regression baseline comes from (see pipeline.pipeline).
BASELINES = ("served", "latest_blessed", "none")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the images are and how they are split and gated."""

    root: str = ""                        # <root>/<class_name>/<image files>; "" = embedded default
    train_percent: int = 70
    eval_percent: int = 20
    test_percent: int = 10
    min_examples_per_class: int = _GATE.min_examples_per_class  # in the train split
    max_quarantined_fraction: float = _GATE.max_quarantined_fraction
    input_pattern: str = "*/*"            # <class>/<file> below root; "span-{SPAN}/*/*": spans
    split_folders: Tuple[str, ...] = ()   # the user's own train, eval[, test] folders: train val
    hidden_files: str = _INGEST.hidden_files  # error | skip (each listed in the quarantine)
    max_image_bytes: int = _INGEST.max_file_bytes
    max_image_pixels: int = _INGEST.max_pixels  # refused above this (decompression bombs)
    max_image_side: int = _INGEST.max_side      # downscaled to this longest side; 0 = keep all
    max_class_ratio: float = _GATE.max_class_ratio        # largest / smallest in train; 0 = off
    min_class_fraction: float = _GATE.min_class_fraction  # smallest class's share; 0 = off
    on_imbalance: str = _GATE.on_imbalance                # fail | warn
    max_label_drift: float = _GATE.max_label_drift        # L-inf. to the previous span; 0 = off
    on_drift: str = _GATE.on_drift                        # fail | warn
    group_pattern: str = _INGEST.group_pattern  # regex with (?P<group>...): the slide of a tile
    site_pattern: str = _INGEST.site_pattern    # regex with (?P<site>...): the lab of an image
    manifest: str = _INGEST.manifest            # CSV below root (path,label[,group][,site])
    on_group_leakage: str = _GATE.on_group_leakage    # fail | warn: a group in two splits
    on_duplicates: str = _GATE.on_duplicates          # fail | warn: same file in two splits
    on_label_conflict: str = _GATE.on_label_conflict  # fail | warn: same file, two labels

    def __post_init__(self):
        splits = (self.train_percent, self.eval_percent, self.test_percent)
        if any(p < 0 for p in splits) or sum(splits) != 100:
            raise ConfigError(f"data.train_percent + eval_percent + test_percent must be "
                              f"non-negative and add up to 100, got {splits}")
        if self.train_percent == 0 or self.eval_percent == 0:
            raise ConfigError("data.train_percent and data.eval_percent must be above 0")
        if self.min_examples_per_class < 1:
            raise ConfigError("data.min_examples_per_class must be at least 1, "
                              f"got {self.min_examples_per_class}")
        if not 0 <= self.max_quarantined_fraction <= 1:
            raise ConfigError("data.max_quarantined_fraction must be in [0, 1], "
                              f"got {self.max_quarantined_fraction}")
        self._check_ingest_keys()

    def _check_ingest_keys(self):
        if len(self.input_pattern.strip("/").split("/")) < 2:
            raise ConfigError("data.input_pattern must end with <class folder>/<file>, e.g. "
                              f"'*/*' or 'span-{{SPAN}}/*/*', got {self.input_pattern!r}")
        if self.split_folders and len(self.split_folders) not in (2, 3):
            raise ConfigError("data.split_folders names the train, eval and optional test "
                              f"folders, e.g. 'train val test', got {self.split_folders!r}")
        _check_split_folders(self.split_folders)
        choices = {"hidden_files": ("error", "skip"), "on_imbalance": ("fail", "warn"),
                   "on_drift": ("fail", "warn"), "on_group_leakage": ("fail", "warn"),
                   "on_duplicates": ("fail", "warn"), "on_label_conflict": ("fail", "warn")}
        from inception_retrain.components.image_example_gen.ingest import pattern_problem

        for key, name in (("group_pattern", "group"), ("site_pattern", "site")):
            problem = pattern_problem(key, getattr(self, key), name)
            if problem:
                raise ConfigError(problem)
        if self.manifest:
            normal = posixpath.normpath(self.manifest)
            if (normal.startswith(("/", "../")) or normal == ".." or "://" in self.manifest
                    or any(c in self.manifest for c in "*?[{")):
                raise ConfigError("data.manifest must be a CSV file below the data root, "
                                  f"without wildcards, e.g. tiles.csv, got {self.manifest!r}")
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"data.{key} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(self, key)!r}"
                                  f"{nearest_choice(getattr(self, key), allowed)}")
        for key in ("max_image_bytes", "max_image_pixels"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key} must be at least 1, got {getattr(self, key)}")
        if self.max_image_side < 0:
            raise ConfigError(f"data.max_image_side must be 0 (off) or more, "
                              f"got {self.max_image_side}")
        if self.max_class_ratio != 0 and self.max_class_ratio < 1:
            raise ConfigError("data.max_class_ratio must be 0 (off) or at least 1, "
                              f"got {self.max_class_ratio}")
        for key in ("min_class_fraction", "max_label_drift"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"data.{key} must be in [0, 1], got {getattr(self, key)}")

    def ingest_options(self) -> IngestOptions:
        """Per-image limits and hidden-file policy, as ImageExampleGen and preflight use them."""
        return IngestOptions(max_file_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels,
                             max_side=self.max_image_side, hidden_files=self.hidden_files,
                             group_pattern=self.group_pattern, site_pattern=self.site_pattern,
                             manifest=posixpath.normpath(self.manifest) if self.manifest
                             else "")

    @property
    def splits(self) -> Tuple[Tuple[str, int], ...]:
        """(split, percent) of the hash split; with split_folders, the folders' splits (the
        percentages then do not apply)."""
        if self.split_folders:
            return tuple((name, 0) for name in ("train", "eval", "test")[:len(self.split_folders)])
        named = (("train", self.train_percent), ("eval", self.eval_percent),
                 ("test", self.test_percent))
        return tuple((name, pct) for name, pct in named if pct > 0)


def _check_split_folders(folders: Sequence[str]) -> None:
    """Each split folder its own: the same folder twice (or one inside another) would
    evaluate the model on its training images and bless it on them."""
    names = ("train", "eval", "test")
    parts = []
    for name, folder in zip(names, folders):
        normal = posixpath.normpath(folder.strip()) if folder.strip() else ""
        if normal in ("", ".") or normal.startswith(("/", "../")) or normal == "..":
            raise ConfigError(f"data.split_folders: the {name} folder must be a folder below "
                              f"the data root, got {folder!r}")
        parts.append((name, folder, tuple(normal.split("/"))))
    for i, (name, folder, path) in enumerate(parts):
        for other_name, other, other_path in parts[i + 1:]:
            shorter = min(len(path), len(other_path))
            if path[:shorter] == other_path[:shorter]:
                how = "the same folder" if path == other_path else "nested in each other"
                raise ConfigError(
                    f"data.split_folders: the {name} folder {folder!r} and the {other_name} "
                    f"folder {other!r} are {how}; each split needs its own folder, or the "
                    f"model is evaluated on images it was trained on")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The blessing gate: absolute floors, and no regression against the baseline model."""

    accuracy_floor: float = 0.6
    max_accuracy_drop: float = 0.0       # candidate may be at most this much below the baseline
    baseline: str = "served"             # served | latest_blessed | none; see create_pipeline
    per_class_recall_floor: float = 0.0  # every class's recall must reach it; 0 = off
    top_k: int = 5                       # top-k accuracy is reported for this k
    min_site_accuracy: float = 0.0       # the worst site's accuracy must reach it; 0 = off
    max_class_recall_drop: float = 1.0   # per class, recall vs. the baseline's; 1 = off

    def __post_init__(self):
        if self.baseline not in BASELINES:
            raise ConfigError(f"evaluation.baseline must be one of {', '.join(BASELINES)}, "
                              f"got {self.baseline!r}{nearest_choice(self.baseline, BASELINES)}")
        for name in ("accuracy_floor", "max_accuracy_drop", "per_class_recall_floor",
                     "min_site_accuracy", "max_class_recall_drop"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"evaluation.{name} must be in [0, 1], "
                                  f"got {getattr(self, name)}")
        if self.top_k < 1:
            raise ConfigError(f"evaluation.top_k must be at least 1, got {self.top_k}")


@dataclasses.dataclass(frozen=True)
class ModelCardConfig:
    """What only the user knows, for the model card (run_report.model_card): never read by the
    DAG, so changing it retrains nothing."""

    owners: Tuple[str, ...] = ()                 # people or teams, e.g. [Pathology ML <ml@lab>]
    license: str = ""                            # e.g. CC-BY-4.0, proprietary
    ethical_considerations: Tuple[str, ...] = ()  # risks and how they are handled, one per item
    references: Tuple[str, ...] = ()             # links: protocol, data sheet, publication

    def __post_init__(self):
        for name in ("owners", "ethical_considerations", "references"):
            if any(not item.strip() for item in getattr(self, name)):
                raise ConfigError(f"model_card.{name} holds an empty entry")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """A whole run. Relative paths are resolved against the working directory by `load`."""

    pipeline_name: str = "inception-retrain"
    work_dir: str = "runs/local"          # pipeline_root/ and metadata.sqlite live here
    serving_dir: str = ""                 # TF Serving base path; "" = <work_dir>/serving
    model_name: str = "inception_v3"      # pushes go to <serving_dir>/<model_name>/<version>/
    keep_versions: int = 5                # version directories kept in the push destination
    enable_cache: bool = True
    beam_args: Tuple[str, ...] = ()       # e.g. --direct_running_mode=multi_processing
    data: DataConfig = DataConfig()
    training: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    model_card: ModelCardConfig = ModelCardConfig()

    def __post_init__(self):
        if not self.pipeline_name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError("pipeline_name may hold only letters, digits, '-' and '_', "
                              f"got {self.pipeline_name!r}")
        if not self.model_name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError("model_name may hold only letters, digits, '-' and '_', "
                              f"got {self.model_name!r}")
        if self.keep_versions < 1:
            raise ConfigError(f"keep_versions must be at least 1, got {self.keep_versions}")

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.work_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.work_dir, "metadata.sqlite")

    @property
    def push_base(self) -> str:
        """The directory TF Serving's --model_base_path points at."""
        return os.path.join(self.serving_dir or os.path.join(self.work_dir, "serving"),
                            self.model_name)


_SECTIONS = {"data": DataConfig, "training": TrainConfig, "evaluation": EvaluationConfig,
             "model_card": ModelCardConfig}


def known_keys() -> Tuple[str, ...]:
    """Every key as a file or --set writes it (sections flattened with dots)."""
    keys = []
    for field in dataclasses.fields(PipelineConfig):
        if field.name in _SECTIONS:
            keys += [f"{field.name}.{f.name}" for f in dataclasses.fields(_SECTIONS[field.name])]
        else:
            keys.append(field.name)
    return tuple(keys)


def nearest_key(key: str) -> Optional[str]:
    """The known key a mistyped one most likely meant: the same name in another section
    (batch_size -> training.batch_size), else the closest spelling; None if none is close."""
    keys = known_keys()
    name = key.rsplit(".", 1)[-1]
    same_name = [k for k in keys if k.rsplit(".", 1)[-1] == name and k != key]
    if len(same_name) == 1:
        return same_name[0]
    close = difflib.get_close_matches(key, keys + tuple(_SECTIONS), n=1, cutoff=0.7)
    if close:
        return close[0]
    by_name = {k.rsplit(".", 1)[-1]: k for k in keys}
    close = difflib.get_close_matches(name, list(by_name), n=1, cutoff=0.75)
    return by_name[close[0]] if close else None


def nearest_choice(value: Any, allowed: Sequence[str]) -> str:
    """" (did you mean warn?)" for a mistyped choice, "" when nothing is close."""
    close = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def did_you_mean(key: str) -> str:
    """" (did you mean training.batch_size?)" for a mistyped key, "" when nothing is close."""
    nearest = nearest_key(key)
    return f" (did you mean {nearest}?)" if nearest else ""


def _parse_string_list(key: str, text: str) -> Any:
    """A list from a flag: YAML's `[a, b]` (as in config files) or space-separated `a b`."""
    if not text.strip().startswith("["):
        return text.split()
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{key}: {text!r} is not a list like [a, b]: {err}") from None


def _coerce(key: str, value: Any, annotation) -> Any:
    """Checks one value against its field type; strings from flags are parsed."""
    origin = typing.get_origin(annotation)
    if origin in (tuple, Tuple):
        if isinstance(value, str):
            value = _parse_string_list(key, value)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings, got {value!r}")
        return tuple(value)
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if annotation in (int, float):
        if isinstance(value, str):
            try:
                value = annotation(value)
            except ValueError:
                raise ConfigError(f"{key} must be a number ({annotation.__name__}), "
                                  f"got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                annotation is int and not float(value).is_integer()):
            raise ConfigError(f"{key} must be {'an integer' if annotation is int else 'a number'}"
                              f", got {value!r}")
        if not math.isfinite(value):  # NaN passes every range check; inf is no setting
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return annotation(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key} cannot be set")


def _build(cls, values: Mapping[str, Any], prefix: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s): "
                          f"{', '.join(prefix + k + did_you_mean(prefix + k) for k in unknown)}"
                          f"; known: {', '.join(prefix + k for k in sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        key = prefix + name
        if name in _SECTIONS and cls is PipelineConfig:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key} must be a section (a mapping of keys), got {value!r}")
            kwargs[name] = _build(_SECTIONS[name], value, key + ".")
        else:
            kwargs[name] = _coerce(key, value, hints[name])
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(str(err)) from None


def parse_overrides(assignments: Sequence[str]) -> Dict[str, Any]:
    """`section.key=value` strings into a nested dict."""
    nested: Dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value (e.g. training.phase1_epochs=3), "
                              f"got {assignment!r}")
        parts = key.strip().split(".")
        target = nested
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"{key} mixes a value and a section")
        target[parts[-1]] = value.strip()
    return nested


def _merge(base: Dict[str, Any], override: Mapping[str, Any]) -> Dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load(config_file: Optional[str] = None, overrides: Mapping[str, Any] = (),
         base_dir: Optional[str] = None) -> PipelineConfig:
    """File values, then overrides; relative paths made absolute against base_dir (cwd)."""
    values: Dict[str, Any] = {}
    if config_file:
        import yaml

        try:
            with open(config_file, "rb") as f:
                text = f.read().decode("utf-8")
            loaded = yaml.load(text, Loader=_unique_key_loader()) or {}
        except OSError as err:
            raise ConfigError(f"cannot read config file {config_file!r}: {err}") from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"config file {config_file!r} is not UTF-8 text: byte "
                              f"{err.object[err.start:err.start + 1]!r} at offset {err.start}"
                              ) from None
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {config_file!r} is not valid YAML: {err}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file!r} must hold a mapping of keys")
        values = loaded
    config = _build(PipelineConfig, _merge(values, dict(overrides)), "")
    return resolve_paths(config, base_dir or os.getcwd())


def _unique_key_loader():
    """yaml.SafeLoader refusing a key given twice in one mapping (PyYAML keeps the last one
    silently, so a second `training:` section would replace the first)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first on line {first}, again on "
                        f"line {line}); give each key once", key_node.start_mark)
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def resolve_paths(config: PipelineConfig, base_dir: str) -> PipelineConfig:
    def absolute(path: str) -> str:
        if not path or "://" in path:
            return path
        path = os.path.expanduser(path)  # ~ in YAML files and --set (a shell expands only flags)
        if os.path.isabs(path):
            return path
        return os.path.normpath(os.path.join(base_dir, path))

    return dataclasses.replace(
        config, work_dir=absolute(config.work_dir), serving_dir=absolute(config.serving_dir),
        data=dataclasses.replace(config.data, root=absolute(config.data.root)),
        training=dataclasses.replace(
            config.training,
            base_weights=config.training.base_weights
            if config.training.base_weights in ("imagenet", "none")
            else absolute(config.training.base_weights)))


def to_dict(config: PipelineConfig) -> Dict[str, Any]:
    """Plain nested dict (for the run summary and the compiled pipeline's record)."""
    values = dataclasses.asdict(config)
    values["beam_args"] = list(config.beam_args)
    return values


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_yaml(config: PipelineConfig) -> str:
    """The resolved configuration as YAML, the format --config reads (it loads back as the
    same configuration)."""
    import yaml

    return yaml.safe_dump(_plain(to_dict(config)), sort_keys=False, allow_unicode=True,
                          default_flow_style=False)
