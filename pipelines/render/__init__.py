"""SMPL guidance rendering: a torch z-buffer rasteriser and a pyrender backend behind one interface
(:func:`.maps.render_maps`), the maps built from them, and the 3D-aware OpenPose skeleton (:mod:`.skeleton`).

Modules are imported directly (``from .maps import render_maps``); nothing here imports OpenGL.
"""
