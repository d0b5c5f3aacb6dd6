"""Issue 13, item 6: a data root holding glob metacharacters (`/data/run[1]`) is taken
literally by TFX's driver (span, fingerprint), the executor's Beam match, the layout check and
the previous span's counts; the input pattern below it stays a pattern."""
import pytest

from conftest import read_examples
from inception_retrain.components.image_example_gen import executor, layout
from test_image_example_gen_executor import paths_of


def _images(folder, classes=("a", "b"), per_class=3):
    from PIL import Image

    for name in classes:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), (40 * i, 10, 10)).save(folder / name / f"{i}.png")


@pytest.mark.parametrize("root_name", ["run[1]"])
def test_a_root_with_glob_metacharacters_is_ingested(tmp_path, root_name):
    """Item 6: `/data/run[1]` ingested 0 examples ("quarantined 0"), then the DataGate failed
    with "statistics have no feature 'label'"."""
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    root = tmp_path / root_name
    _images(root)
    (tmp_path / "run1" / "a").mkdir(parents=True)  # what `run[1]` matches as a pattern
    artifact = run_example_gen(ImageExampleGen(str(root), splits=(("train", 1), ("eval", 1))),
                               str(tmp_path / "out"))
    found = sorted(p for split in read_examples(artifact.uri).values() for p in paths_of(split))
    assert found == [f"{c}/{i}.png" for c in ("a", "b") for i in range(3)]
    assert artifact.get_int_custom_property(executor.QUARANTINED_PROPERTY) == 0


def test_spans_below_a_literal_root_are_resolved_and_counted(tmp_path):
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.standalone import run_example_gen

    root = tmp_path / "run[1]"
    _images(root / "span-1", per_class=2)
    _images(root / "span-2", per_class=3)
    artifact = run_example_gen(
        ImageExampleGen(str(root), splits=(("train", 1), ("eval", 1)),
                        input_pattern="span-{SPAN}/*/*"), str(tmp_path / "out"))
    assert artifact.span == 2
    assert sum(len(s) for s in read_examples(artifact.uri).values()) == 6
    assert artifact.get_int_custom_property(executor.PREVIOUS_SPAN_PROPERTY) == 1
    assert layout.validate_layout(str(root), "span-*/*/*").classes == ["a", "b"]
    assert layout.count_files_by_class(str(root), "span-1/*/*") == {"a": 2, "b": 2}


@pytest.mark.parametrize("root, escaped", [
    ("/data/run[1]", "/data/run[[]1]"), ("/data/plain", "/data/plain"),
    ("gs://bucket/a*b", "gs://bucket/a[*]b")])
def test_escape_root(root, escaped):
    assert layout.escape_root(root) == escaped
