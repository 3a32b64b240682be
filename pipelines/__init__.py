"""Framework-free work of the pack (torch/numpy/onnxruntime only, never comfy)."""
