"""SMPL-format joint rotations → the Anny rig (docs/architecture.md, *Reference algorithms*): bone map, rest
alignment, axis change, root offset.

Anny (z-up, facing −y, body's left on +x) is posed in its ``world-orient`` parameterisation: every bone gets a
world rotation ``G_b`` that maps its rest orientation to the posed one. For a bone driven by SMPL joint ``j``::

    G_b = S_j · A_b          D_b = G_b · R_b   (the delta Anny reads: the bone's posed world orientation)

with ``S_j`` SMPL's global rotation of joint ``j`` (the local rotations chained down SMPL's tree, root =
``global_orient``), ``R_b`` Anny's rest orientation of the bone and ``A_b`` a fixed rest alignment measured on the
shaped rest skeleton: the axis change (SMPL y-up, z-forward → Anny z-up, −y forward: Anny = Rx(+90°)·SMPL, so
``A_b`` starts with its inverse and the posed body comes out in SMPL's axes) followed by the smallest rotation
turning the Anny bone (head → head of the bone mapped to SMPL's child joint) onto SMPL's T-pose bone direction.
Legs, spine, neck, collars, arms and fingers are all measured; the wrist also gets its twist (palm down: the
index→pinky knuckle line points backwards), fingers are straightened along the hand. Bones without an SMPL
joint (``upperarm02``, ``metacarpal*``, ``neck02``...) follow their nearest mapped ancestor, except the forearm
twist bones (``lowerarm02``), which take half of the wrist's twist about the line through their head and the
wrist (so the wrist stays exactly where SMPL's kinematics put it, and a twisted hand does not pinch the wrist). The root head is put
at SMPL's neutral pelvis (``transl`` in SMPL files is relative to it), so ``root = transl + SMPL_REST_JOINTS[0]``.

Everything here is plain torch (differentiable in the rest skeleton, so the shape fit can go through it).
"""
from __future__ import annotations

import torch

from .joints import SMPL_PARENTS
from .joints import SMPL_REST_JOINTS as _REST_JOINTS
from .rotations import axis_angle_to_matrix_torch

# SMPL's neutral T-pose joints (metres, x = body's left, y up, z forward); only their directions are used, and
# joint 0 as the root offset.
SMPL_REST_JOINTS = torch.tensor(_REST_JOINTS, dtype=torch.float64)
# Anny bone whose head is SMPL joint j (hand / foot joints: the middle finger / toe base).
SMPL_JOINT_BONES = [
    "root", "upperleg01.L", "upperleg01.R", "spine03", "lowerleg01.L", "lowerleg01.R", "spine02", "foot.L",
    "foot.R", "spine01", "toe3-1.L", "toe3-1.R", "neck01", "clavicle.L", "clavicle.R", "head", "upperarm01.L",
    "upperarm01.R", "lowerarm01.L", "lowerarm01.R", "wrist.L", "wrist.R", "finger3-1.L", "finger3-1.R",
]
# SMPL joint driving each mapped Anny bone (other bones follow their parent).
DRIVEN = {"root": 0, "spine03": 3, "spine02": 6, "spine01": 9, "neck01": 12, "head": 15}
for _side, _o in (("L", 0), ("R", 1)):
    DRIVEN.update({f"upperleg01.{_side}": 1 + _o, f"lowerleg01.{_side}": 4 + _o, f"foot.{_side}": 7 + _o,
                   f"clavicle.{_side}": 13 + _o, f"upperarm01.{_side}": 16 + _o, f"lowerarm01.{_side}": 18 + _o,
                   f"wrist.{_side}": 20 + _o})
    for _k in range(1, 6):
        DRIVEN[f"toe{_k}-1.{_side}"] = 10 + _o
    for _k in range(2, 6):
        DRIVEN[f"finger{_k}-1.{_side}"] = 22 + _o
# SMPL-H / SMPL-X hand joints (MANO order, 15 per hand: index, middle, pinky, ring, thumb × 3) → Anny fingers.
MANO_FINGERS = (2, 3, 5, 4, 1)  # Anny finger number of MANO's index, middle, pinky, ring, thumb
HAND_BONES = {side: [f"finger{f}-{k}.{side}" for f in MANO_FINGERS for k in (1, 2, 3)] for side in ("L", "R")}
NUM_HAND_JOINTS = 15
# Axis change: a vector in Anny's axes is AXIS_CHANGE @ (the same vector in SMPL's axes).
AXIS_CHANGE = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)


def smpl_global_rotations(global_orient: torch.Tensor, body_pose: torch.Tensor,
                          hand_pose: torch.Tensor | None = None) -> torch.Tensor:
    """SMPL's world rotations of its joints, the local ones chained down the tree.

    Args:
        global_orient (`(T,3)`), body_pose (`(T,69)`): axis-angle.
        hand_pose (`(T,90)`, *optional*): SMPL-H/X finger rotations (left 15 then right 15, MANO order).

    Returns:
        `(T,24,3,3)`, or `(T,54,3,3)` with the 30 finger joints appended (their parent is the wrist, then the
        previous knuckle of the same finger).
    """
    frames = global_orient.shape[0]
    local = axis_angle_to_matrix_torch(torch.cat([global_orient, body_pose], 1).reshape(frames, 24, 3))
    world = [local[:, 0]]
    for j in range(1, 24):
        world.append(world[SMPL_PARENTS[j]] @ local[:, j])
    if hand_pose is not None:
        fingers = axis_angle_to_matrix_torch(hand_pose.reshape(frames, 2 * NUM_HAND_JOINTS, 3))
        for side, wrist in ((0, 20), (1, 21)):
            for j in range(NUM_HAND_JOINTS):
                parent = world[wrist] if j % 3 == 0 else world[-1]
                world.append(parent @ fingers[:, side * NUM_HAND_JOINTS + j])
    return torch.stack(world, 1)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def smallest_rotation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(3,3) rotation turning unit vector ``a`` onto unit vector ``b`` about their common normal."""
    v = torch.linalg.cross(a, b)
    c = (a * b).sum()
    zero = torch.zeros((), dtype=a.dtype, device=a.device)
    k = torch.stack([zero, -v[2], v[1], v[2], zero, -v[0], -v[1], v[0], zero]).reshape(3, 3)
    return torch.eye(3, dtype=a.dtype, device=a.device) + k + k @ k / (1 + c).clamp_min(1e-6)


def _frame(primary: torch.Tensor, secondary: torch.Tensor) -> torch.Tensor:
    e1 = _unit(primary)
    e2 = _unit(secondary - (secondary * e1).sum() * e1)
    return torch.stack([e1, e2, torch.linalg.cross(e1, e2)], -1)


class Retarget:
    """The fixed per-bone data of the retarget for one rig (bone names and parents).

    Attributes:
        source (`LongTensor (B,)`): for each Anny bone, the SMPL joint (0..23) or finger joint (24..53) whose
            world rotation drives it.
        source_no_hands (`LongTensor (B,)`): the same when no SMPL-H/X finger poses are given.
        joint_bones (`LongTensor (24,)`): bone index whose head is each SMPL joint.
    """

    def __init__(self, bone_labels: list[str], bone_parents):
        self.labels = list(bone_labels)
        self.parents = [int(p) for p in bone_parents]
        index = {name: i for i, name in enumerate(self.labels)}
        missing = [name for name in list(DRIVEN) + SMPL_JOINT_BONES if name not in index]
        if missing:
            raise ValueError(f"the Anny rig lacks the bones {missing[:6]}; load the default 'anny' rig.")
        self.index = index
        self.joint_bones = torch.tensor([index[name] for name in SMPL_JOINT_BONES])
        self.driver_bone = []  # nearest mapped ancestor-or-self of each bone
        for b, name in enumerate(self.labels):
            parent = self.parents[b]
            self.driver_bone.append(b if name in DRIVEN or parent < 0 else self.driver_bone[parent])
        body = [DRIVEN.get(self.labels[self.driver_bone[b]], 0) for b in range(len(self.labels))]
        self.source_no_hands = torch.tensor(body)
        with_hands = list(body)
        self.finger_bones = {}
        for side_index, side in enumerate(("L", "R")):
            for j, name in enumerate(HAND_BONES[side]):
                self.finger_bones[name] = 24 + side_index * NUM_HAND_JOINTS + j
        for b in range(len(self.labels)):  # finger bones and what hangs below them follow the finger joints
            d = b
            while d >= 0 and self.labels[d] not in self.finger_bones:
                d = self.parents[d]
            if d >= 0:
                with_hands[b] = self.finger_bones[self.labels[d]]
        self.source = torch.tensor(with_hands)
        # forearm twist bones: (bone, elbow joint, wrist joint, wrist bone)
        self.twist = [(index[f"lowerarm02.{side}"], 18 + o, 20 + o, index[f"wrist.{side}"])
                      for side, o in (("L", 0), ("R", 1)) if f"lowerarm02.{side}" in index]

    # ------------------------------------------------------------------------------------------------------------
    def alignment(self, rest_heads: torch.Tensor) -> torch.Tensor:
        """Per-bone rest alignment ``A_b`` `(B,3,3)` (Anny rest axes → SMPL T-pose, in SMPL's axes).

        Args:
            rest_heads (`(B,3)`): Anny's rest bone heads (its own axes) for one phenotype.
        """
        dtype, device = rest_heads.dtype, rest_heads.device
        to_smpl = AXIS_CHANGE.to(dtype=dtype, device=device).T
        p = rest_heads @ to_smpl.T  # heads in SMPL's axes
        smpl = SMPL_REST_JOINTS.to(dtype=dtype, device=device)
        head = {name: p[self.index[name]] for name in self.index}
        # child joint of each SMPL joint whose bone direction is aligned (leaf joints take their parent's)
        child = {0: None, 1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12, 12: 15, 13: 16, 14: 17, 16: 18,
                 17: 19, 18: 20, 19: 21, 20: 22, 21: 23}
        joint_align: dict[int, torch.Tensor] = {0: to_smpl}
        for j in range(1, 24):
            k = child.get(j)
            if k is None:  # feet, head, hands: as their parent joint
                joint_align[j] = joint_align[SMPL_PARENTS[j]]
                continue
            a = _unit(head[SMPL_JOINT_BONES[k]] - head[SMPL_JOINT_BONES[j]])
            b = _unit(smpl[k] - smpl[j])
            if j in (20, 21):  # wrist: hand direction and palm down (index → pinky knuckles point backwards)
                side = "L" if j == 20 else "R"
                knuckles = head[f"finger5-1.{side}"] - head[f"finger2-1.{side}"]
                backwards = torch.tensor([0.0, 0.0, -1.0], dtype=dtype, device=device)
                joint_align[j] = _frame(b, backwards) @ _frame(a, knuckles).T @ to_smpl
            else:
                joint_align[j] = smallest_rotation(a, b) @ to_smpl
        bones = []
        hand_dir = {"L": _unit(smpl[22] - smpl[20]), "R": _unit(smpl[23] - smpl[21])}
        straight: dict[str, torch.Tensor] = {}
        for b, name in enumerate(self.labels):
            driver = self.labels[self.driver_bone[b]]
            align = joint_align[DRIVEN.get(driver, 0)]
            finger = name if name.startswith("finger") and not name.startswith("finger1") else None
            if finger is not None:  # fingers 2..5 straightened along the hand (rotated with the wrist first)
                side = name[-1]
                wrist_align = joint_align[20 if side == "L" else 21]
                parent = self.parents[b]
                tail_child = [c for c, pc in enumerate(self.parents) if pc == b]
                if tail_child:
                    direction = wrist_align @ (rest_heads[tail_child[0]] - rest_heads[b])
                    straight[name] = smallest_rotation(_unit(direction), hand_dir[side]) @ wrist_align
                    align = straight[name]
                else:
                    align = straight.get(self.labels[parent], wrist_align)
            bones.append(align)
        return torch.stack(bones)

    def twist_axes(self, rest_heads: torch.Tensor, alignment: torch.Tensor) -> torch.Tensor:
        """`(n,3)` unit axes (T-pose, SMPL axes) from each forearm twist bone's head to the wrist's head."""
        if not self.twist:
            return rest_heads.new_zeros(0, 3)
        return torch.stack([_unit(alignment[bone] @ (rest_heads[wrist] - rest_heads[bone]))
                            for bone, _, _, wrist in self.twist])

    def bone_rotations(self, world: torch.Tensor, alignment: torch.Tensor,
                       twist_axes: torch.Tensor | None = None) -> torch.Tensor:
        """``G_b = S_source(b) · A_b``: `(T,B,3,3)` from SMPL world rotations `(T,24|54,3,3)`.

        With ``twist_axes`` (:meth:`twist_axes`), the forearm twist bones also turn by half of the wrist's
        local twist about their axis.
        """
        source = self.source if world.shape[1] > 24 else self.source_no_hands
        rotations = world[:, source.to(world.device)] @ alignment[None]
        if twist_axes is None or not self.twist:
            return rotations
        rotations = rotations.clone()
        for (bone, elbow, wrist, _), axis in zip(self.twist, twist_axes):
            local = world[:, elbow].transpose(-1, -2) @ world[:, wrist]  # the wrist's own rotation
            vector = torch.stack([local[:, 2, 1] - local[:, 1, 2], local[:, 0, 2] - local[:, 2, 0],
                                  local[:, 1, 0] - local[:, 0, 1]], -1)
            trace = local[:, 0, 0] + local[:, 1, 1] + local[:, 2, 2]
            half = torch.atan2(vector @ axis, 1 + trace)  # half the twist angle about the axis
            twist = axis_angle_to_matrix_torch(axis[None] * half[:, None])
            rotations[:, bone] = world[:, elbow] @ twist @ alignment[bone]
        return rotations
