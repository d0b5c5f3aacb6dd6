"""Tiles laid out as <class>/<slide>/<tile> (one folder per slide): with data.input_pattern
'*/*/*' and data.group_pattern '^[^/]+/(?P<group>[^/]+)/' the label is the first path component
and the group the slide folder; the layout check accepts that one level of slide folders (and
still refuses deeper or unexpected nesting), and no slide lands in two splits."""
import pytest

from conftest import read_examples
from inception_retrain.components import features
from inception_retrain.components.image_example_gen import conversion, ingest, layout
from test_image_ingest import encode, two_tone

SLIDE_FOLDERS = r"^[^/]+/(?P<group>[^/]+)/"
OPTIONS = ingest.IngestOptions(group_pattern=SLIDE_FOLDERS)


def slide_folders(root, slides=8, per_slide=3):
    """Slide s<n> in class a (even n) or b (odd n): <root>/<class>/s<n>/t<i>.png."""
    for n in range(slides):
        folder = root / "ab"[n % 2] / f"s{n:02d}"
        folder.mkdir(parents=True)
        for i in range(per_slide):
            (folder / f"t{i}.png").write_bytes(encode(two_tone((8 + i, 8 + n)), "PNG"))
    return root


def test_group_pattern_on_the_slide_folder_means_slide_folders():
    assert OPTIONS.group_folders
    assert ingest.IngestOptions(group_pattern=r"(?P<group>[^/]+)/[^/]+$").group_folders
    assert not ingest.IngestOptions(group_pattern=r"^(?P<group>[^_]+)_").group_folders
    assert not ingest.IngestOptions().group_folders
    assert ingest.label_of("a/s01/t0.png", group_folders=True) == "a"
    assert layout.class_level_pattern("*/*/*", group_folders=True) == ""
    assert layout.class_level_pattern("span-{SPAN}/*/*/*", True) == "span-{SPAN}"
    with pytest.raises(ingest.LayoutError, match=r"'\*/\*/\*'"):
        layout.class_level_pattern("*/*", group_folders=True)
    assert layout.split_patterns("*/*/*", ["train", "val"], group_folders=True) == [
        ("train", "train/*/*/*"), ("eval", "val/*/*/*")]


def test_layout_accepts_one_level_of_slide_folders(tmp_path):
    root = slide_folders(tmp_path)
    assert layout.validate_layout(str(root), "*/*/*", OPTIONS).classes == ["a", "b"]
    example = conversion.image_to_example((root / "a/s00/t1.png").read_bytes(), "a/s00/t1.png",
                                          OPTIONS)
    feature = example.features.feature
    assert feature[features.LABEL_KEY].bytes_list.value[0] == b"a"
    assert feature[features.GROUP_KEY].bytes_list.value[0] == b"s00"


def test_slide_folders_without_the_pattern_are_refused_with_the_fix(tmp_path):
    root = slide_folders(tmp_path)
    with pytest.raises(ingest.LayoutError, match=r"holds folders.*group_pattern"):
        layout.validate_layout(str(root), "*/*")


@pytest.mark.parametrize("make, message", [
    (lambda root: (root / "a/s00/deeper").mkdir(), r"slide folder .*s00.* holds folders"),
    (lambda root: (root / "b/loose.png").write_bytes(encode(two_tone((8, 8)), "PNG")),
     r"holds files \(loose.png\) beside its slide folders"),
    (lambda root: (root / "a/s99").mkdir(), r"slide folder .*s99.* holds no image files"),
])
def test_unexpected_nesting_is_still_refused(tmp_path, make, message):
    root = slide_folders(tmp_path)
    make(root)
    with pytest.raises(ingest.LayoutError, match=message):
        layout.validate_layout(str(root), "*/*/*", OPTIONS)


def test_a_pattern_that_misses_the_slide_folder_is_named(tmp_path):
    slide_folders(tmp_path / "span-1")
    with pytest.raises(ingest.LayoutError, match=r"gives 'span-1/a/s00/t0.png' the group 'a'"):
        layout.validate_layout(str(tmp_path), "span-1/*/*/*", OPTIONS)
    ends = ingest.IngestOptions(group_pattern=r"(?P<group>[^/]+)/[^/]+$")
    assert layout.validate_layout(str(tmp_path), "span-1/*/*/*", ends).classes == ["a", "b"]


def test_executor_puts_each_slide_in_one_split(tmp_path):
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    root = slide_folders(tmp_path / "data", slides=12)
    artifact = run_example_gen(ImageExampleGen(str(root), input_pattern="*/*/*",
                                               options=OPTIONS), str(tmp_path / "out"))
    by_split = read_examples(artifact.uri)
    seen = {}
    for split, examples in by_split.items():
        for e in examples:
            path, label, group = (e.features.feature[k].bytes_list.value[0].decode()
                                  for k in (features.PATH_KEY, features.LABEL_KEY,
                                            features.GROUP_KEY))
            assert (label, group) == tuple(path.split("/")[:2])
            seen.setdefault(group, set()).add(split)
    assert len(seen) == 12 and sum(len(e) for e in by_split.values()) == 36
    assert all(len(splits) == 1 for splits in seen.values()), seen
    assert len({s for splits in seen.values() for s in splits}) > 1
