"""Custom TFX components and the user code (Transform, Trainer) of the InceptionV3 pipeline."""
import os

# tensorflow-transform 1.16 needs Keras 2 (tf_keras); `tf.keras` picks its Keras on first
# access, so every process that imports our components (Beam workers included) sets this first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
