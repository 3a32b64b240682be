#!/usr/bin/env bash
# Create/refresh the project's virtual environment (.venv) with everything MotionGuide and its tests need.
# Idempotent: a second run installs only what is missing. Sourced by scripts/demo.sh and scripts/test.sh.
#   MOTIONGUIDE_VENV   where the venv lives (default: <repo>/.venv)
#   ANNY_CACHE_DIR     where the built-in body's one-time cache is built (default: ComfyUI's models/anny when the
#                      pack is in ComfyUI/custom_nodes, else ~/.cache/anny, the one cache per machine that the
#                      demo, the command line and the tests share); MOTIONGUIDE_SKIP_ANNY=1 skips building it
#   TORCH_SPEC         torch requirement when torch is missing (default torch==2.13.0; on a CUDA machine you may
#                      prefer the wheel matching your driver, e.g. from the PyTorch index)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MOTIONGUIDE_VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$PY" ]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "[setup] MotionGuide needs Python >= 3.10; '$PYTHON' is $("$PYTHON" --version 2>&1 || echo missing)." \
         "Set PYTHON=/path/to/python3.x and run again." >&2
    exit 1
  fi
  echo "[setup] creating virtual environment $VENV (first run: a few minutes, about 2 GB with a CPU torch)" >&2
  if ! "$PYTHON" -m venv "$VENV"; then
    rm -rf "$VENV"
    echo "[setup] '$PYTHON -m venv' failed: on Debian/Ubuntu install the venv module with" \
         "\`apt-get install python3-venv\` (or python3.X-venv for your version) and run again." >&2
    exit 1
  fi
fi
pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }
# Version of an installed distribution without importing it (importing torch before numpy is installed prints a
# harmless but alarming "Failed to initialize NumPy" warning).
installed_version() { "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null; }

# torch first and pinned, so nothing below can swap it for another build.
if ! TORCH_VERSION="$(installed_version torch)"; then
  echo "[setup] installing ${TORCH_SPEC:-torch==2.13.0}" >&2
  pip_install "${TORCH_SPEC:-torch==2.13.0}"
  TORCH_VERSION="$(installed_version torch)"
fi
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"

STAMP="$VENV/.motionguide-requirements"
WANT="$(cat "$REPO/requirements.txt" "$REPO/requirements-dev.txt" "$REPO/requirements-train.txt" "$CONSTRAINTS" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[setup] installing requirements.txt, requirements-dev.txt and requirements-train.txt" >&2
  # pyrender's own dependencies come with the requirements; pyrender itself last and with --no-deps: it pins
  # PyOpenGL==3.1.0, which has no working OSMesa. Installed in this order pip has nothing to complain about; a
  # later `pip install` into this venv may still print "pyrender 0.1.45 requires PyOpenGL==3.1.0": expected.
  pip_install -c "$CONSTRAINTS" -r "$REPO/requirements.txt" -r "$REPO/requirements-dev.txt" -r "$REPO/requirements-train.txt" \
    "pyglet<2" freetype-py imageio networkx six "PyOpenGL>=3.1.5"
  pip_install -c "$CONSTRAINTS" --no-deps "pyrender==0.1.45"
  echo "$WANT" > "$STAMP"
fi
export MOTIONGUIDE_PY="$PY"
# The built-in Anny body's one-time cache (~1 min on 2 cores, ~50 MB kept): built here so the first workflow
# does not wait for it. A second run only checks it.
if [ "${MOTIONGUIDE_SKIP_ANNY:-0}" != "1" ]; then
  "$PY" "$REPO/cli.py" anny >&2 || echo "[setup] warning: the built-in Anny body cache could not be built" >&2
fi
