"""A schema draft from a folder of images, for review against the curated schema/schema.pbtxt.

Ingests with the real ImageExampleGen, computes TFDV statistics, infers a schema and applies the
curation rules of schema/schema.pbtxt, so the diff shows only what the data changed.
"""
import difflib
import os
from typing import Sequence

from inception_retrain.components import features
from inception_retrain.components.image_example_gen import ingest

SOURCE_FORMATS = ("jpeg", "png", "gif", "bmp", "tiff", "webp", "slide")  # slide: a WSI tile
HEADER = ("# Draft written by `inception-retrain schema` from {root}.\n"
          "# Review it against schema/schema.pbtxt (the curated schema the pipeline validates\n"
          "# against) and copy what is right there.\n")


def draft_schema(data_root: str, work_dir: str, input_pattern: str = "*/*",
                 split_folders: Sequence[str] = (),
                 options: ingest.IngestOptions = ingest.IngestOptions()):
    """Ingests data_root into work_dir and returns the curated inferred schema."""
    import tensorflow_data_validation as tfdv

    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import (
        run_example_gen,
    )

    examples = run_example_gen(
        ImageExampleGen(data_root, input_pattern=input_pattern, split_folders=split_folders,
                        options=options), os.path.join(work_dir, "examples"))
    stats = tfdv.generate_statistics_from_tfrecord(
        data_location=os.path.join(examples.uri, "Split-*", "*"),
        output_path=os.path.join(work_dir, "statistics.pb"))
    return curate(tfdv.infer_schema(stats))


def curate(schema):
    """The rules behind schema/schema.pbtxt: image bytes carry an image domain, the class
    names are data (the DataGate checks them), sizes are positive, formats are the known set."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    for feature in schema.feature:
        if feature.name == features.IMAGE_KEY:
            feature.ClearField("domain")
            feature.image_domain.SetInParent()
        elif feature.name in (features.LABEL_KEY, features.PATH_KEY, features.GROUP_KEY,
                              features.SITE_KEY, features.CONTENT_HASH_KEY):
            feature.ClearField("domain_info")  # data, not a vocabulary (site "": a bool_domain)
        elif feature.name in (features.HEIGHT_KEY, features.WIDTH_KEY):
            feature.int_domain.min = 1
        elif feature.name == features.FORMAT_KEY:
            feature.domain = features.FORMAT_KEY
    kept = [d for d in schema.string_domain if d.name == features.FORMAT_KEY]
    formats = list(SOURCE_FORMATS) + sorted({v for d in kept for v in d.value}
                                            - set(SOURCE_FORMATS))
    del schema.string_domain[:]
    schema.string_domain.append(schema_pb2.StringDomain(name=features.FORMAT_KEY,
                                                        value=formats))
    return schema


def write_and_diff(schema, output_path: str, curated_path: str, data_root: str) -> str:
    """Writes the draft; returns a unified diff of the curated schema's fields to the draft's."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    draft_text = _by_feature_name(schema)
    with open(output_path, "w") as f:
        f.write(HEADER.format(root=data_root) + draft_text)
    with open(curated_path) as f:
        curated = text_format.Parse(f.read(), schema_pb2.Schema())
    return "".join(difflib.unified_diff(
        _by_feature_name(curated).splitlines(keepends=True),
        draft_text.splitlines(keepends=True), fromfile=curated_path, tofile=output_path))


def _by_feature_name(schema) -> str:
    """Text form with features sorted by name, so diffs show content, not order."""
    from google.protobuf import text_format

    ordered = type(schema)()
    ordered.CopyFrom(schema)
    ordered.ClearField("feature")
    ordered.feature.extend(sorted(schema.feature, key=lambda f: f.name))
    return text_format.MessageToString(ordered)
