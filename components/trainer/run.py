"""TFX Trainer entry point: a thin adapter from FnArgs to train() and export()."""
import os

import tensorflow_transform as tft

from components.trainer import export, train

REPORT_FILE = "training_report.json"


def run_fn(fn_args) -> None:
    """Called by TFX's Trainer (GenericExecutor)."""
    config = train.TrainConfig.from_dict(dict(fn_args.custom_config or {}))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    data_facts = fn_args.hyperparameters or {}
    result = train.train(train.list_files(fn_args.train_files),
                         train.list_files(fn_args.eval_files), tf_transform_output, config,
                         class_weights=data_facts.get("class_weights"))
    export.export(result, tf_transform_output, fn_args.serving_model_dir)
    result.report["class_counts"] = data_facts.get("class_counts")
    train.write_report(result.report, os.path.join(fn_args.model_run_dir, REPORT_FILE))
