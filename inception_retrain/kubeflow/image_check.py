"""Checks a pipeline image from the inside; kubeflow/Dockerfile runs it as its last build step,
so an image that would fail in a pod fails to build instead.

It checks that TFX is the version the pipeline is compiled with, that TF_USE_LEGACY_KERAS makes
tf.keras Keras 2 (tensorflow-transform needs it), that the schema sits where compiled pipelines
look for it (inception_retrain.pipeline.pipeline.default_schema_path() of the installed
package), and that every
executor class and function a compiled pipeline names (--executor_class_path, preprocessing_fn,
run_fn) and every entrypoint module its containers run imports, and that every artifact type's
schema title resolves to an artifact class exactly as TFX's V2 entrypoint resolves it (custom
titles such as inception_retrain.ImageDataReport are imported as class paths). The pipeline is
compiled in memory for that, so the lists never go stale.
"""
import argparse
import importlib
import os
import sys
from typing import Dict, Iterable, List, Mapping

from inception_retrain.kubeflow import exit_handler, targets
from inception_retrain.pipeline import config as config_lib

_PLACEHOLDER_URI = "gs://image-check"


def dotted_paths(spec: dict) -> List[str]:
    """Every executor class and user function a compiled PipelineSpec dict names."""
    paths = set()
    for executor in spec["deploymentSpec"]["executors"].values():
        args = executor.get("container", {}).get("args", [])
        paths.update(args[i + 1] for i, arg in enumerate(args[:-1])
                     if arg == "--executor_class_path")
    for task in exit_handler.pipeline_tasks(spec).values():
        for name, value in task.get("inputs", {}).get("parameters", {}).items():
            constant = value.get("runtimeValue", {}).get("constant")
            if name.endswith("_fn") and isinstance(constant, str):
                paths.add(constant)
    return sorted(paths)


def artifact_types(spec: dict) -> Dict[str, dict]:
    """Every artifact type a compiled PipelineSpec dict declares (proto-JSON
    ArtifactTypeSchema), keyed by where it is declared (component.inputs|outputs.name)."""
    found = {}
    for component_name, component in spec["components"].items():
        for side in ("inputDefinitions", "outputDefinitions"):
            for name, artifact in component.get(side, {}).get("artifacts", {}).items():
                found[f"{component_name}.{side[:-len('Definitions')]}.{name}"] = \
                    artifact["artifactType"]
    return found


def artifact_type_problems(types: Mapping[str, dict]) -> List[str]:
    """The artifact types whose schema title does not import as a class, resolved exactly as
    TFX's V2 entrypoint resolves them (kubeflow_v2_entrypoint_utils._retrieve_class_path: a
    tfx.* title through compiler_utils.TITLE_TO_CLASS_PATH, any other title as a class path)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
    from tfx.types import artifact as tfx_artifact
    from tfx.utils import import_utils

    found = []
    for where, artifact_type in sorted(types.items()):
        schema = json_format.ParseDict(artifact_type, pipeline_spec_pb2.ArtifactTypeSchema())
        try:
            path = kubeflow_v2_entrypoint_utils._retrieve_class_path(schema)  # pylint: disable=protected-access
            cls = import_utils.import_class_by_path(path)
        except Exception as err:  # whatever the entrypoint would die of
            found.append(f"artifact type of {where}: {type(err).__name__}: {err}")
            continue
        if not (isinstance(cls, type) and issubclass(cls, tfx_artifact.Artifact)):
            found.append(f"artifact type of {where}: {path} is not a TFX Artifact class")
    return found


def entrypoint_modules(spec: dict) -> List[str]:
    """The modules the containers run (`python -m MODULE`), as dotted paths of their main."""
    modules = set()
    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor.get("container", {})
        for command in (container.get("command", []),
                        container.get("lifecycle", {}).get("preCacheCheck", {}).get("command", [])):
            if command[:2] == ["python", "-m"] and len(command) > 2:
                modules.add(command[2] + ".main")
    return sorted(modules)


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


# Packages whose version the image must share with the tests (requirements.lock); the base
# image's CUDA-built TensorFlow stack is TFX's own choice for 1.16 and is left as it is.
LOCKED_IN_IMAGE = ("apache-beam", "pillow", "tfx")


def locked_versions(lock_path: str) -> Dict[str, str]:
    """{distribution (lower case): version} of a `name==version` lock file."""
    versions = {}
    with open(lock_path) as f:
        for line in f:
            name, sep, version = line.split("#")[0].strip().partition("==")
            if sep:
                versions[name.split("[")[0].strip().lower()] = version.strip()
    return versions


def version_problems(lock_path: str, packages: Iterable[str] = LOCKED_IN_IMAGE) -> List[str]:
    """Installed versions that differ from the lock's (what the tests ran)."""
    from importlib import metadata

    locked = locked_versions(lock_path)
    found = []
    for package in packages:
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if package in locked and installed != locked[package]:
            found.append(f"{package} is {installed}, the tests ran {locked[package]} "
                         f"({os.path.basename(lock_path)})")
    return found


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
    found += import_problems(dotted_paths(spec) + entrypoint_modules(spec))
    found += artifact_type_problems(artifact_types(spec))
    lock = os.path.join(install_root, "requirements.lock")
    found += version_problems(lock) if os.path.isfile(lock) else [f"no {lock}"]
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
