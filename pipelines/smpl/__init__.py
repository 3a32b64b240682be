"""SMPL body models, 3D motion sequences, shape transfer and cameras (framework-free)."""
