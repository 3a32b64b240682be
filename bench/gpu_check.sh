#!/usr/bin/env bash
# One-command GPU check: CUDA tests, sampler speed/TFLOP/s/memory at 576×1024 (real-size random weights), chunked
# decode, DWPose on onnxruntime CUDA, the torch rasteriser on CUDA, HMR2 ViT-H. Under 8 minutes on one H100/H200;
# prints one table and writes output/gpu_check-<time>.json. No weights needed.
#   bash bench/gpu_check.sh              # the real check (needs a CUDA GPU)
#   bash bench/gpu_check.sh --dry-run    # every code path on the CPU at tiny sizes (what CI runs)
#   bash bench/gpu_check.sh --only sampler_fp16,decode --json /tmp/result.json
# Uses $MOTIONGUIDE_PYTHON, else $MOTIONGUIDE_VENV/bin/python, else .venv/bin/python (set up with
# scripts/setup_env.sh), else python3.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PY="${MOTIONGUIDE_PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in "${MOTIONGUIDE_VENV:-$REPO/.venv}/bin/python" "$REPO/.venv/bin/python"; do
    if [ -x "$candidate" ]; then PY="$candidate"; break; fi
  done
fi
PY="${PY:-python3}"
export MOTIONGUIDE_NO_COMFY=1 PYTHONUNBUFFERED=1
# hard stop a little under 8 minutes whatever happens inside (each measurement also has its own time box)
exec timeout --kill-after=5 470 "$PY" "$REPO/bench/gpu_check.py" "$@"
