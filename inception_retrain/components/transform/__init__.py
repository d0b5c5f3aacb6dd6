"""tf.Transform user code: decode + resize images, label vocabulary."""
