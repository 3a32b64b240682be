"""DisPose on MimicMotion: motion-field hints (``motion``), CMP's dense flow (``cmp``), DIFT keypoint features and the
point adapter (``points``, ``dift``), the hybrid ControlNet (``controlnet``), strict loading (``loading``) and the
sampler guidance module (``guidance``). Import the sub-modules; nothing heavy happens here."""
