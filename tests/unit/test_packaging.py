"""The import path is the file path: the package folder is inception_retrain/ of the checkout, and
setup.py finds every subpackage (a folder it missed would import in an editable checkout but be
missing from a regular install: a wheel, a Beam worker's --setup_file install)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_subpackages_import_from_the_folder_their_name_says():
    import inception_retrain.components as components
    import inception_retrain.run_rendering as run_rendering
    assert Path(components.__file__).resolve() == REPO / "inception_retrain" / "components" / "__init__.py"
    assert Path(run_rendering.__file__).resolve().parent == REPO / "inception_retrain" / "run_rendering"


def test_setup_finds_every_folder_that_holds_python():
    """find_packages (setup.py's list) sees folders with an __init__.py: every folder holding a
    module has one, and no package sits outside inception_retrain/."""
    from setuptools import find_packages
    listed = set(find_packages(where=str(REPO), include=["inception_retrain", "inception_retrain.*"]))
    holding_python = {".".join(module.parent.relative_to(REPO).parts)
                      for module in (REPO / "inception_retrain").rglob("*.py")
                      if "__pycache__" not in module.parts}
    assert listed == holding_python, (sorted(holding_python - listed), sorted(listed - holding_python))
    assert "find_packages(include=[\"inception_retrain\", \"inception_retrain.*\"])" in \
        (REPO / "setup.py").read_text()
    assert [init.parent.name for init in REPO.glob("*/__init__.py")] == ["inception_retrain"]
