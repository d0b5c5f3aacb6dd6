"""The curated schema is what ImageExampleGen emits: a draft inferred from ingested images, with
the curation rules applied, has no difference from schema/schema.pbtxt."""
from inception_retrain.components.image_example_gen import schema_draft
from inception_retrain.pipeline.pipeline import default_schema_path
from test_image_ingest import encode, two_tone


def test_draft_from_mixed_formats_matches_the_curated_schema(tmp_path):
    for name, fmt in (("a/x.png", "PNG"), ("a/y.tif", "TIFF"), ("b/z.jpg", "JPEG"),
                      ("b/w.bmp", "BMP")):
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name).write_bytes(encode(two_tone(), fmt))
    schema = schema_draft.draft_schema(str(tmp_path / "data"), str(tmp_path / "work"))
    assert {f.name for f in schema.feature} == {
        "image", "label", "relative_path", "height", "width", "source_format", "group", "site",
        "content_sha256"}
    diff = schema_draft.write_and_diff(schema, str(tmp_path / "draft.pbtxt"),
                                       default_schema_path(), str(tmp_path / "data"))
    assert diff == ""
    assert (tmp_path / "draft.pbtxt").read_text().startswith("# Draft written by")
