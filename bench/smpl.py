"""SMPL stage throughput on a 300-frame sequence: the synthetic SMPL body and the built-in Anny body side by side.

Prints frames/s for the body-model forward pass (several batch sizes), smoothing, shape transfer and the camera
move, then for the Anny body (13.7k vertices, retargeted from SMPL rotations): its forward pass, retarget +
transfer + 3D-aware skeleton for 300 frames, the Set Body Shape fit, and map rendering next to SMPL's (6.9k
vertices), all measured in one run. Needs ``anny`` and its cache (``$ANNY_CACHE_DIR`` or ``~/.cache/anny``).
"""
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

cli.use_project_venv(sys.argv[1:], script=__file__, needs=cli.PROJECT_MODULES)  # `python bench/...` uses .venv
import numpy as np  # noqa: E402

cli.load_pack()
from motionguide.headless.tiny_models.smpl import build_synthetic_smpl  # noqa: E402
from motionguide.pipelines.smpl.body.body_model import load_body_model  # noqa: E402
from motionguide.pipelines.smpl.body.rotations import matrix_to_axis_angle, rotation_about_axis  # noqa: E402
from motionguide.pipelines.smpl.motion.camera import set_camera  # noqa: E402
from motionguide.pipelines.smpl.motion.sequence import validate_sequence  # noqa: E402
from motionguide.pipelines.smpl.motion.smoothing import smooth_sequence  # noqa: E402
from motionguide.pipelines.smpl.motion.transfer import transfer_shape  # noqa: E402

FRAMES = 300


def timed(fn, repeat=3):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_body_model(build_synthetic_smpl(Path(tempfile.mkdtemp()) / "smpl"))
    rng = np.random.default_rng(0)
    upright = matrix_to_axis_angle(rotation_about_axis("x", 180.0))
    t = np.arange(FRAMES) / 30.0
    driving = validate_sequence(dict(
        betas=rng.normal(size=(FRAMES, 10)) * 0.3, global_orient=upright + rng.normal(size=(FRAMES, 3)) * 0.02,
        body_pose=rng.normal(size=(FRAMES, 69)) * 0.2, transl=np.stack([0.5 * t, 0 * t, 8 + 0.3 * t], 1),
        image_size=(576, 1024), fps=30.0))
    reference = validate_sequence(dict(betas=rng.normal(size=(1, 10)), global_orient=upright[None],
                                       body_pose=np.zeros((1, 69)), transl=[[0.0, 0.2, 20.0]],
                                       image_size=(512, 768), bbox=[[180, 100, 330, 700]]))
    print(f"SMPL stage, {FRAMES} frames, device {device}, torch threads {torch.get_num_threads()}")
    rows = []
    for batch in (16, 64, 300):
        sec = timed(lambda: model.forward(driving["betas"], driving["global_orient"], driving["body_pose"],
                                          driving["transl"], device=device, batch_size=batch))
        rows.append((f"body-model forward (batch {batch})", sec))
    rows.append(("smoothing (quaternion + Savitzky-Golay)", timed(lambda: smooth_sequence(driving))))
    rows.append(("smoothing (6D + One-Euro)", timed(lambda: smooth_sequence(driving, rotation_space="6d",
                                                                            translation_filter="one_euro"))))
    rows.append(("shape transfer (fit box + ground)",
                 timed(lambda: transfer_shape(driving, reference, model, device=device))))
    rows.append(("camera path (orbit + zoom)",
                 timed(lambda: set_camera(driving, model, yaw=0, yaw_end=90, zoom_end=1.5))))
    base = rows[1][1]
    for name, sec in rows:
        print(f"{name:42s} {FRAMES / sec:10.1f} frames/s   {sec * 1000:8.1f} ms   {sec / base:6.2f}x forward(64)")
    anny_rows(model, driving, reference, device, base)


def anny_rows(smpl_model, driving, reference, device, smpl_base):
    from motionguide.pipelines.render.skeleton import skeleton_keypoints
    from motionguide.pipelines.render.smpl_render import render_sequence_maps, sequence_to_pose_keypoints
    from motionguide.pipelines.smpl.body.anny_cache import anny_status, load_anny_body
    from motionguide.pipelines.smpl.motion.anny_shape import set_body_shape
    from motionguide.pipelines.smpl.motion.posing import pose_sequence

    usable, reason = anny_status()
    if not usable:
        print(f"Anny body skipped: {reason}")
        return
    start = time.perf_counter()
    body = load_anny_body()
    print(f"\nBuilt-in Anny body ({body.num_vertices} vertices) loaded in {time.perf_counter() - start:.1f} s")
    rows = []
    for batch in (16, 64, 300):
        sec = timed(lambda: body.forward(None, driving["global_orient"], driving["body_pose"], driving["transl"],
                                         device=device, batch_size=batch))
        rows.append((f"Anny forward (batch {batch})", sec, FRAMES))

    def transfer_skeleton(model, dense=False):
        moved = transfer_shape(driving, reference, model, device=device)
        sequence_to_pose_keypoints(model, moved, backend="torch", device=device, dense_visibility=dense)

    rows.append(("SMPL transfer + skeleton (300 frames)", timed(lambda: transfer_skeleton(smpl_model), repeat=1),
                 FRAMES))
    rows.append(("  same, dense visibility buffers (reference)",
                 timed(lambda: transfer_skeleton(smpl_model, dense=True), repeat=1), FRAMES))
    rows.append(("Anny retarget + transfer + skeleton (300 frames)", timed(lambda: transfer_skeleton(body), repeat=1),
                 FRAMES))
    # The same with whole visibility buffers rendered (the path before the joints-only sampling).
    rows.append(("  same, dense visibility buffers (reference)",
                 timed(lambda: transfer_skeleton(body, dense=True), repeat=1), FRAMES))
    moved = transfer_shape(driving, reference, body, device=device)
    rows.append(("  of which posing the body (vertices + joints)",
                 timed(lambda: pose_sequence(body, moved), repeat=1), FRAMES))
    # The visibility step alone on the posed body, both paths alternated (best of 3): the load on a shared
    # machine swings more than the whole-pipeline rows above can average out.
    size = (int(moved["image_size"][0]), int(moved["image_size"][1]))
    vertices, joints = pose_sequence(body, moved)
    joints = body.openpose18(joints)
    best = {False: float("inf"), True: float("inf")}
    for _ in range(3):
        for dense in (False, True):
            start = time.perf_counter()
            skeleton_keypoints(joints, moved["K"], size, vertices=vertices, faces=body.faces,
                               vertex_labels=body.part_labels, dense_visibility=dense)
            best[dense] = min(best[dense], time.perf_counter() - start)
    rows.append(("  Anny skeleton alone, joints-only visibility", best[False], FRAMES))
    rows.append(("  Anny skeleton alone, dense visibility buffers", best[True], FRAMES))
    _, joints = body.forward(None, reference["global_orient"], reference["body_pose"], reference["transl"])
    op = body.openpose18(joints).double().numpy()
    k = reference["K"][0]
    uv = op[..., :2] / op[..., 2:] * k[0, 0] + k[:2, 2]
    shaped = dict(reference, keypoints=np.concatenate([uv, np.ones((1, 18, 1))], -1))
    rows.append(("Set Body Shape fit (100 iterations)",
                 timed(lambda: set_body_shape(shaped, body, "fit", iterations=100), repeat=1), 1))
    clip = {key: (value[:60] if key in ("betas", "global_orient", "body_pose", "transl", "K", "valid", "bbox")
                  else value) for key, value in driving.items()}
    smpl_render = timed(lambda: render_sequence_maps(smpl_model, clip, width=288, height=512, backend="torch",
                                                     device=device, maps=("depth", "normal", "semantic", "mask")),
                        repeat=1)
    anny_render = timed(lambda: render_sequence_maps(body, clip, width=288, height=512, backend="torch",
                                                     device=device, maps=("depth", "normal", "semantic", "mask")),
                        repeat=1)
    rows.append(("render maps 288x512, SMPL (60 frames)", smpl_render, 60))
    rows.append(("render maps 288x512, Anny (60 frames)", anny_render, 60))
    for name, sec, frames in rows:
        print(f"{name:50s} {frames / sec:10.1f} frames/s   {sec * 1000:9.1f} ms   "
              f"{sec / smpl_base:7.2f}x SMPL forward(64)")
    print(f"Anny / SMPL render time: {anny_render / smpl_render:.2f}x")


if __name__ == "__main__":
    main()
