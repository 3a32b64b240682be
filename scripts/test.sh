#!/usr/bin/env bash
# Run the test suite: sets up .venv when needed, then pytest. Extra arguments go to pytest.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The tests run the real built-in body: one shared cache per machine (CI can keep this folder between runs).
export ANNY_CACHE_DIR="${ANNY_CACHE_DIR:-$HOME/.cache/anny}"
source "$REPO/scripts/setup_env.sh"
cd "$REPO"
# Lint first: pyflakes errors, syntax errors, and exec/eval (banned by the ComfyUI registry).
"$MOTIONGUIDE_PY" -m ruff check --select F,E9,S102,S307 --output-format concise .
# pytest exits 5 when it collected no test: that must fail, never pass silently.
"$MOTIONGUIDE_PY" -m pytest "$@"
