"""Packaging: every top-level folder installs as a subpackage of one import namespace,
inception_retrain (pipeline/ -> inception_retrain.pipeline, ...), so TFX's dotted module paths
(e.g. inception_retrain.components.trainer.run.run_fn) resolve locally and inside the pipeline
container, and no folder name collides with a PyPI distribution (kubeflow, pipeline, ...)."""
from setuptools import setup

NAMESPACE = "inception_retrain"
# Folder -> subpackages (each with an __init__.py) below it.
FOLDERS = {
    "pipeline": [""],
    "components": ["", "data_fingerprint", "data_gate", "evaluator", "image_example_gen",
                   "pusher", "trainer", "transform"],
    "kubeflow": [""],
    "run_report": [""],
    "cli": [""],
    "serving": [""],
}
packages = {NAMESPACE: NAMESPACE}
for folder, subpackages in FOLDERS.items():
    for sub in subpackages:
        packages[".".join(filter(None, (NAMESPACE, folder, sub)))] = "/".join(
            filter(None, (folder, sub)))

setup(
    name="inception-retrain",
    version="0.1.0",
    description="TFX pipeline that retrains InceptionV3 on folders of labeled images "
                "and pushes blessed models to TF Serving.",
    python_requires=">=3.9,<3.11",
    packages=list(packages),
    package_dir=packages,
    # The exact, resolved set lives in requirements.lock; these are the direct needs.
    install_requires=["tfx[kfp]==1.16.0", "apache-beam[gcp]==2.61.0", "dill", "pillow", "pyyaml"],
    extras_require={"test": ["pytest", "pytest-xdist", "jsonschema"]},
    entry_points={"console_scripts": ["inception-retrain=inception_retrain.cli.main:main"]},
)
