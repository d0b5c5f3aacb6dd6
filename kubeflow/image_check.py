"""Checks a pipeline image from the inside; kubeflow/Dockerfile runs it as its last build step,
so an image that would fail in a pod fails to build instead.

It checks that TFX is the version the pipeline is compiled with, that TF_USE_LEGACY_KERAS makes
tf.keras Keras 2 (tensorflow-transform needs it), that the schema sits where compiled pipelines
look for it (inception_retrain.pipeline.pipeline.default_schema_path() of the installed package), and that every
executor class and function a compiled pipeline names (--executor_class_path, preprocessing_fn,
run_fn) imports. The pipeline is compiled in memory for that, so the list never goes stale.
"""
import argparse
import importlib
import os
import sys
from typing import Iterable, List

from inception_retrain.kubeflow import targets
from inception_retrain.pipeline import config as config_lib

_PLACEHOLDER_URI = "gs://image-check"


def dotted_paths(spec: dict) -> List[str]:
    """Every executor class and user function a compiled PipelineSpec dict names."""
    paths = set()
    for executor in spec["deploymentSpec"]["executors"].values():
        args = executor.get("container", {}).get("args", [])
        paths.update(args[i + 1] for i, arg in enumerate(args[:-1])
                     if arg == "--executor_class_path")
    for task in spec["root"]["dag"]["tasks"].values():
        for name, value in task.get("inputs", {}).get("parameters", {}).items():
            constant = value.get("runtimeValue", {}).get("constant")
            if name.endswith("_fn") and isinstance(constant, str):
                paths.add(constant)
    return sorted(paths)


def import_problems(paths: Iterable[str]) -> List[str]:
    """The dotted paths that do not import (module, then attribute), with the reason."""
    problems = []
    for path in paths:
        module_name, _, attribute = path.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except Exception as err:  # any import-time failure makes the path unusable in a pod
            problems.append(f"{path}: import {module_name} failed: {type(err).__name__}: {err}")
            continue
        if not hasattr(module, attribute):
            problems.append(f"{path}: {module_name} has no {attribute}")
    return problems


def problems(install_root: str = targets.IMAGE_ROOT) -> List[str]:
    """Everything wrong with this Python environment as a pipeline image; [] when none."""
    found = []
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        found.append("TF_USE_LEGACY_KERAS is not 1 (tensorflow-transform needs Keras 2)")
    from tfx import version as tfx_version

    expected_tfx = targets.TFX_IMAGE.rsplit(":", 1)[1]
    if tfx_version.__version__ != expected_tfx:
        found.append(f"tfx is {tfx_version.__version__}, the pipeline is built for {expected_tfx}")
    import tensorflow as tf
    import tf_keras

    if tf.keras.Model is not tf_keras.Model:
        found.append("tf.keras is not Keras 2 (tf_keras): set TF_USE_LEGACY_KERAS=1 before "
                     "TensorFlow is imported")
    from inception_retrain.pipeline.pipeline import default_schema_path

    schema = os.path.join(install_root, "schema", "schema.pbtxt")
    if os.path.realpath(default_schema_path()) != os.path.realpath(schema):
        found.append(f"the installed package resolves the schema to {default_schema_path()}, "
                     f"compiled pipelines read {schema}: install the repository editable at "
                     f"{install_root}")
    if not os.path.isfile(schema):
        found.append(f"no schema at {schema}")
    from inception_retrain.kubeflow import compile as compile_lib

    config = config_lib.load(overrides={"work_dir": _PLACEHOLDER_URI,
                                        "data": {"root": _PLACEHOLDER_URI + "/data"}})
    options = targets.CompileOptions(target="kfp", output="unused.yaml", image="image-check",
                                     schema_path=schema)
    _, spec, _ = compile_lib.compile_spec(config, options)
    found += import_problems(dotted_paths(spec))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install-root", default=targets.IMAGE_ROOT,
                        help=f"where the repository is installed (default {targets.IMAGE_ROOT})")
    args = parser.parse_args(argv)
    found = problems(args.install_root)
    for problem in found:
        print(f"image check: {problem}", file=sys.stderr)
    print("image check: " + ("FAILED" if found else "ok"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
