"""The sampler's one guidance hook: residual sums, batching with zeros, and where the hooks add inside the UNet.

The reference for block residuals is written here from diffusers' documented ControlNet semantics: each residual is
added to the matching skip tensor (``down_block_res_samples[k] + r_k``) and the mid residual to the mid block's
output, while the hidden state flowing down is unchanged."""
import pytest
import torch

from motionguide.pipelines.guidance.hook import (GuidanceModule, UNetCall, UNetResidualHooks, UNetResiduals,
                                                 sum_residuals)
from motionguide.pipelines.mimicmotion.loading import load_motion_model

T, H, W = 2, 8, 8  # latent frames and size


@pytest.fixture(scope="module")
def unet(tiny_svd_dir, tiny_mimicmotion_path):
    return load_motion_model(tiny_svd_dir, tiny_mimicmotion_path, dtype=torch.float32, device="cpu").unet


def unet_inputs(unet, seed=0):
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(1, T, unet.config.in_channels, H, W, generator=g)
    embeds = torch.randn(1, 1, unet.config.cross_attention_dim, generator=g)
    return sample, torch.tensor(0.3), embeds, torch.tensor([[6.0, 127.0, 0.0]])


def skip_shapes(unet):
    """The skip tensors' shapes, recorded from the down blocks of one plain call."""
    shapes = []
    mid = []

    def record(module, args, out):
        if module is unet.mid_block:
            mid.append(out.shape)
        else:
            shapes.extend([out.shape] if module is unet.conv_in else [s.shape for s in out[1]])

    handles = [m.register_forward_hook(record) for m in (unet.conv_in, *unet.down_blocks, unet.mid_block)]
    with torch.no_grad():
        unet(*unet_inputs(unet))
    for h in handles:
        h.remove()
    return shapes, mid[0]


@torch.no_grad()
def reference_with_residuals(unet, inputs, down, mid):
    """Skips replaced by ``skip + residual`` and the mid output by ``mid + residual``, by recording the plain
    call's tensors and re-running the up path through diffusers' own blocks."""
    saved = {}
    def record(module, args, out):
        saved.setdefault("skips", []).extend([out] if module is unet.conv_in else out[1])

    handles = [unet.conv_in.register_forward_hook(record)]
    handles += [b.register_forward_hook(record) for b in unet.down_blocks]
    handles.append(unet.mid_block.register_forward_hook(lambda m, a, out: out + mid))

    def up_hook(module, args, kwargs):
        n = len(kwargs["res_hidden_states_tuple"])
        skips, saved["skips"] = saved["skips"][-n:], saved["skips"][:-n]
        offs = saved.setdefault("down", list(down))
        res, saved["down"] = offs[-n:], offs[:-n]
        return args, dict(kwargs, res_hidden_states_tuple=tuple(s + r for s, r in zip(skips, res)))

    handles += [b.register_forward_pre_hook(up_hook, with_kwargs=True) for b in unet.up_blocks]
    try:
        return unet(*inputs).sample
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def test_no_residuals_leave_the_unet_bit_identical(unet):
    inputs = unet_inputs(unet)
    plain = unet(*inputs).sample
    with UNetResidualHooks(unet) as hooks:
        hooks.residuals = None
        assert torch.equal(unet(*inputs).sample, plain)
        shapes, mid_shape = skip_shapes(unet)
        hooks.residuals = UNetResiduals(conv_in=torch.zeros(shapes[0]), down=tuple(torch.zeros(s) for s in shapes),
                                        mid=torch.zeros(mid_shape))
        assert torch.equal(unet(*inputs).sample, plain)
    assert torch.equal(unet(*inputs).sample, plain)  # hooks removed on exit


@torch.no_grad()
def test_block_residuals_go_into_the_skips_like_a_controlnet(unet):
    inputs = unet_inputs(unet)
    shapes, mid_shape = skip_shapes(unet)
    g = torch.Generator().manual_seed(3)
    down = tuple(0.1 * torch.randn(s, generator=g) for s in shapes)
    mid = 0.1 * torch.randn(mid_shape, generator=g)
    expected = reference_with_residuals(unet, inputs, down, mid)
    with UNetResidualHooks(unet) as hooks:
        hooks.residuals = UNetResiduals(down=down, mid=mid)
        got = unet(*inputs).sample
    assert not torch.allclose(got, unet(*inputs).sample, atol=1e-4)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    with UNetResidualHooks(unet) as hooks, pytest.raises(ValueError, match="skip connections"):
        hooks.residuals = UNetResiduals(down=down[:-1])
        unet(*inputs)


def test_sums_and_batches_fill_missing_passes_with_zeros():
    a = UNetResiduals(conv_in=torch.ones(2, 3), down=(torch.ones(2, 1),))
    b = UNetResiduals(conv_in=torch.full((2, 3), 2.0), mid=torch.ones(2, 4))
    total = a + b + None
    assert torch.equal(total.conv_in, torch.full((2, 3), 3.0))
    assert torch.equal(total.down[0], torch.ones(2, 1)) and torch.equal(total.mid, torch.ones(2, 4))
    batched = UNetResiduals.concat([None, total])
    assert batched.conv_in.shape == (4, 3) and torch.equal(batched.conv_in[:2], torch.zeros(2, 3))
    assert torch.equal(batched.down[0][2:], torch.ones(2, 1)) and torch.equal(batched.mid[:2], torch.zeros(2, 4))
    assert UNetResiduals.concat([None, None]) is None


class Constant(GuidanceModule):
    name = "constant"

    def __init__(self, value, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def pass_residuals(self, call, index):
        return UNetResiduals(conv_in=torch.full((len(call.frames[index]), 1), self.value * self.strength))


def test_modules_guide_conditional_passes_in_their_step_range():
    call = UNetCall(step=1, steps=4, sample=torch.empty(0), timestep=torch.empty(0), encoder_hidden_states=None,
                    added_time_ids=None, frames=[torch.arange(2), torch.arange(2)], conditional=[False, True])
    total = sum_residuals([Constant(1.0), Constant(2.0, strength=0.5), Constant(5.0, start=0.5)], call)
    assert total.conv_in.flatten().tolist() == [0.0, 0.0, 2.0, 2.0]  # step 1 of 4 is before the third's start
    both = Constant(1.0)
    both.unconditional = True
    assert both.residuals(call).conv_in.flatten().tolist() == [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="start <= end"):
        Constant(1.0, start=0.8, end=0.2)
