"""Group-aware splits and the manifest through the real ImageExampleGen (driver and executor):
tiles named <slide>_<x>_<y>.png never put one slide in two splits, adding slides moves no earlier
tile, and a manifest gives the same tf.Examples as class folders while every bad row is
quarantined with its row and reason."""
import pytest

from conftest import read_examples
from inception_retrain.components import features
from inception_retrain.components.image_example_gen import executor, ingest, layout
from test_image_ingest import encode, two_tone

GROUP = r"^(?P<group>S\d+)_"


def tiles(root, slides, per_slide=6):
    """Slide S<n> belongs to class a (even n) or b (odd n); tiles of distinct pixels."""
    for n in slides:
        label = "ab"[n % 2]
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_slide):
            (root / label / f"S{n:02d}_{i}_{n}.png").write_bytes(
                encode(two_tone((8 + i, 8 + n)), "PNG"))
    return root


def ingest_split(root, out, split_ledger="", **options):
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    artifact = run_example_gen(ImageExampleGen(str(root), options=ingest.IngestOptions(
        **options), split_ledger=split_ledger), str(out))
    return artifact, {split: {value(e, features.PATH_KEY): value(e, features.GROUP_KEY)
                              for e in examples}
                      for split, examples in read_examples(artifact.uri).items()}


def value(example, key):
    return example.features.feature[key].bytes_list.value[0].decode()


def splits_of_slide(by_split):
    found = {}
    for split, groups in by_split.items():
        for path, group in groups.items():
            found.setdefault(path.split("/")[1].split("_")[0], set()).add(split)
    return found


def test_no_slide_in_two_splits_and_adding_slides_moves_no_earlier_tile(tmp_path):
    data = tiles(tmp_path / "data", range(12))
    ledger = str(tmp_path / "root" / "split_ledger.json")   # what keeps earlier slides in place
    artifact, first = ingest_split(data, tmp_path / "out1", ledger, group_pattern=GROUP)
    assert sum(map(len, first.values())) == 72
    slides = splits_of_slide(first)
    assert len(slides) == 12 and all(len(s) == 1 for s in slides.values()), slides
    assert len({split for s in slides.values() for split in s}) >= 2
    assert all(group == path.split("/")[1][:3] for groups in first.values()
               for path, group in groups.items())
    assert artifact.get_int_custom_property(executor.GROUPED_PROPERTY) == 1
    from inception_retrain.components.image_example_gen import contract

    index = contract.read_index(artifact.uri)
    assert {s: sorted(r["path"] for r in rs) for s, rs in index.items()} == {
        s: sorted(g) for s, g in first.items()}
    assert all(len(r["sha256"]) == 64 for rs in index.values() for r in rs)

    tiles(data, range(12, 15))          # three new slides arrive
    _, second = ingest_split(data, tmp_path / "out2", ledger, group_pattern=GROUP)
    assert sum(map(len, second.values())) == 90
    for split, groups in first.items():
        assert set(groups) <= set(second[split]), split
    assert all(len(s) == 1 for s in splits_of_slide(second).values())


def test_without_a_group_key_tiles_of_one_slide_spread_over_splits(tmp_path):
    """Today's per-image split (the group is the path): the check above can fail."""
    artifact, by_split = ingest_split(tiles(tmp_path / "data", range(12)), tmp_path / "out")
    assert any(len(s) > 1 for s in splits_of_slide(by_split).values())
    assert all(group == path for groups in by_split.values() for path, group in groups.items())
    assert artifact.get_int_custom_property(executor.GROUPED_PROPERTY) == 0


def test_a_tile_outside_the_group_pattern_is_quarantined(tmp_path):
    data = tiles(tmp_path / "data", range(4))
    (data / "a" / "stray.png").write_bytes(encode(two_tone(), "PNG"))
    artifact, _ = ingest_split(data, tmp_path / "out", group_pattern=GROUP)
    records = executor.read_quarantine(artifact.uri)
    assert [(r["relative_path"], r["category"]) for r in records] == [
        ("a/stray.png", ingest.NO_GROUP)]


MANIFEST_ROWS = [
    "path,label,group,site",
    "a/S00_0_0.png,a,S00,lab1",            # row 1: good
    "a/S00_1_0.png,a,S00,lab1",            # row 2: good
    "b/S01_0_1.png,b,S01,lab2",            # row 3: good
    "b/S01_1_1.png,b,S01,lab2",            # row 4: good
    "a/missing.png,a,S09,lab1",            # row 5: missing file
    "a/S00_0_0.png,a,S00,lab1",            # row 6: duplicate of row 1
    "b/S01_2_1.png,,S01,lab2",             # row 7: empty label
    "../outside.png,a,S00,lab1",           # row 8: outside the root
    "a/S00_2_0.png,a,S00",                 # row 9: too few fields
    ",a,S00,lab1",                         # row 10: no path
    "a/.hidden.png,a,S00,lab1",            # row 11: hidden
    "b/S01_3_1.png,b\tc,S01,lab2",         # row 12: label with a control character
]


def test_manifest_every_bad_row_quarantined_with_row_and_reason(tmp_path):
    data = tiles(tmp_path / "data", range(2))
    (data / "a" / ".hidden.png").write_bytes(b"x")
    (data / "tiles.csv").write_text("\n".join(MANIFEST_ROWS) + "\n")
    artifact, by_split = ingest_split(data, tmp_path / "out", manifest="tiles.csv",
                                      hidden_files="skip")
    assert sorted(p for g in by_split.values() for p in g) == [
        "a/S00_0_0.png", "a/S00_1_0.png", "b/S01_0_1.png", "b/S01_1_1.png"]
    reasons = {r["reason"].split(":", 1)[0]: r["reason"].split(":", 1)[1]
               for r in executor.read_quarantine(artifact.uri)}
    expected = {5: "does not exist", 6: "listed before, in row 1", 7: "empty label",
                8: "not below the data root", 9: "has 3 fields, the header 4", 10: "no path",
                11: "hidden file", 12: "control or invisible character"}
    assert sorted(reasons) == sorted(f"manifest tiles.csv row {n} (line {n + 1})"
                                     for n in expected), reasons
    for n, reason in expected.items():
        assert reason in reasons[f"manifest tiles.csv row {n} (line {n + 1})"]
    assert artifact.get_int_custom_property(executor.QUARANTINED_PROPERTY) == len(expected)
    examples = [e for split in read_examples(artifact.uri).values() for e in split]
    assert {(value(e, features.PATH_KEY), value(e, features.GROUP_KEY),
             value(e, features.SITE_KEY)) for e in examples} >= {("a/S00_0_0.png", "S00", "lab1")}


def test_manifest_with_unknown_columns_is_refused_naming_them(tmp_path):
    data = tiles(tmp_path / "data", range(2))
    (data / "tiles.csv").write_text("path,label,slide_id\na/S00_0_0.png,a,S00\n")
    with pytest.raises(ingest.LayoutError, match="unknown column.*'slide_id'"):
        layout.validate_layout(str(data), "*/*", ingest.IngestOptions(manifest="tiles.csv"))


def test_folders_and_manifest_give_the_same_examples(tmp_path):
    data = tiles(tmp_path / "data", range(4))
    lines = ["path,label"] + [f"{p.parent.name}/{p.name},{p.parent.name}"
                              for p in sorted(data.glob("*/*.png"))]
    (data / "all.csv").write_text("\n".join(lines) + "\n")
    folders = read_examples(ingest_split(data, tmp_path / "f")[0].uri)
    manifest = read_examples(ingest_split(data, tmp_path / "m", manifest="all.csv")[0].uri)

    def serialized(by_split):
        return {s: sorted(e.SerializeToString(deterministic=True) for e in examples)
                for s, examples in by_split.items()}

    assert serialized(folders) == serialized(manifest)


def test_layout_problems_are_listed_all_at_once(tmp_path):
    data = tmp_path / "data"
    (data / "a" / "sub").mkdir(parents=True)
    (data / "b").mkdir()
    (data / "c").mkdir()
    (data / "c" / ".DS_Store").write_bytes(b"")
    (data / "stray.jpg").write_bytes(b"x")
    with pytest.raises(ingest.LayoutError) as err:
        layout.validate_layout(str(data))
    message = str(err.value)
    assert "layout problems" in message
    for part in ("in no class: stray.jpg", "holds folders (sub)", "data/b' holds no image",
                 "hidden files"):
        assert part in message, (part, message)
