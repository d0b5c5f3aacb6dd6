"""The import namespace of this repository: its folders are the subpackages (pipeline/,
components/, kubeflow/, run_reading/, run_rendering/, cli/, serving/; an import names the file
it loads), and nothing here shadows or is shadowed by PyPI's `kubeflow`, `pipeline` or `components`.

It also names the custom artifact types by the type names ML Metadata and Kubeflow record
(`inception_retrain.<Title>`): TFX's Kubeflow V2 entrypoint imports each artifact's schema
title as a class path, so `inception_retrain.ImageDataReport` must resolve to the class.
They load on first access, so importing this package stays free of TFX.
"""
import importlib
import os

# tensorflow-transform 1.16 needs Keras 2 (tf_keras); `tf.keras` picks its Keras on first
# access, so every process that imports this package (Beam workers included) sets this first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# Type title (after the "inception_retrain." prefix) -> the module that defines the class.
ARTIFACT_TYPES = {
    "ImageDataReport": "inception_retrain.components.data_gate.component",
    "RunReportFiles": "inception_retrain.components.run_reporter.component",
}


def __getattr__(name: str):
    if name in ARTIFACT_TYPES:
        module = importlib.import_module(ARTIFACT_TYPES[name])
        for value in vars(module).values():
            if getattr(value, "TYPE_NAME", None) == f"{__name__}.{name}":
                return value
        raise AttributeError(f"{ARTIFACT_TYPES[name]} defines no artifact type {__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
