"""Issue 13, items 5 and 11: class folder names that tf.Transform's vocabulary or labels.txt
cannot hold one per line, and names that are not UTF-8, stop the preflight naming the folder."""
import os

import pytest

from inception_retrain.components.image_example_gen import class_names, ingest
from inception_retrain.pipeline import config as config_lib
from inception_retrain.pipeline import local_runner


def _layout(root, names):
    for name in names:
        folder = os.path.join(os.fsencode(str(root)), name if isinstance(name, bytes)
                              else os.fsencode(name))
        os.makedirs(folder)
        with open(os.path.join(folder, b"0.png"), "wb") as f:
            f.write(b"not read by the layout check")


def _preflight(tmp_path, root):
    return local_runner.preflight(config_lib.load(
        overrides={"work_dir": str(tmp_path / "work"), "data": {"root": str(root)}}))


@pytest.mark.parametrize("bad, expected", [
    ("a\nb", "holds the control or invisible character U+000A"),
    ("tab\there", "holds the control or invisible character U+0009"),
    ("\n", "is empty or only whitespace"),
    (" ", "is empty or only whitespace"),
    (" leading", "has leading or trailing whitespace"),
    ("trailing\u00a0", "has leading or trailing whitespace"),
    ("zero\u200bwidth", "holds the control or invisible character U+200B"),
    ("line\u2028sep", "holds the control or invisible character U+2028"),
    ("x" * 129, "is 129 characters long, above 128"),
])
def test_names_the_vocabulary_or_labels_file_cannot_hold_are_refused(tmp_path, bad, expected):
    """Item 5: a class folder named with `\\n` passed every check and the Trainer died with
    `indices[0] = -1`; a name " " was dropped by read_labels and the per-class metrics were
    attached to the wrong classes."""
    root = tmp_path / "data"
    _layout(root, ["good", bad])
    with pytest.raises(ingest.LayoutError) as err:
        _preflight(tmp_path, root)
    message = str(err.value)
    assert expected in message and "rename the folder" in message
    assert repr(os.path.join(str(root), bad))[1:-1] in message  # the folder, printable


def test_a_non_utf8_class_folder_name_is_one_line(tmp_path):
    """Item 11: a Latin-1 class folder name ended the preflight in a traceback."""
    root = tmp_path / "data"
    _layout(root, ["good", b"caf\xe9"])
    with pytest.raises(ingest.LayoutError, match=r"data/caf\\xe9.: the name .caf\\xe9. is not valid UTF-8"):
        _preflight(tmp_path, root)


def test_a_non_utf8_file_name_is_named(tmp_path):
    root = tmp_path / "data"
    _layout(root, ["a", "b"])
    open(os.path.join(os.fsencode(str(root / "a")), b"\xff.png"), "wb").close()
    with pytest.raises(ingest.LayoutError, match=r"not UTF-8 \(\\xff.png\)"):
        _preflight(tmp_path, root)


def test_one_name_in_two_unicode_forms_is_refused(tmp_path):
    root = tmp_path / "data"
    _layout(root, ["caf\u00e9", "cafe\u0301"])
    with pytest.raises(ingest.LayoutError, match="same name in different Unicode forms"):
        _preflight(tmp_path, root)


@pytest.mark.parametrize("good", ["dense_nuclei", "Stroma (H&E)", "café", "组织", "a b", "x" * 128])
def test_ordinary_names_pass(tmp_path, good):
    assert class_names.class_name_problem(good) is None
    root = tmp_path / "data"
    _layout(root, ["other", good])
    assert _preflight(tmp_path, root) == str(root)
