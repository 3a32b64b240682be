#!/usr/bin/env bash
# Animate the shipped sample: real weights when present under the models directory, otherwise a clearly labelled
# smoke run on tiny random models. Writes a video under ./output. Extra arguments go to `cli.py demo`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/setup_env.sh"
exec "$MOTIONGUIDE_PY" "$REPO/cli.py" demo "$@"
