"""Thin ComfyUI node classes. `comfy_adapter` is the only module here that touches ComfyUI itself."""
