"""Upper bounds on image sizes that come from widgets or files, checked before anything is allocated."""
from __future__ import annotations

MAX_SIDE = 8192  # the nodes' widget maximum; a 100000² canvas in a file would need tens of GiB per frame


def check_image_size(width, height, what: str, remedy: str) -> tuple[int, int]:
    """``(width, height)`` as ints, or a ``ValueError`` naming ``what`` and ``remedy`` when a side is below 1 or
    above :data:`MAX_SIDE`."""
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise ValueError(f"{what} must be at least 1×1 pixels, got {width}×{height}; {remedy}")
    if max(width, height) > MAX_SIDE:
        raise ValueError(f"{what} {width}×{height} is larger than {MAX_SIDE}×{MAX_SIDE} pixels; {remedy}")
    return width, height

# Motion files: a few-MB compressed .npz can declare gigabytes; headers are checked against these before reading.
MAX_MOTION_FRAMES = 100_000  # about 55 minutes at 30 fps
MAX_MOTION_ENTRY_BYTES = 256 * 2**20  # one entry as declared; 100,000 frames of HMR2 rotation matrices ≈ 83 MB


def check_motion_entry(shape, itemsize: int, key: str, what: str, remedy: str) -> None:
    """A ``ValueError`` when an entry declared with ``shape`` would exceed the frame cap or the byte cap."""
    shape = tuple(int(v) for v in shape)
    size = int(itemsize)
    for v in shape:
        size *= v
    if shape and shape[0] > MAX_MOTION_FRAMES:
        raise ValueError(f"{what}: entry '{key}' declares {shape[0]} frames ({size / 1e9:.2g} GB); at most "
                         f"{MAX_MOTION_FRAMES} frames (about 55 min at 30 fps) are read. {remedy}")
    if size > MAX_MOTION_ENTRY_BYTES:
        raise ValueError(f"{what}: entry '{key}' declares shape {shape} ({size / 1e9:.2g} GB); one entry may hold "
                         f"at most {MAX_MOTION_ENTRY_BYTES / 2**20:.0f} MiB. {remedy}")


# Memory a node may allocate for its frames (outputs and working copies), checked before allocating. ComfyUI keeps
# every output batch in memory whole, so a long clip at a large size is refused with the numbers instead of
# swapping the machine to a halt. MOTIONGUIDE_MEMORY_BUDGET_GB raises (or lowers) it on a machine that has more.
MEMORY_BUDGET_ENV = "MOTIONGUIDE_MEMORY_BUDGET_GB"
DEFAULT_MEMORY_BUDGET_GB = 8.0
# bytes per output pixel per frame, outputs and the working copies that live as long
BYTES_PER_PIXEL = {
    "Draw Pose": 15,  # uint8 drawing (3) + the float32 IMAGE (12)
    "Face Crops": 15,  # uint8 crop (3) + the float32 IMAGE (12), per 512×512 crop
    "Render SCAIL": 48,  # RGBA uint8 (4), images (12), half size (3), mask (4), identity mask (12), silhouette (4),
                         # 2D layer (3), conversions (6)
}


def memory_budget() -> float:
    """Bytes a node may allocate for its frames: ``$MOTIONGUIDE_MEMORY_BUDGET_GB`` GB, else 8 GB."""
    import os

    try:
        gb = float(os.environ.get(MEMORY_BUDGET_ENV, "") or DEFAULT_MEMORY_BUDGET_GB)
    except ValueError:
        gb = DEFAULT_MEMORY_BUDGET_GB
    return max(gb, 0.001) * 1e9


def check_memory(node: str, frames: int, width: int, height: int, remedy: str) -> None:
    """A ``ValueError`` with the numbers when ``frames`` × ``width`` × ``height`` × the node's bytes per pixel
    (:data:`BYTES_PER_PIXEL`) exceeds :func:`memory_budget`, raised before anything is allocated."""
    per_pixel = BYTES_PER_PIXEL[node]
    need = float(frames) * width * height * per_pixel
    budget = memory_budget()
    if need <= budget:
        return
    per_frame = width * height * per_pixel
    fit = int(budget // per_frame)
    raise ValueError(f"{node}: {frames} frames at {width}×{height} need about {need / 1e9:.2g} GB ({per_pixel} bytes "
                     f"per pixel per frame), over the {budget / 1e9:g} GB memory budget. "
                     + (f"At this size at most {fit} frames fit: {remedy}" if fit else
                        "Not even one frame fits at this size: use a smaller size.")
                     + f" Or set {MEMORY_BUDGET_ENV} higher if this machine has the memory.")
