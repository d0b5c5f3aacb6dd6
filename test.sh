#!/usr/bin/env bash
# Runs the test suite (pytest arguments pass through). Creates .venv on first use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/tools/ensure_env.sh"
cd "$(dirname "${BASH_SOURCE[0]}")"
exec pytest "$@"
