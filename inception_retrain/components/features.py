"""Feature names shared by ExampleGen, the schema, Transform, Trainer and Evaluator."""

IMAGE_KEY = "image"            # encoded image bytes (JPEG or PNG: what the serving graph decodes)
LABEL_KEY = "label"            # class name, the image's folder name
PATH_KEY = "relative_path"     # <class>/<file> relative to the data root; the split hash key
HEIGHT_KEY = "height"
WIDTH_KEY = "width"
FORMAT_KEY = "source_format"   # format of the file on disk (jpeg, png, tiff, ...)
GROUP_KEY = "group"            # the slide (or patient) an image was cut from; the split hash key.
                               # Without a group key (data.group_pattern, a manifest's group
                               # column) it is the relative path: a split per image, as before.
SITE_KEY = "site"              # the lab or hospital an image came from; "" when unknown
CONTENT_HASH_KEY = "content_sha256"  # SHA-256 of the file's bytes as read (duplicate checks)

# Transform outputs.
TRANSFORMED_IMAGE_KEY = "image_xf"   # float32 [size, size, 3] in [-1, 1] (InceptionV3's range)
TRANSFORMED_LABEL_KEY = "label_xf"   # int64 id in the label vocabulary
LABEL_VOCABULARY = "label_vocabulary"

# Serving signatures of the exported model.
SERVING_BYTES_SIGNATURE = "serving_default"
SERVING_EXAMPLES_SIGNATURE = "serving_examples"
TRANSFORM_SIGNATURE = "transform_features"
BYTES_INPUT = "images"
