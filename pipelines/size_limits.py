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
