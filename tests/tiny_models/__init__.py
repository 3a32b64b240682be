"""Session fixtures that build the tiny models (``headless/tiny_models/``) once under one temporary models folder,
plus test-only meshes (``render.py``)."""
