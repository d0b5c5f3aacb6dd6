"""Runs the pipeline with LocalDagRunner: SQLite metadata, Beam DirectRunner, caching."""
import datetime
import logging
import os
import time
from typing import Optional

from inception_retrain.components.image_example_gen import layout
from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline import default_dataset, run_lock


def make_work_dir(work_dir: str, *subdirs: str) -> None:
    """Creates work_dir (and subdirs below it), or says in one line why it cannot be used (a
    file, a path under /proc, no permission)."""
    for path in (work_dir,) + tuple(os.path.join(work_dir, d) for d in subdirs):
        try:
            if os.path.exists(path) and not os.path.isdir(path):
                raise NotADirectoryError(20, "is a file, not a directory")
            os.makedirs(path, exist_ok=True)
            if not os.access(path, os.W_OK | os.X_OK):
                raise PermissionError(13, "not writable")
        except OSError as err:
            raise config_lib.ConfigError(
                f"work_dir {work_dir!r} cannot be used: {path!r}: "
                f"{err.strerror or err}") from None


def resolve_data_root(config: config_lib.PipelineConfig) -> str:
    """The configured root, or the embedded default dataset generated under work_dir."""
    if config.data.root:
        return config.data.root
    make_work_dir(config.work_dir)
    return default_dataset.ensure_default_dataset(
        os.path.join(config.work_dir, default_dataset.DIRECTORY))


def preflight(config: config_lib.PipelineConfig) -> str:
    """Cheap checks that must pass before TFX is even imported; returns the data root.

    Imports no TensorFlow for local data and creates nothing for a configured data root (the
    embedded default dataset is generated under work_dir)."""
    weights = config.training.base_weights
    if weights not in ("imagenet", "none") and not os.path.isfile(weights):
        raise config_lib.ConfigError(f"training.base_weights: file {weights!r} does not exist")
    data_root = resolve_data_root(config)
    options = config.data.ingest_options()
    for _, pattern in layout.split_patterns(config.data.input_pattern, config.data.split_folders,
                                          group_folders=options.group_folders):
        layout.validate_layout(data_root, layout.any_span(pattern), options)
    return data_root


def served_state(push_base: str) -> str:
    """What push_base serves now, as the Evaluator's cache key sees it."""
    from inception_retrain.serving import versions

    served = versions.served_version(push_base)
    return "none" if served is None else f"version {served}"


def new_run_id() -> str:
    """A pipeline run id, in the form LocalDagRunner gives its runs (local ISO time)."""
    return datetime.datetime.now().isoformat()


def run(config: config_lib.PipelineConfig, data_root: str, progress=None,
        run_id: Optional[str] = None) -> float:
    """Runs the DAG to completion (raises on a failed component); returns seconds taken.
    Holds the work directory's run lock meanwhile (run_lock.RunLockedError if another run
    does).

    run_id: the pipeline_run id in ML Metadata (default new_run_id()), so the caller reads back
    its own run. A component that raises is FAILED in the store without its error (TFX records
    one only for executors returning an error code): the error is added to it
    (pipeline.mlmd.record_error).
    progress: a cli.progress.RunProgress, told the components before the run starts."""
    from tfx.dsl.compiler import compiler, constants
    from tfx.orchestration import metadata as tfx_metadata
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.orchestration.portable import runtime_parameter_utils

    from inception_retrain.pipeline import mlmd
    from inception_retrain.pipeline.pipeline import (
        create_pipeline_from_config,
        default_schema_path,
    )

    os.makedirs(config.work_dir, exist_ok=True)
    run_id = run_id or new_run_id()
    with run_lock.run_lock(config.work_dir):
        metadata = tfx_metadata.sqlite_metadata_connection_config(
            config.metadata_path)
        dag = create_pipeline_from_config(config, default_schema_path(), data_root, metadata,
                                          served_state=served_state(config.push_base))
        if progress is not None:
            progress.begin([component.id for component in dag.components])
        start = time.time()
        logging.info("running %s (pipeline run %s) with LocalDagRunner; outputs under %s",
                     config.pipeline_name, run_id, config.pipeline_root)
        # What LocalDagRunner.run does (none of these components declares pip dependencies),
        # with the run id bound here instead of by the runner.
        ir = compiler.Compiler().compile(dag)
        runtime_parameter_utils.substitute_runtime_parameter(
            ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
        try:
            LocalDagRunner().run_with_ir(ir)
        except Exception as err:
            try:
                mlmd.record_error(config.metadata_path, run_id, f"{type(err).__name__}: {err}")
            except Exception:  # the run's own error is what the caller must see
                logging.warning("could not record the error in %s", config.metadata_path,
                                exc_info=True)
            raise
        return time.time() - start
