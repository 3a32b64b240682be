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
