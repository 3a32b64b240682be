"""The ``SMPL_MODEL`` socket's interface: what every body model of the pack provides.

A body plays SMPL-format motion: joint rotations in SMPL's 24-joint layout (axis-angle ``global_orient (T,3)`` and
``body_pose (T,69)``) plus a translation, whatever its own mesh and rig. Two bodies implement it today:
:class:`.body_model.BodyModel` (SMPL / SMPL-X files through smplx, shaped by ``betas``) and
:class:`.anny_body.AnnyBody` (the built-in Anny body, shaped by a ``phenotype``). Code that receives an
``SMPL_MODEL`` uses only what this protocol lists; ``shape_kind`` says which shape parameters the body reads, so no
caller has to test for attributes. To add a body see docs/architecture.md, *Add a body model*.

Shapes: ``T`` frames, ``V`` vertices, ``F`` faces, ``J`` the joints :meth:`SMPLModel.forward` returns (smplx 45,
Anny 63; the first 24 are SMPL's joints in SMPL's order for both).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # the node layer imports this while ComfyUI builds its node list: keep it light
    import numpy as np

SHAPE_KINDS = ("betas", "phenotype")


@runtime_checkable
class SMPLModel(Protocol):
    """A body that performs SMPL-format motion (the ``SMPL_MODEL`` payload).

    Attributes:
        model_type (`str`): the body's own kind: ``"smpl"``, ``"smplx"`` or ``"anny"``.
        motion_types (`tuple[str, ...]`): the sequence ``model_type`` values it can play.
        shape_kind (`str`): ``"betas"`` (shaped by a sequence's ``betas (T,10)``) or ``"phenotype"`` (shaped by
            its ``phenotype (6,)`` in 0..1; betas are ignored). Set Body Shape works on ``"phenotype"`` bodies.
        has_hands (`bool`): whether SMPL-H/X finger poses (``hand_pose (T,90)``) move fingers.
        gender (`str`): ``"neutral"``, ``"male"`` or ``"female"``.
        source (`str`): where it was loaded from (for messages).
        faces (`np.ndarray (F,3) int64`): triangle vertex indices.
        part_labels (`np.ndarray (V,) int64`): SMPL's 24 body parts (0..23) per vertex, by largest skinning weight.
        num_vertices (`int`): ``V``.
        parents (`np.ndarray (24,) int64`): SMPL's kinematic tree over :meth:`rest_joints`, -1 for the root.
    """

    model_type: str
    motion_types: tuple[str, ...]
    shape_kind: str
    has_hands: bool
    gender: str
    source: str
    faces: np.ndarray
    part_labels: np.ndarray
    num_vertices: int
    parents: np.ndarray

    def forward(self, betas, global_orient, body_pose, transl=None, *, phenotype=None, hand_pose=None,
                device=None, batch_size: int = 64):
        """Posed vertices and joints.

        Args:
            betas (`array (T,10)` or `(10,)`): shape coefficients (``shape_kind == "betas"``; ignored otherwise).
            global_orient (`array (T,3)`), body_pose (`array (T,69)`): SMPL-layout axis-angle rotations.
            transl (`array (T,3)`, *optional*): translation added to the posed body (camera coordinates in an
                ``SMPL_SEQUENCE``).
            phenotype (`array (6,)`, *optional*): the shape of a ``"phenotype"`` body; ignored otherwise.
            hand_pose (`array (T,90)`, *optional*): finger rotations, used when ``has_hands``.
            device (`torch.device`, *optional*, defaults to CPU), batch_size (`int`): frames per inner call.

        Returns:
            `(vertices (T,V,3), joints (T,J,3))` float32 tensors on ``device``.
        """
        ...

    def __call__(self, *args, **kwargs):
        """Same as :meth:`forward`."""
        ...

    def openpose18(self, joints):
        """OpenPose-18 3D points `(T,18,3)` from :meth:`forward`'s joints `(T,J,3)`."""
        ...

    def rest_joints(self, betas=None, phenotype=None) -> np.ndarray:
        """`(T,24,3)` float64 SMPL-layout joints of the shaped body at rest (no pose, no translation); ``T`` from
        ``betas`` (1 when None)."""
        ...

    def rest_height(self, betas=None, phenotype=None) -> np.ndarray:
        """`(T,)` standing height in metres (vertical extent of the shaped rest mesh)."""
        ...

    def rest_vertices(self, betas=None, phenotype=None) -> np.ndarray:
        """`(V,3)` float64 shaped rest vertices in SMPL's axes (y up)."""
        ...


def shapes_with_phenotype(model) -> bool:
    """Whether the body is shaped by an Anny phenotype (Set Body Shape applies) rather than by betas."""
    return model.shape_kind == "phenotype"
