"""tools/ensure_env.sh sourced by hand (as kubeflow/README.md says) leaves the caller's shell
options alone: no set -e that would close the terminal on the next failing command."""
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_sourcing_keeps_the_callers_shell_options_and_exports_the_environment():
    script = ('set +eu +o pipefail; source tools/ensure_env.sh >/dev/null; echo "flags=$-"; '
              'shopt -qo pipefail && echo pipefail=on || echo pipefail=off; false; '
              'echo "alive python=$(command -v python) keras=$TF_USE_LEGACY_KERAS"')
    out = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True,
                         timeout=600).stdout
    flags = out.split("flags=")[1].split()[0]
    assert "e" not in flags and "u" not in flags, out
    assert "pipefail=off" in out and "alive" in out, out
    assert f"python={REPO}/.venv/bin/python" in out and "keras=1" in out, out
