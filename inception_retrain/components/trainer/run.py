"""TFX Trainer entry point: a thin adapter from FnArgs to train() and export()."""
import hashlib
import json
import os

import tensorflow_transform as tft

from inception_retrain.components.trainer import (
    contract,
    distribute,
    export,
    provenance,
    train,
)


def resume_dir(model_run_dir: str, train_files, transform_output: str, custom_config) -> str:
    """A checkpoint folder that outlives one Trainer execution: a rerun on the same inputs and
    settings (after a crash or a killed pod) finds it and resumes the interrupted phase.

    model_run_dir is <pipeline_root>/Trainer/model_run/<execution id>; the folder sits beside it.
    """
    key = hashlib.sha256(json.dumps([sorted(train_files), transform_output, custom_config],
                                    sort_keys=True, default=str).encode()).hexdigest()[:16]
    trainer_root = os.path.dirname(os.path.dirname(model_run_dir.rstrip("/")))
    return os.path.join(trainer_root, "resume", key)


def run_fn(fn_args) -> None:
    """Called by TFX's Trainer (GenericExecutor), once per worker when TF_CONFIG names several
    (Kubeflow's training operator, Vertex AI): every worker trains on its share of the data,
    the chief alone exports and writes the training report; the others write theirs under
    <model_run_dir>/workers/<index>/ as a record that they took part."""
    # First: MultiWorkerMirroredStrategy must exist before any other TensorFlow work.
    _, _, worker = distribute.select_strategy()
    custom_config = dict(fn_args.custom_config or {})
    config = train.TrainConfig.from_dict(custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    data_facts = fn_args.hyperparameters or {}
    train_files = train.list_files(fn_args.train_files)
    result = train.train(train_files, train.list_files(fn_args.eval_files), tf_transform_output,
                         config, class_weights=data_facts.get("class_weights"),
                         backup_dir=resume_dir(fn_args.model_run_dir, train_files,
                                               fn_args.transform_output, custom_config),
                         log_dir=os.path.join(fn_args.model_run_dir, "logs"))
    result.report["class_counts"] = data_facts.get("class_counts")
    result.report[contract.CODE_VERSION] = provenance.code_version()
    if worker["chief"]:
        export.export(result, tf_transform_output, fn_args.serving_model_dir)
        contract.write_training_report(result.report, fn_args.model_run_dir)
    else:
        contract.write_training_report(result.report, os.path.join(
            fn_args.model_run_dir, "workers", str(worker["index"])))
