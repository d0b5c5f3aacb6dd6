"""Whole-slide images through the real ImageExampleGen (driver, Beam executor, split): each
slide one work item, its tissue tiles the examples, the slide their group, bad slides
quarantined with the reason while the run goes on."""
import json

from conftest import read_examples
from inception_retrain.components import features
from inception_retrain.components.image_example_gen import contract
from slide_writer import class_slides, slide_pixels, truncate, write_slide
from test_image_example_gen_split import ingest
from test_image_ingest import encode, two_tone


def text(example, key):
    return example.features.feature[key].bytes_list.value[0].decode()


def test_nine_slides_give_tiles_grouped_by_slide_each_slide_in_one_split(tmp_path):
    expected = class_slides(tmp_path / "data")
    artifact = ingest(tmp_path / "data", tmp_path / "out",
                      splits=(("train", 60), ("eval", 20), ("test", 20)))
    splits = read_examples(artifact.uri)
    tiles = [(split, e) for split, examples in splits.items() for e in examples]
    assert len(tiles) == expected >= 45
    split_of = {}
    for split, example in tiles:
        group, path = text(example, features.GROUP_KEY), text(example, features.PATH_KEY)
        assert path.startswith(group + "#x=") and group.endswith(".tiff")
        assert text(example, features.LABEL_KEY) == group.split("/")[0]
        assert split_of.setdefault(group, split) == split      # never in two splits
    assert len(split_of) == 9 and set(split_of.values()) == {"train", "eval", "test"}
    assert artifact.get_int_custom_property(contract.GROUPED_PROPERTY) == 1
    accounts = contract.read_slides(artifact.uri)
    assert [a["slide"] for a in accounts] == sorted(split_of)
    assert all(a["tiles_kept"] == 10 and a["background_skipped"] == 16 * 12 - 10
               and a["dropped_out_of_bounds"] == 0 and a["level"] == 0 for a in accounts)


def test_bad_slides_are_quarantined_and_the_rest_ingested(tmp_path):
    data = tmp_path / "data"
    tissue = [(0, 0, 512, 512)]
    for name in ("a", "b"):
        write_slide(data / name / f"{name}_good.tiff", slide_pixels((1024, 1024), tissue))
        (data / name / f"{name}.png").write_bytes(encode(two_tone((8, 8)), "PNG"))
    truncate(write_slide(data / "a" / "cut.tiff", slide_pixels((1024, 1024), tissue)))
    write_slide(data / "b" / "noscale.tiff", slide_pixels((1024, 1024), tissue), mpp=None)
    artifact = ingest(data, tmp_path / "out")
    paths = sorted(text(e, features.PATH_KEY) for s in read_examples(artifact.uri).values()
                   for e in s)
    assert paths == sorted([f"{c}/{c}.png" for c in "ab"] + [
        f"{c}/{c}_good.tiff#x={x},y={y}" for c in "ab" for y in (0, 256) for x in (0, 256)])
    quarantine = {r["relative_path"]: r for r in contract.read_quarantine(artifact.uri)}
    assert sorted(quarantine) == ["a/cut.tiff", "b/noscale.tiff"]
    assert "truncated" in quarantine["a/cut.tiff"]["reason"]
    assert quarantine["b/noscale.tiff"]["category"] == "no_scale"
    assert "data.slide_default_mpp" in quarantine["b/noscale.tiff"]["reason"]
    assert artifact.get_int_custom_property(contract.QUARANTINED_PROPERTY) == 2
    assert [a["slide"] for a in contract.read_slides(artifact.uri)] == [
        "a/a_good.tiff", "b/b_good.tiff"]


def test_manifest_rows_name_slides_with_their_label_and_patient_group(tmp_path):
    from test_slide_groups import ingest_split

    data = tmp_path / "data"
    tissue = [(0, 0, 512, 256)]
    for name, label in (("s1", "tumour"), ("s2", "normal"), ("s3", "normal")):
        write_slide(data / "scans" / f"{name}.tiff", slide_pixels((512, 1024), tissue))
    (data / "slides.csv").write_text("path,label,group\nscans/s1.tiff,tumour,patient1\n"
                                     "scans/s2.tiff,normal,patient1\n"
                                     "scans/s3.tiff,normal,patient2\n")
    artifact, by_split = ingest_split(data, tmp_path / "out", manifest="slides.csv")
    groups = {path: group for split in by_split.values() for path, group in split.items()}
    assert groups == {f"scans/{s}.tiff#x={x},y=0": g for s, g in (
        ("s1", "patient1"), ("s2", "patient1"), ("s3", "patient2")) for x in (0, 256)}
    labels = {text(e, features.PATH_KEY).split("#")[0]: text(e, features.LABEL_KEY)
              for s in read_examples(artifact.uri).values() for e in s}
    assert labels == {"scans/s1.tiff": "tumour", "scans/s2.tiff": "normal",
                      "scans/s3.tiff": "normal"}


def test_geojson_regions_give_one_slide_tiles_of_two_classes(tmp_path):
    data = tmp_path / "data"
    # tissue on the top half (1024 x 256 px); regions: tumour over x 0-512, stroma over x 512-768
    # (a hole cut out of it at x 640-700), nothing over x 768-1024
    write_slide(data / "a" / "s1.tiff", slide_pixels((512, 1024), [(0, 0, 1024, 256)]))
    write_slide(data / "b" / "s2.tiff", slide_pixels((512, 1024), [(0, 0, 256, 256)]))

    def square(x0, x1):
        return [[x0, 0], [x1, 0], [x1, 256], [x0, 256], [x0, 0]]

    (data / "a" / "s1.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square(0, 512)]},
         "properties": {"classification": {"name": "tumour"}}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
            square(500, 760), square(600, 620)]},
         "properties": {"classification": {"name": "stroma"}}}]}))
    artifact = ingest(data, tmp_path / "out")
    labels = {text(e, features.PATH_KEY): (text(e, features.LABEL_KEY),
                                           text(e, features.GROUP_KEY))
              for s in read_examples(artifact.uri).values() for e in s}
    assert labels == {"a/s1.tiff#x=0,y=0": ("tumour", "a/s1.tiff"),
                      "a/s1.tiff#x=256,y=0": ("tumour", "a/s1.tiff"),
                      "a/s1.tiff#x=512,y=0": ("stroma", "a/s1.tiff"),
                      "b/s2.tiff#x=0,y=0": ("b", "b/s2.tiff")}
    assert contract.read_quarantine(artifact.uri) == []
    s1 = contract.read_slides(artifact.uri)[0]
    assert s1["slide"] == "a/s1.tiff"
    assert (s1["tiles_kept"], s1["outside_regions"]) == (3, 1)


def _copy_tree_to(local_root, uri_root):
    import tensorflow as tf

    for path in sorted(local_root.rglob("*")):
        if path.is_file():
            target = f"{uri_root}/{path.relative_to(local_root).as_posix()}"
            tf.io.gfile.makedirs(target.rsplit("/", 1)[0])
            tf.io.gfile.copy(str(path), target, overwrite=True)


def test_a_slide_on_an_object_store_is_tiled_from_a_local_copy_deleted_after(tmp_path,
                                                                              monkeypatch):
    """OpenSlide reads local files only: a slide under a URI root (TensorFlow's ram://, standing
    for gs://) is copied with its annotation into a temporary folder, tiled there, and the copy
    deleted; its tiles and account are those of the same slide on a local root."""
    import os
    import tempfile

    from inception_retrain.components.image_example_gen import executor
    from inception_retrain.components.image_example_gen.ingest import IngestOptions

    data = tmp_path / "data"
    write_slide(data / "a" / "one.tiff", slide_pixels((1024, 1024), [(0, 0, 512, 512)]))
    (data / "a" / "one.geojson").write_text(json.dumps({"features": [{
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [256, 0], [256, 512],
                                                          [0, 512], [0, 0]]]},
        "properties": {"classification": {"name": "b"}}}]}))
    (data / "a" / "tile.png").write_bytes(encode(two_tone((8, 8)), "PNG"))
    (data / "a" / "plain.tif").write_bytes(encode(two_tone((8, 8)), "TIFF"))  # a tile, no slide
    remote = "ram://slides-on-a-store/data"
    _copy_tree_to(data, remote)
    copies = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs):
        copies.append(real_mkdtemp(*args, **kwargs))
        return copies[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)

    def converted(root):
        convert = executor.ConvertImage(root, IngestOptions())
        outputs = [out for name in ("a/one.tiff", "a/one.geojson", "a/tile.png", "a/plain.tif")
                   for out in convert.process(f"{root}/{name}")]
        examples = {text(out, features.PATH_KEY): [text(out, key) for key in (
            features.LABEL_KEY, features.GROUP_KEY, features.CONTENT_HASH_KEY)]
            for out in outputs if hasattr(out, "features")}
        accounts = [out.value for out in outputs if getattr(out, "tag", "") == "slides"]
        return examples, accounts

    local_examples, local_accounts = converted(str(data))
    assert copies == []                       # a local slide is read where it is
    remote_examples, remote_accounts = converted(remote)
    assert len(copies) == 1  # the slide beside its annotation; the plain TIFF's header read in place
    assert not os.path.exists(copies[0])
    assert remote_examples == local_examples
    # the annotation came along: the two tiles inside its region, with its class, and the PNG
    assert {path: label for path, (label, _, _) in remote_examples.items()} == {
        "a/one.tiff#x=0,y=0": "b", "a/one.tiff#x=0,y=256": "b", "a/tile.png": "a",
        "a/plain.tif": "a"}
    assert remote_accounts == local_accounts and local_accounts[0]["tiles_kept"] == 2
