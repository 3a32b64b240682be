"""Guidance beyond the reference image: modules that add to MimicMotion's UNet (PoseNet, the geometry adapter,
DisPose), all through one hook, :mod:`.hook`."""
