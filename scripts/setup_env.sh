#!/usr/bin/env bash
# Create/refresh the project's virtual environment (.venv) with everything MotionGuide and its tests need.
# Idempotent: a second run installs only what is missing. Sourced by scripts/demo.sh and scripts/test.sh.
#   MOTIONGUIDE_VENV   where the venv lives (default: <repo>/.venv)
#   ANNY_CACHE_DIR     where the built-in body's one-time cache is built (default: ComfyUI's models/anny, or
#                      ./models/anny outside ComfyUI); MOTIONGUIDE_SKIP_ANNY=1 skips building it
#   TORCH_SPEC         torch requirement when torch is missing (default torch==2.13.0; on a CUDA machine you may
#                      prefer the wheel matching your driver, e.g. from the PyTorch index)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MOTIONGUIDE_VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$PY" ]; then
  echo "[setup] creating virtual environment $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

# torch first and pinned, so nothing below can swap it for another build.
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "[setup] installing ${TORCH_SPEC:-torch==2.13.0}" >&2
  pip_install "${TORCH_SPEC:-torch==2.13.0}"
fi
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
"$PY" -c "import torch; print('torch==' + torch.__version__)" > "$CONSTRAINTS"

STAMP="$VENV/.motionguide-requirements"
WANT="$(cat "$REPO/requirements.txt" "$REPO/requirements-dev.txt" "$CONSTRAINTS" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[setup] installing requirements.txt and requirements-dev.txt" >&2
  pip_install -c "$CONSTRAINTS" -r "$REPO/requirements.txt" -r "$REPO/requirements-dev.txt"
  # pyrender 0.1.45 pins PyOpenGL==3.1.0, which has no working OSMesa; install it without that pin.
  pip_install -c "$CONSTRAINTS" --no-deps "pyrender==0.1.45"
  pip_install -c "$CONSTRAINTS" "pyglet<2" freetype-py imageio networkx six "PyOpenGL>=3.1.5"
  echo "$WANT" > "$STAMP"
fi
export MOTIONGUIDE_PY="$PY"
# The built-in Anny body's one-time cache (~1 min on 2 cores, ~50 MB kept): built here so the first workflow
# does not wait for it. A second run only checks it.
if [ "${MOTIONGUIDE_SKIP_ANNY:-0}" != "1" ]; then
  "$PY" "$REPO/cli.py" anny >&2 || echo "[setup] warning: the built-in Anny body cache could not be built" >&2
fi
