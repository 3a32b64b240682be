"""SMPL stage nodes (body model, motion I/O, estimation, smoothing, transfer, camera)."""
from .smpl_estimate import MotionGuideEstimateSMPL  # noqa: F401
