"""Every configuration key with a one-line description, and the commented example file that
`inception-retrain config --example` prints (all keys, their defaults, loads back unchanged).

The keys and defaults come from the dataclasses in pipeline.config, so the example cannot
drift from the code; tests/unit/pipeline/test_config.py fails when a key has no description here.
"""
import dataclasses
import json
from typing import Any, Dict, List

from inception_retrain.components.data_gate.thresholds import GateThresholds
from inception_retrain.pipeline import config as config_lib

SECTION_DESCRIPTIONS = {
    "data": "where the images are, how they are split, and the DataGate's rules",
    "training": "the two-phase InceptionV3 fine-tune",
    "evaluation": "the blessing gate: a model is pushed only if it passes all of these",
    "model_card": "what only you know, for each version's model card (never retrains)",
}

DESCRIPTIONS = {
    "pipeline_name": "name in ML Metadata; letters, digits, - and _",
    "work_dir": "pipeline_root/, metadata.sqlite, logs/ and reports/ live here",
    "serving_dir": "TF Serving base path; \"\" = <work_dir>/serving",
    "model_name": "pushes go to <serving_dir>/<model_name>/<version>/",
    "keep_versions": "version directories kept in the push destination (>= 1)",
    "enable_cache": "reuse a component's outputs when its inputs and settings are unchanged",
    "beam_args": "Beam options, e.g. [--direct_running_mode=multi_processing, "
                 "--direct_num_workers=2]",
    "webhook_url": "Kubeflow: the exit task POSTs each run's verdict here ({\"text\": ...}, "
                   "Slack-compatible); \"\" = no message; also a runtime parameter",
    "data.root": "<root>/<class_name>/<image files>; \"\" = the embedded default dataset",
    "data.train_percent": "split shares: whole groups, stratified by class (train + eval + "
                          "test = 100)",
    "data.eval_percent": "the Evaluator's split (> 0)",
    "data.test_percent": "held out, evaluated once on a blessed model; 0 = no test split",
    "data.input_pattern": "files below root: <class>/<file>; 'span-{SPAN}/*/*' for spans",
    "data.split_folders": "your own split folders instead of the assigned split, e.g. "
                          "[train, val, test]",
    "data.hidden_files": "error | skip (skipped files are listed in the quarantine)",
    "data.max_image_bytes": "larger files are quarantined",
    "data.max_image_pixels": "larger images are quarantined (decompression bombs)",
    "data.max_image_side": "longer sides are downscaled to this at ingest; 0 = keep every size",
    "data.group_pattern": "regex with (?P<group>...) on the file name, then the path: the "
                          "slide; the split keeps it whole; \"\" = split per image",
    "data.site_pattern": "regex with (?P<site>...) on the file name, then the path: the lab; "
                         "results per site",
    "data.manifest": "CSV below root, one row per image: path,label[,group][,site]; "
                     "instead of class folders",
    "data.slide_tile_um": "whole-slide images: tile side in micrometres (128 = 256 px at "
                          "0.5 um/px)",
    "data.slide_tile_px": "whole-slide tiles are stored at this many pixels per side",
    "data.slide_stride_um": "whole-slide tile grid step in micrometres; 0 = the tile side",
    "data.slide_min_tissue": "whole-slide tiles with less tissue than this share are skipped "
                             "(0..1)",
    "data.slide_default_mpp": "microns per pixel for slides that state none; 0 = quarantine "
                              "them",
    "data.slide_min_sharpness": "whole-slide tiles whose Laplacian variance is below this are "
                                "dropped as blurry; 0 = off",
    "training.image_size": "pixels per side fed to InceptionV3 (75..1024)",
    "training.batch_size": "examples per training step",
    "training.phase1_epochs": "phase 1: the new head on the frozen network (>= 1)",
    "training.phase1_learning_rate": "phase 1 learning rate (0..1)",
    "training.phase2_epochs": "phase 2: top blocks unfrozen; 0 = head only",
    "training.phase2_learning_rate": "phase 2 learning rate, lower than phase 1's (0..1)",
    "training.unfreeze_blocks": "top inception blocks trained in phase 2 (0..11)",
    "training.dropout": "before the new dense layer (0..1)",
    "training.early_stopping_patience": "epochs without a better val_loss before a phase stops",
    "training.base_weights": "imagenet | none | /path/to/weights.h5 (offline: see README)",
    "training.use_class_weights": "weight the loss by the DataGate's class weights",
    "training.feature_cache": "run the frozen network once per image; false for augmentation",
    "training.max_activation_cache_gb": "disk for the cache; beyond it or the free disk, phase "
                                        "2 reads images every epoch",
    "training.precision": "auto (bfloat16 on CPUs with AMX or avx512_bf16, float16 on GPUs) "
                          "| float32 | bfloat16 | float16",
    "training.lr_schedule": "cosine | constant, per phase",
    "training.augment_flip": "random horizontal flips (augment_* need feature_cache: false)",
    "training.augment_rotation": "random rotation, a fraction of a full turn (0..1)",
    "training.augment_zoom": "random zoom, a fraction of the side (0..1)",
    "training.augment_contrast": "random contrast factor (0..1)",
    "training.augment_brightness": "random brightness factor (0..1)",
    "training.stain_jitter": "HED stain jitter strength, e.g. 0.05 (0..1; feature_cache: false)",
    "training.stain_normalization": "none | reinhard (fitted on train, in the served model)",
    "training.seed": "seed for initialisation, shuffling and augmentation (0..2**32-1)",
    "evaluation.accuracy_floor": "eval accuracy must reach this (0..1)",
    "evaluation.max_accuracy_drop": "paired accuracy difference vs. the baseline may be at "
                                    "most this much below 0 (0..1)",
    "evaluation.baseline": "served | latest_blessed | none: what the no-regression check "
                           "compares with",
    "evaluation.per_class_recall_floor": "every class's recall must reach this; 0 = off",
    "evaluation.top_k": "top-k accuracy is reported for this k",
    "evaluation.min_site_accuracy": "the worst site's eval accuracy must reach this; 0 = off",
    "evaluation.max_class_recall_drop": "each class's recall may be at most this much below "
                                        "the baseline's; 1 = off",
    "evaluation.min_eval_examples_per_class": "fewer eval images in any class: not blessed "
                                              "(not enough evidence)",
    "evaluation.min_eval_groups_per_class": "grouped data: fewer eval slides in any class: "
                                            "not blessed",
    "evaluation.significance_level": "the paired test calls a change better or worse only "
                                     "below this p (0..1)",
    "evaluation.regression_rule": "point | bound: the paired difference, or its interval's "
                                  "lower bound, vs. -max_accuracy_drop",
    "evaluation.group_aggregation": "mean | majority: a slide's class from its tiles' mean "
                                    "score or vote",
    "evaluation.min_group_accuracy": "grouped data: slide-level eval accuracy must reach "
                                     "this; 0 = off",
    "model_card.owners": "who answers for the model, e.g. [Pathology ML <ml@lab.example>]",
    "model_card.license": "the model's license, e.g. CC-BY-4.0 or proprietary",
    "model_card.ethical_considerations": "risks and how they are handled, one entry each",
    "model_card.references": "links: protocol, data sheet, publication",
    # the DataGate's rules: their help is declared with the rule (GateThresholds' fields)
    **{f"data.{field.name}": field.metadata["help"]
       for field in dataclasses.fields(GateThresholds)},
}


def all_keys() -> List[str]:
    """Every configuration key as written in a file or --set, sections flattened with dots."""
    keys = []
    for field in dataclasses.fields(config_lib.PipelineConfig):
        if dataclasses.is_dataclass(field.default):
            keys += [f"{field.name}.{f.name}" for f in dataclasses.fields(field.default)]
        else:
            keys.append(field.name)
    return keys


def _scalar(value: Any) -> str:
    """A YAML scalar that reads back as the same Python value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text if "e" not in text else f"{value:.12f}".rstrip("0")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return json.dumps(value)  # a JSON string is a valid YAML string


def _lines(values: Dict[str, Any], prefix: str, indent: str) -> List[str]:
    rendered = [(f"{indent}{name}: {_scalar(value)}", DESCRIPTIONS[prefix + name])
                for name, value in values.items()]
    width = max(len(text) for text, _ in rendered) + 2
    return [f"{text:<{width}}# {comment}" for text, comment in rendered]


def example_yaml() -> str:
    """The commented YAML of every key with its default."""
    defaults = dataclasses.asdict(config_lib.PipelineConfig())
    out = ["# inception-retrain configuration: every key with its default.",
           "# Use with: inception-retrain run --config FILE [--set section.key=value ...]",
           "# Unknown keys, wrong types and impossible values stop before any work starts.",
           ""]
    top = {k: v for k, v in defaults.items() if not isinstance(v, dict)}
    out += _lines(top, "", "")
    for section, values in defaults.items():
        if isinstance(values, dict):
            out += ["", f"{section}:  # {SECTION_DESCRIPTIONS[section]}"]
            out += _lines(values, f"{section}.", "  ")
    return "\n".join(out) + "\n"
