#!/usr/bin/env bash
# Run the test suite: sets up .venv when needed, then pytest. Extra arguments go to pytest.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The tests run the real built-in body from the one cache per machine that setup_env.sh, the demo and the command
# line use (~/.cache/anny, the default outside ComfyUI; CI can keep this folder between runs). Set here too so a
# checkout inside ComfyUI/custom_nodes still tests against the same cache.
export ANNY_CACHE_DIR="${ANNY_CACHE_DIR:-$HOME/.cache/anny}"
source "$REPO/scripts/setup_env.sh"
cd "$REPO"
# Lint first: pyflakes errors, syntax errors, and exec/eval (banned by the ComfyUI registry).
"$MOTIONGUIDE_PY" -m ruff check --select F,E9,S102,S307 --output-format concise .
# pytest exits 5 when it collected no test: that must fail, never pass silently.
"$MOTIONGUIDE_PY" -m pytest "$@"
