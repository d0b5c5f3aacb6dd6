"""Which code trained a model: this package's version and the git commit of its checkout,
taken when the Trainer runs so the model card states the code that ran, not the code that
rendered the card. No TensorFlow import."""
import os
import subprocess
from importlib import metadata
from typing import Dict


def code_version() -> Dict[str, str]:
    """{"package": version, "commit": sha (+ "-dirty" when tracked files differ)}; "" where
    unknown (an installed copy without .git, an image built without it)."""
    try:
        package = metadata.version("inception-retrain")
    except metadata.PackageNotFoundError:
        package = ""
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        commit = subprocess.run(["git", "-C", checkout, "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        if commit and subprocess.run(["git", "-C", checkout, "status", "--porcelain",
                                      "--untracked-files=no"], capture_output=True, text=True,
                                     timeout=10).stdout.strip():
            commit += "-dirty"
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"package": package, "commit": commit}
