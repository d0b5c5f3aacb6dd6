"""Packaging: one import namespace, inception_retrain, whose folders are the subpackages
(inception_retrain/pipeline/ is inception_retrain.pipeline), so an import names the file it
loads, TFX's dotted module paths (inception_retrain.components.trainer.run.run_fn) resolve in a
checkout and inside the pipeline container alike, and no folder collides with a PyPI
distribution (kubeflow, pipeline, ...). The package list is found, never written out."""
from setuptools import find_packages, setup

setup(
    name="inception-retrain",
    version="0.1.0",
    description="TFX pipeline that retrains InceptionV3 on folders of labeled images "
                "and pushes blessed models to TF Serving.",
    python_requires=">=3.9,<3.11",
    packages=find_packages(include=["inception_retrain", "inception_retrain.*"]),
    package_data={"inception_retrain.run_rendering": ["model_card_schema/*/*", "model_card_schema/*"],
                  "inception_retrain.kubeflow": ["Dockerfile", "Dockerfile.dockerignore", "README.md"],
                  "inception_retrain.serving": ["k8s/*", "README.md"]},
    # The exact, resolved set lives in requirements.lock; these are the direct needs.
    install_requires=["tfx[kfp]==1.16.0", "apache-beam[gcp]==2.61.0", "dill", "pillow", "pyyaml",
                      "openslide-python", "openslide-bin", "argcomplete"],
    # s3: TensorFlow has no s3:// filesystem; tensorflow-io registers one (artifact_files).
    # test: moto[s3] with flask and flask-cors is the S3 server on loopback the tests use.
    extras_require={"s3": ["tensorflow-io==0.37.1"],
                    "test": ["pytest", "pytest-xdist", "jsonschema", "tifffile",
                             "tensorflow-io==0.37.1", "boto3", "moto[s3]", "flask",
                             "flask-cors"]},
    entry_points={"console_scripts": ["inception-retrain=inception_retrain.cli.main:main"]},
)
