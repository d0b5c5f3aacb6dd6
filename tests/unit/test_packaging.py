"""setup.py lists every package folder: a folder it misses imports in an editable checkout but is
missing from a regular install (a wheel, a Beam worker's --setup_file install)."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def declared_folders():
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "FOLDERS":
            folders = ast.literal_eval(node.value)
            return {"/".join(filter(None, (top, sub))) for top, subs in folders.items()
                    for sub in subs}
    raise AssertionError("setup.py defines no FOLDERS")


def test_every_folder_with_an_init_below_a_declared_top_folder_is_declared():
    declared = declared_folders()
    tops = {folder.split("/")[0] for folder in declared}
    found = {str(init.parent.relative_to(REPO)) for top in tops
             for init in (REPO / top).rglob("__init__.py")
             if "__pycache__" not in init.parts}
    assert found == declared, (sorted(found - declared), sorted(declared - found))
