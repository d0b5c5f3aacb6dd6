#!/usr/bin/env bash
# Creates or refreshes .venv: Python 3.10 + the pinned TFX 1.16 stack (requirements.lock) + this
# package (editable). Idempotent; reinstalls only when requirements.lock or setup.py changed.
# Sourced by run.sh and test.sh, or by hand (`source tools/ensure_env.sh`): the set-up runs in a
# subshell with `set -euo pipefail`, so the caller's shell options are left as they were; only
# the exports at the end reach the caller.

_ir_setup() {
set -euo pipefail
repo_root="$1"
venv="$repo_root/.venv"
uv_version="0.13.9"

find_python310() {
  local candidates=()
  [ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
  candidates+=(python3.10)
  if command -v pyenv >/dev/null 2>&1; then
    local v
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | sort -rV); do
      candidates+=("$(pyenv prefix "$v")/bin/python3.10")
    done
  fi
  candidates+=(/usr/bin/python3.10 /usr/local/bin/python3.10 python3)
  local c
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

# What the install depends on: the lock, setup.py, this script, and the package folders (an
# editable install maps the packages that existed when it ran).
stamp_of() {
  { cat "$repo_root/requirements.lock" "$repo_root/setup.py" "$repo_root/tools/ensure_env.sh"
    (cd "$repo_root" && find inception_retrain -name __init__.py -not -path "*/__pycache__/*" | sort); } | sha256sum | cut -d' ' -f1
}

if [ ! -x "$venv/bin/python" ]; then
  if ! py="$(find_python310)"; then
    echo "error: Python 3.10 not found (TFX 1.16 needs Python 3.9 or 3.10)." >&2
    echo "  Install it (your OS packages, 'pyenv install 3.10', or 'uv python install 3.10')," >&2
    echo "  or point PYTHON at a 3.10 interpreter: PYTHON=/path/to/python3.10 ${0##*/}" >&2
    exit 1
  fi
  echo "[setup] creating $venv with $py"
  "$py" -m venv "$venv"
fi

if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$(stamp_of)" ]; then
  echo "[setup] installing the pinned stack from requirements.lock (about a minute with uv)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
  # --compile-bytecode: .pyc files for all of site-packages, written once here. Without them
  # every process (each test subprocess, each Beam worker) compiles TensorFlow's sources again
  # when PYTHONDONTWRITEBYTECODE is set, as on CI, or the venv is read-only.
  "$venv/bin/uv" pip sync --quiet --compile-bytecode --python "$venv/bin/python" \
    "$repo_root/requirements.lock"
  "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --no-deps -e "$repo_root"
  stamp_of > "$venv/.installed"
fi

}

_ir_repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A plain command, not an `if` condition: bash ignores set -e inside a condition's subshell.
(_ir_setup "$_ir_repo_root")
_ir_status=$?
unset -f _ir_setup
if [ "$_ir_status" -ne 0 ]; then
  unset _ir_status _ir_repo_root
  return 1 2>/dev/null || exit 1
fi
unset _ir_status
export TF_USE_LEGACY_KERAS=1
export PATH="$_ir_repo_root/.venv/bin:$PATH"
unset _ir_repo_root
