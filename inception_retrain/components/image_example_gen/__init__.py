"""ImageExampleGen: `<root>/<class>/<image>` folders in, tf.Examples split by path hash out."""
