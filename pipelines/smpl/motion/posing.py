"""A body model playing an SMPL_SEQUENCE: which motions it can play, and the posed vertices and joints."""
from __future__ import annotations

from .sequence import body_kwargs


def motion_types(model) -> tuple[str, ...]:
    """Sequence ``model_type`` values the body model can play (Anny: SMPL and SMPL-X rotations)."""
    return tuple(model.motion_types)


def check_motion_type(model, *seqs) -> None:
    types = motion_types(model)
    bad = [seq["model_type"] for seq in seqs if seq.get("model_type", "smpl") not in types]
    if bad:
        raise ValueError(f"the sequence is {bad[0]!r} but the body model is {model.model_type!r} (it plays "
                         f"{', '.join(types)}); load the matching body model (Load Body Model).")


def pose_sequence(model, seq: dict, *, batch_size: int = 64):
    """Camera-space vertices `(T, V, 3)` and the model's joints (smplx `(T, 45, 3)`, Anny `(T, 63, 3)`), on CPU.

    The whole sequence's vertices stay on the CPU (25 MB for 300 SMPL frames); renderers move one chunk at a
    time to their device.
    """
    check_motion_type(model, seq)
    vertices, joints = model.forward(seq["betas"], seq["global_orient"], seq["body_pose"], seq["transl"],
                                     device="cpu", batch_size=batch_size, **body_kwargs(seq))
    return vertices.float(), joints.float()
