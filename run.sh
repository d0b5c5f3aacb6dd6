#!/usr/bin/env bash
# Runs the local pipeline (LocalDagRunner) on the embedded default dataset, or on the
# arguments given (see `run.sh --help`). Creates .venv on first use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/tools/ensure_env.sh"
exec inception-retrain run "$@"
