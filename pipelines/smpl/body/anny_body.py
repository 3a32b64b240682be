"""The built-in Anny body behind the ``SMPL_MODEL`` interface (docs/architecture.md, *Reference algorithms*), driven
by SMPL-format motion.

:class:`AnnyBody` exposes what :class:`.body_model.BodyModel` exposes (``forward``, ``rest_joints``,
``rest_height``, ``faces``, ``part_labels``, ``part_weights``, ``parents``, ``num_vertices``, ``model_type``) plus the Anny shape
(``phenotype``: gender, age, muscle, weight, height, proportions in 0..1) and ``openpose18``. Rotations come in
SMPL's 24-joint layout (``global_orient``, ``body_pose``, optional SMPL-H/X ``hand_pose``) and are retargeted by
:mod:`.anny_retarget`; ``betas`` are accepted and ignored (an SMPL shape cannot become a phenotype).

Joints returned by :meth:`AnnyBody.forward` `(T,63,3)`:

- 0..23: SMPL's 24 joints at the heads of the mapped Anny bones (hands / feet: middle finger / toe base);
- 24..44: smplx's landmark layout (nose, right eye, left eye, right ear, left ear, left big toe, left small toe,
  left heel, right big toe, right small toe, right heel, then left and right thumb, index, middle, ring, pinky
  tips) from Anny's COCO regressor and finger bones, so code written for smplx's 45 joints works unchanged;
- 45..62: OpenPose-18 from the COCO regressor (neck = mean of the shoulders; no SMPL hip push).

The pack never imports ``anny.models.smpl``, never builds the non-commercial ``smpl``/``smplx`` topologies and
never calls Anny's download helper; ``anny`` itself is imported only when a body is loaded.
"""
from __future__ import annotations

import logging
import threading

import numpy as np
import torch

from .anny_retarget import NUM_HAND_JOINTS, SMPL_PARENTS, SMPL_REST_JOINTS, Retarget, smpl_global_rotations
from .phenotype import check_phenotype

logger = logging.getLogger(__name__)

# A young adult of average build between the male and female ends (age 0.67 ≈ young adult, 0.33 ≈ child), 1.71 m
# tall like SMPL's neutral body, so SMPL translations and trajectories keep their scale on the default body.
DEFAULT_PHENOTYPE = (0.5, 0.67, 0.5, 0.5, 0.38, 0.5)
NUM_JOINTS_OUT = 63
OPENPOSE_SLICE = slice(45, 63)
# COCO labels for OpenPose-18 (None = neck, the shoulder midpoint).
OPENPOSE18_COCO = ("nose", None, "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                   "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                   "right_eye", "left_eye", "right_ear", "left_ear")
LANDMARK_COCO = ("nose", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe",
                 "left_heel", "right_big_toe", "right_small_toe", "right_heel")
FINGER_TIPS = [f"finger{k}-3.{side}" for side in ("L", "R") for k in (1, 2, 3, 4, 5)]


def _frames_tensor(value, name: str, width: int, device) -> torch.Tensor:
    t = value if torch.is_tensor(value) else torch.as_tensor(np.asarray(value, dtype=np.float32))
    t = t.to(device=device, dtype=torch.float32)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] != width:
        raise ValueError(f"{name} must have shape (T,{width}); got {tuple(t.shape)}.")
    return t


class AnnyBody:
    """The Anny body (``SMPL_MODEL`` payload). Build it with :func:`.anny_cache.load_anny_body`.

    Attributes:
        model_type (`str`): ``"anny"``; ``motion_types`` = ``("smpl", "smplx")``: the sequences it can play.
        faces (`np.ndarray (F,3) int64`), num_vertices (`int`), part_labels (`np.ndarray (V,) int64` in 0..23).
        parents (`np.ndarray (24,)`): SMPL's tree (joint layout of :meth:`rest_joints`).
        phenotype (`np.ndarray (6,)`): the default shape when a sequence carries none.
        has_hands (`bool`): True: SMPL-H/X finger poses drive the finger bones.
    """

    model_type = "anny"
    motion_types = ("smpl", "smplx")
    gender = "neutral"
    has_hands = True
    shape_kind = "phenotype"  # see .interface.SMPLModel

    def __init__(self, module, source: str = "anny", phenotype=DEFAULT_PHENOTYPE):
        self.source = source
        self._module = module.to(dtype=torch.float32).eval()
        self._modules = {"cpu": self._module}
        self._lock = threading.Lock()
        self.phenotype = check_phenotype(phenotype)
        self.retarget = Retarget(module.bone_labels, module.bone_parents)
        self.bone_labels = list(module.bone_labels)
        self.faces = module.faces.cpu().numpy().astype(np.int64)
        self.num_vertices = int(module.template_vertices.shape[0])
        self.parents = np.array(SMPL_PARENTS, dtype=np.int64)
        self._coco = self._coco_regressor(module)
        self.part_labels = self._part_labels(module)
        self._rest_cache: dict[tuple, dict] = {}

    def __repr__(self) -> str:
        return f"AnnyBody({self.num_vertices} vertices, {len(self.bone_labels)} bones, from {self.source})"

    # ----------------------------------------------------------------------------------------------------------
    def _coco_regressor(self, module) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
        from anny.keypoints import KeypointsRegressor

        reg = KeypointsRegressor.coco(module)
        weights = reg.regression_weights.to(torch.float32)
        used = torch.nonzero(weights.abs().sum(0) > 0)[:, 0]  # vertices any keypoint reads
        weights = weights[:, used].contiguous()
        skin = torch.zeros(len(used), module.bone_count)
        skin.scatter_add_(1, module.vertex_bone_indices[used].long(),
                          module.vertex_bone_weights[used].to(torch.float32))
        per_bone = weights[:, :, None] * skin[None]  # (K, U, B): regressor weight × skinning weight, sparse
        k, u, b = torch.nonzero(per_bone, as_tuple=True)
        self._coco_sparse = (k * module.bone_count + b, u, per_bone[k, u, b], per_bone.sum(1))
        self._coco_rest = (module.template_vertices[used].float(), module.blendshapes[:, used].float())
        return used, weights, {label: i for i, label in enumerate(reg.labels)}

    def _part_labels(self, module) -> np.ndarray:
        """(V,) SMPL part: argmax over parts of the summed skinning weights of the bones driven by each joint."""
        source = self.retarget.source_no_hands.numpy()
        part_of_bone = source.copy()
        for b, name in enumerate(self.bone_labels):
            if name.startswith(("finger", "eye")):
                part_of_bone[b] = 22 if name.endswith(".L") and name.startswith("finger") else \
                    23 if name.startswith("finger") else 15
            elif name.startswith("metacarpal"):
                part_of_bone[b] = 20 if name.endswith(".L") else 21
        weights = module.vertex_bone_weights.detach().cpu().numpy().astype(np.float64)
        indices = module.vertex_bone_indices.detach().cpu().numpy()
        scores = np.zeros((weights.shape[0], 24))
        np.add.at(scores, (np.repeat(np.arange(weights.shape[0]), weights.shape[1]), part_of_bone[indices].ravel()),
                  weights.ravel())
        self.part_weights = scores.astype(np.float32)  # (V, 24): soft part weights for the semantic map's borders
        return np.argmax(scores, 1).astype(np.int64)

    def _module_on(self, device) -> torch.nn.Module:
        key = str(device)
        with self._lock:
            if key not in self._modules:
                import copy

                self._modules[key] = copy.deepcopy(self._module).to(device)
            return self._modules[key]

    # ----------------------------------------------------------------------------------------------------------
    def _phenotype_tensor(self, phenotype, device) -> torch.Tensor:
        if phenotype is None:
            phenotype = self.phenotype
        if torch.is_tensor(phenotype):
            return phenotype.to(device=device, dtype=torch.float32).reshape(1, -1)
        return torch.as_tensor(check_phenotype(phenotype), device=device).reshape(1, -1)

    def rest(self, phenotype=None, device="cpu", mesh: bool = True) -> dict[str, torch.Tensor]:
        """Shaped rest body of one phenotype (cached unless it requires grad; differentiable in it otherwise).
        ``mesh=False`` skips the rest vertices (``None``) when they are not cached already: what the keypoint
        path needs, e.g. the shape fit's search over many phenotypes (such a rest body is not cached).

        Returns:
            dict with ``heads`` `(B,3)` Anny rest bone heads (Anny axes), ``poses`` `(1,B,4,4)` rest bone poses,
            ``vertices`` `(V,3)`, ``alignment`` `(B,3,3)` (see :mod:`.anny_retarget`), ``offset`` `(3,)`: what is
            added to Anny points in SMPL axes to put the root head on SMPL's neutral pelvis, ``to_smpl`` `(3,3)`.
        """
        device = torch.device(device)
        pheno = self._phenotype_tensor(phenotype, device)
        key = None if pheno.requires_grad or torch.is_inference_mode_enabled() else \
            (str(device), *[round(float(v), 6) for v in pheno[0]])
        if key is not None and key in self._rest_cache:
            return self._rest_cache[key]
        if not mesh:
            key = None
        module = self._module_on(device)
        _, values, local, facial = module.get_tensor_inputs(None, pheno, None, None)
        coeffs = module._get_phenotype_blendshape_coefficients(values, local, facial)[0]
        heads = module.template_bone_heads + torch.einsum("a,abc->bc", coeffs, module.bone_heads_blendshapes)
        # the fit (phenotype requiring grad) needs only the vertices the keypoint regressor reads
        vertices = None if pheno.requires_grad or not mesh else \
            module.template_vertices + torch.einsum("a,avc->vc", coeffs, module.blendshapes)
        # Posed in 'world-orient', a bone's skinning rotation is exactly the orientation we give it times the
        # inverse of its rest orientation: the rest orientations cancel, so identity ones (no Procrustes) do.
        poses = torch.eye(4, device=device).repeat(1, len(heads), 1, 1)
        poses[0, :, :3, 3] = heads
        to_smpl = torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]], device=device)
        offset = SMPL_REST_JOINTS[0].to(device=device, dtype=torch.float32) - to_smpl @ heads[0]
        alignment = self.retarget.alignment(heads)
        rest = {"heads": heads, "poses": poses, "vertices": vertices, "coeffs": coeffs, "alignment": alignment,
                "twist_axes": self.retarget.twist_axes(heads, alignment), "offset": offset, "to_smpl": to_smpl}
        if key is not None:
            if len(self._rest_cache) > 32:
                self._rest_cache.clear()
            self._rest_cache[key] = rest
        return rest

    def rest_joints(self, betas=None, phenotype=None) -> np.ndarray:
        """(T,24,3) float64 SMPL-layout rest joints in SMPL's axes, root on SMPL's neutral pelvis (T from betas)."""
        frames = 1 if betas is None else np.atleast_2d(np.asarray(betas)).shape[0]
        rest = self.rest(phenotype)
        joints = rest["heads"][self.retarget.joint_bones] @ rest["to_smpl"].T + rest["offset"]
        return np.repeat(joints.detach().cpu().numpy().astype(np.float64)[None], frames, 0)

    def rest_height(self, betas=None, phenotype=None) -> np.ndarray:
        """(T,) standing height in metres (vertical extent of the shaped rest mesh)."""
        frames = 1 if betas is None else np.atleast_2d(np.asarray(betas)).shape[0]
        z = self.rest(phenotype)["vertices"][:, 2]
        return np.full(frames, float(z.max() - z.min()))

    def rest_vertices(self, betas=None, phenotype=None) -> np.ndarray:
        """(V,3) float64 shaped rest vertices in SMPL's axes, root on SMPL's neutral pelvis."""
        rest = self.rest(phenotype)
        return (rest["vertices"] @ rest["to_smpl"].T + rest["offset"]).detach().cpu().numpy().astype(np.float64)

    # ----------------------------------------------------------------------------------------------------------
    def _bone_transforms(self, module, rest, global_orient, body_pose, transl, hand_pose):
        """Anny's skinning transforms and posed bone poses `(T,B,4,4)` for SMPL-format rotations."""
        device = global_orient.device
        world = smpl_global_rotations(global_orient, body_pose, hand_pose)
        rotations = self.retarget.bone_rotations(world, rest["alignment"], rest["twist_axes"])  # (T,B,3,3)
        frames, bones = rotations.shape[:2]
        orient = rotations @ rest["poses"][:, :, :3, :3]  # each bone's posed world orientation
        root = transl + SMPL_REST_JOINTS[0].to(device=device, dtype=transl.dtype)  # only the root's is read
        column = torch.cat([root[:, None, :, None], torch.zeros(frames, bones - 1, 3, 1, device=device)], 1)
        top = torch.cat([orient, column], -1)
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], device=device).expand(frames, bones, 1, 4)
        delta = torch.cat([top, bottom], -2)
        return module.get_bone_transforms(delta, rest["poses"], pose_parameterization="world-orient")

    def pose(self, global_orient: torch.Tensor, body_pose: torch.Tensor, transl: torch.Tensor, *,
             phenotype=None, hand_pose: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Core of :meth:`forward` for one batch (tensors on one device, float32; differentiable).

        Returns:
            `(vertices (T,V,3), joints (T,63,3))`.
        """
        device = global_orient.device
        rest = self.rest(phenotype, device)
        module = self._module_on(device)
        transforms, poses = self._bone_transforms(module, rest, global_orient, body_pose, transl, hand_pose)
        rest_vertices = rest["vertices"]
        if rest_vertices is None:  # a phenotype requiring grad: the whole mesh, differentiably
            rest_vertices = module.template_vertices + torch.einsum("a,avc->vc", rest["coeffs"], module.blendshapes)
        vertices = module.get_skinned_vertices(rest_vertices[None].expand(transforms.shape[0], -1, -1),
                                               transforms)
        return vertices, self._joints(vertices, poses[..., :3, 3])

    def openpose_keypoints(self, global_orient: torch.Tensor, body_pose: torch.Tensor, transl: torch.Tensor, *,
                           phenotype: torch.Tensor) -> torch.Tensor:
        """OpenPose-18 3D points `(T,18,3)`, skinning only the vertices the COCO regressor reads.

        Differentiable in ``phenotype`` `(1,6)` and the pose: the shape fit's fast path (no full mesh).
        """
        device = global_orient.device
        rest = self.rest(phenotype, device, mesh=False)
        module = self._module_on(device)
        transforms, _ = self._bone_transforms(module, rest, global_orient, body_pose, transl, None)
        coco = self._coco[2]
        slot, vertex, value, bone_sum = (t.to(device) for t in self._coco_sparse)
        # LBS and the regressor are both linear: regress each bone's share of the rest points first, then move
        # those (keypoints × bones) instead of every skinned vertex.
        template, blend = (t.to(device) for t in self._coco_rest)
        rest_points = template + torch.einsum("a,auc->uc", rest["coeffs"], blend)  # rest vertices read
        share = torch.zeros(bone_sum.numel(), 3, device=device).index_add(
            0, slot, value[:, None] * rest_points[vertex]).view(*bone_sum.shape, 3)
        points = (torch.einsum("tbij,kbj->tki", transforms[..., :3, :3], share)
                  + torch.einsum("tbi,kb->tki", transforms[..., :3, 3], bone_sum))
        op = [points[:, coco[name]] if name else 0.5 * (points[:, coco["left_shoulder"]] +
                                                         points[:, coco["right_shoulder"]])
              for name in OPENPOSE18_COCO]
        return torch.stack(op, 1)

    def _joints(self, vertices: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        used, weights, coco = self._coco
        points = torch.einsum("kv,tvc->tkc", weights.to(vertices.device), vertices[:, used.to(vertices.device)])
        index = self.retarget.index
        smpl24 = heads[:, self.retarget.joint_bones.to(heads.device)]
        landmarks = points[:, [coco[name] for name in LANDMARK_COCO]]
        tip_bones = [index[name] for name in FINGER_TIPS]
        before = [self.retarget.parents[b] for b in tip_bones]
        tips = 2 * heads[:, tip_bones] - heads[:, before]
        op = [points[:, coco[name]] if name else 0.5 * (points[:, coco["left_shoulder"]] +
                                                         points[:, coco["right_shoulder"]])
              for name in OPENPOSE18_COCO]
        return torch.cat([smpl24, landmarks, tips, torch.stack(op, 1)], 1)

    @torch.no_grad()  # not inference_mode: roma caches device constants that the shape fit's autograd reuses
    def forward(self, betas, global_orient, body_pose, transl=None, *, phenotype=None, hand_pose=None,
                device=None, batch_size: int = 64):
        """Posed vertices and joints of SMPL-format motion on the Anny body.

        Args:
            betas (`array (T,10)`, *optional*): ignored (Anny's shape is its phenotype); kept for the interface.
            global_orient (`array (T,3)`), body_pose (`array (T,69)` or SMPL-X's `(T,63)`): axis-angle.
            transl (`array (T,3)`, *optional*): SMPL translation (the pelvis lands at SMPL's neutral pelvis
                + transl).
            phenotype (`array (6,)` or dict, *optional*): body shape in 0..1; defaults to :attr:`phenotype`.
            hand_pose (`array (T,90)`, *optional*): SMPL-H/X finger rotations (left 45 then right 45).
            device (`torch.device`, *optional*, defaults to CPU), batch_size (`int`): frames per Anny call.

        Returns:
            `(vertices (T,V,3), joints (T,63,3))` float32 tensors on ``device`` (joint layout: module docstring).
        """
        device = torch.device(device or "cpu")
        orient = _frames_tensor(global_orient, "global_orient", 3, device)
        pose = torch.as_tensor(np.asarray(body_pose, np.float32)) if not torch.is_tensor(body_pose) else body_pose
        pose = pose.to(device=device, dtype=torch.float32).reshape(orient.shape[0], -1)
        if pose.shape[1] == 63:
            pose = torch.nn.functional.pad(pose, (0, 6))
        pose = _frames_tensor(pose, "body_pose", 69, device)
        frames = orient.shape[0]
        trans = torch.zeros(frames, 3, device=device) if transl is None else _frames_tensor(transl, "transl", 3,
                                                                                             device)
        hands = None if hand_pose is None else _frames_tensor(hand_pose, "hand_pose", 2 * NUM_HAND_JOINTS * 3,
                                                              device)
        counts = {"body_pose": pose.shape[0], "transl": trans.shape[0]}
        if hands is not None:
            counts["hand_pose"] = hands.shape[0]
        if any(n != frames for n in counts.values()):
            raise ValueError(f"frame counts differ: global_orient {frames}, "
                             + ", ".join(f"{k} {n}" for k, n in counts.items()) + ".")
        verts, joints = [], []
        step = max(int(batch_size), 1)
        for start in range(0, frames, step):
            sl = slice(start, start + step)
            v, j = self.pose(orient[sl], pose[sl], trans[sl], phenotype=phenotype,
                             hand_pose=None if hands is None else hands[sl])
            verts.append(v)
            joints.append(j)
        if not verts:
            return (torch.zeros(0, self.num_vertices, 3, device=device),
                    torch.zeros(0, NUM_JOINTS_OUT, 3, device=device))
        return torch.cat(verts).float(), torch.cat(joints).float()

    __call__ = forward

    @staticmethod
    def openpose18(joints: torch.Tensor) -> torch.Tensor:
        """OpenPose-18 3D points `(T,18,3)` from :meth:`forward`'s joints (COCO regressor, no hip push)."""
        return joints[:, OPENPOSE_SLICE]
