"""The pipeline definition, its configuration, the local runner and the command line."""
import os

# tensorflow-transform 1.16 needs Keras 2 (tf_keras); see components/__init__.py.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
