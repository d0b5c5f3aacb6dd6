"""One typed, frozen configuration for a pipeline run, from a YAML file plus flags.

Everything is checked before any work starts: unknown keys, wrong types and impossible values
stop with a message naming the key (e.g. `training.phase1_epochs`). No TensorFlow import here.
"""
import dataclasses
import difflib
import os
import typing
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from inception_retrain.components.evaluator.evidence_contract import (
    AGGREGATIONS,
    REGRESSION_RULES,
)
from inception_retrain.components.trainer.config import TrainConfig
from inception_retrain.pipeline.config_values import (
    ConfigError,
    coerce,
    nearest_choice,
    unique_key_loader,
)
from inception_retrain.pipeline.data_config import DataConfig

# Where the Evaluator's no-regression baseline comes from (see pipeline.pipeline).
BASELINES = ("served", "latest_blessed", "none")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The blessing gate: absolute floors, enough evidence, and no regression against the
    baseline model on the same examples (components.evaluator.evidence_rules)."""

    accuracy_floor: float = 0.6
    max_accuracy_drop: float = 0.0       # candidate may be at most this much below the baseline
    baseline: str = "served"             # served | latest_blessed | none; see create_pipeline
    per_class_recall_floor: float = 0.0  # every class's recall must reach it; 0 = off
    top_k: int = 5                       # top-k accuracy is reported for this k
    min_site_accuracy: float = 0.0       # the worst site's accuracy must reach it; 0 = off
    max_class_recall_drop: float = 1.0   # per class, recall vs. the baseline's; 1 = off
    # Minimum evidence for a blessing. 10 images: a class's recall of 0.9 then has a 95 %
    # interval of about [0.6, 0.98]; fewer say next to nothing. 3 slides: tiles of one slide
    # are alike, so a class seen on one or two slides is one or two observations.
    min_eval_examples_per_class: int = 10
    min_eval_groups_per_class: int = 3   # only when the data has groups (slides)
    significance_level: float = 0.05     # "better"/"worse" only when significant at this level
    # point: the paired difference >= -max_accuracy_drop (today's rule, on the paired data);
    # bound: its interval's lower bound must be (non-inferiority shown; needs a large eval set).
    regression_rule: str = "point"
    group_aggregation: str = "mean"      # mean | majority: a slide's class from its tiles
    min_group_accuracy: float = 0.0      # slide-level accuracy must reach it; 0 = off

    def __post_init__(self):
        if self.baseline not in BASELINES:
            raise ConfigError(f"evaluation.baseline must be one of {', '.join(BASELINES)}, "
                              f"got {self.baseline!r}{nearest_choice(self.baseline, BASELINES)}")
        for name, choices in (("regression_rule", REGRESSION_RULES),
                              ("group_aggregation", AGGREGATIONS)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"evaluation.{name} must be one of {', '.join(choices)}, "
                                  f"got {getattr(self, name)!r}"
                                  f"{nearest_choice(getattr(self, name), choices)}")
        for name in ("accuracy_floor", "max_accuracy_drop", "per_class_recall_floor",
                     "min_site_accuracy", "max_class_recall_drop", "min_group_accuracy"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"evaluation.{name} must be in [0, 1], "
                                  f"got {getattr(self, name)}")
        if not 0 < self.significance_level < 1:
            raise ConfigError(f"evaluation.significance_level must be in (0, 1), "
                              f"got {self.significance_level}")
        for name in ("min_eval_examples_per_class", "min_eval_groups_per_class"):
            if getattr(self, name) < 0:
                raise ConfigError(f"evaluation.{name} must be at least 0, "
                                  f"got {getattr(self, name)}")
        if self.top_k < 1:
            raise ConfigError(f"evaluation.top_k must be at least 1, got {self.top_k}")


@dataclasses.dataclass(frozen=True)
class ModelCardConfig:
    """What only the user knows, for the model card (run_rendering.model_card): never read by the
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
    webhook_url: str = ""                 # a Kubeflow run's exit task POSTs its verdict here
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
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ConfigError("webhook_url must be an http:// or https:// URL (e.g. a Slack "
                              f"incoming webhook) or \"\", got {self.webhook_url!r}")

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

    @property
    def split_ledger(self) -> str:
        """Each group's split, kept across runs (ImageExampleGen): beside the model base path,
        since the split belongs to the served model's lineage (its eval slides must never
        have been a served model's training slides), and since that folder is what every run
        (local, or a Kubeflow pod on a volume or gs://) already reads and writes by path."""
        return f"{self.push_base}.split_ledger.json"


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


def did_you_mean(key: str) -> str:
    """" (did you mean training.batch_size?)" for a mistyped key, "" when nothing is close."""
    nearest = nearest_key(key)
    return f" (did you mean {nearest}?)" if nearest else ""


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
            kwargs[name] = coerce(key, value, hints[name])
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
            loaded = yaml.load(text, Loader=unique_key_loader()) or {}
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
