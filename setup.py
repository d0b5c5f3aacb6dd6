"""Packaging: installs pipeline/, components/ and kubeflow/ so TFX's dotted module paths
(e.g. components.trainer.run.run_fn) resolve locally and inside the pipeline container."""
from setuptools import find_packages, setup

setup(
    name="inception-retrain",
    version="0.1.0",
    description="TFX pipeline that retrains InceptionV3 on folders of labeled images "
                "and pushes blessed models to TF Serving.",
    python_requires=">=3.9,<3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "components", "components.*",
                                    "kubeflow", "kubeflow.*"]),
    # The exact, resolved set lives in requirements.lock; these are the direct needs.
    install_requires=["tfx[kfp]==1.16.0", "apache-beam[gcp]==2.61.0", "dill", "pillow", "pyyaml"],
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": ["inception-retrain=pipeline.cli:main"]},
)
