"""MimicMotion on SVD-XT 1.1: loading (``loading``, ``single_file``), PoseNet (``pose_net``), preprocessing,
the Karras/Euler schedule (``schedule``), tile planning and fusion weights (``tiles``), the sampler (``sampler``)
and the chunked temporal VAE decode (``decode``). Import the sub-modules; nothing heavy happens here."""
