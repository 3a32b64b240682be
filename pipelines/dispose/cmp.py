"""CMP (conditional motion propagation, Zhan et al. 2019) as DisPose runs it: a dilated ResNet-50 image encoder
(output stride 8), a shallow encoder of the sparse hints, and a decoder with skip connections that predicts
per-pixel flow as a distribution over 99 bins per axis (±50 px at 384×384), turned into a flow by its expectation.

Layout of ``ckpt_iter_42000.pth.tar`` (MOFA-Video-Hybrid): ``{"step", "state_dict"}`` with keys
``module.image_encoder.*``, ``module.flow_encoder.features.*``, ``module.flow_decoder.*``. Every width and the number
of blocks per ResNet stage are read from the file, so smaller test files of the same layout load.

DisPose feeds the image as ``2·x − 1`` for ``x`` in 0..1 (the configured ImageNet mean/std are never applied), and
the hints as ``[flow x, flow y, mask, mask]``.
"""
from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

FLOW_MAX = 50.0  # the checkpoint's config: fmax 50, nbins = head width / 2


def _bn_relu(conv: nn.Conv2d) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(conv.out_channels), nn.ReLU(inplace=True)]


class Bottleneck(nn.Module):
    def __init__(self, inplanes: int, planes: int, out: int, stride: int = 1, dilation: int = 1, downsample: bool = False,
                 down_stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=down_stride, bias=False),
                                        nn.BatchNorm2d(out)) if downsample else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class DilatedResNet(nn.Module):
    """ResNet with stages 3 and 4 dilated (2, 4) instead of strided: output stride 8."""

    def __init__(self, stem: int, planes: tuple[int, ...], outs: tuple[int, ...], blocks: tuple[int, ...], out_dim: int,
                 projections: tuple[bool, ...] = (True,) * 4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = stem
        for i, (p, o, n, projection) in enumerate(zip(planes, outs, blocks, projections)):
            stride, dilation = (1 if i == 0 else 2 if i == 1 else 1), (1, 1, 2, 4)[i]
            layers = [Bottleneck(inplanes, p, o, stride, dilation, downsample=projection, down_stride=stride)]
            layers += [Bottleneck(o, p, o, 1, dilation) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
            inplanes = o
        self.conv5 = nn.Conv2d(inplanes, out_dim, 1)

    def forward(self, img):
        conv1 = F.relu(self.bn1(self.conv1(img)))  # 1/2
        layer1 = self.layer1(self.maxpool(conv1))  # 1/4
        x = self.layer4(self.layer3(self.layer2(layer1)))  # 1/8
        return self.conv5(x), conv1, layer1


class SparseEncoder(nn.Module):
    """``shallownet8x``: conv 5×5 s2, BN, ReLU, max-pool 2, conv 3×3, BN, ReLU, avg-pool 2."""

    def __init__(self, hidden: int, out_dim: int, in_dim: int = 4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_dim, hidden, 5, stride=2, padding=2), nn.BatchNorm2d(hidden),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
                                      nn.Conv2d(hidden, out_dim, 3, padding=1), nn.BatchNorm2d(out_dim),
                                      nn.ReLU(inplace=True), nn.AvgPool2d(2, 2))

    def forward(self, x):
        return self.features(x)


def _tower(in_dim: int, width: int, pool: int) -> nn.Sequential:
    convs = [nn.Conv2d(in_dim, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1),
             nn.Conv2d(width, width, 3, padding=1)]
    layers = [nn.MaxPool2d(pool, pool)] if pool > 1 else []
    for conv in convs:
        layers += _bn_relu(conv)
    return nn.Sequential(*layers)


class SkipDecoder(nn.Module):
    """``MotionDecoderSkipLayer``: four pooled towers at /8, fused, then up to /4 and /2 with skip features."""

    def __init__(self, in_dim: int, width: int, fuse8: int, skip4: tuple[int, int], fuse4: int, skip2: tuple[int, int],
                 fuse2: int, out_dim: int):
        super().__init__()
        for pool in (1, 2, 4, 8):
            setattr(self, f"decoder{pool}", _tower(in_dim, width, pool))
        self.fusion8 = nn.Sequential(*_bn_relu(nn.Conv2d(4 * width, fuse8, 3, padding=1)))
        self.skipconv4 = nn.Sequential(*_bn_relu(nn.Conv2d(skip4[0], skip4[1], 3, padding=1)))
        self.fusion4 = nn.Sequential(*_bn_relu(nn.Conv2d(fuse8 + skip4[1], fuse4, 3, padding=1)))
        self.skipconv2 = nn.Sequential(*_bn_relu(nn.Conv2d(skip2[0], skip2[1], 3, padding=1)))
        self.fusion2 = nn.Sequential(*_bn_relu(nn.Conv2d(fuse4 + skip2[1], fuse2, 3, padding=1)))
        self.head = nn.Conv2d(fuse2, out_dim, 1)

    def forward(self, x, conv1, layer1):
        def up(t, like):
            return F.interpolate(t, size=like.shape[-2:], mode="bilinear", align_corners=True)

        x1 = self.decoder1(x)
        towers = [x1] + [up(getattr(self, f"decoder{p}")(x), x1) for p in (2, 4, 8)]
        f8 = self.fusion8(torch.cat(towers, 1))
        f4 = self.fusion4(torch.cat([up(f8, layer1), self.skipconv4(layer1)], 1))
        f2 = self.fusion2(torch.cat([up(f4, conv1), self.skipconv2(conv1)], 1))
        return self.head(f2)


class CMP(nn.Module):
    """The whole model; :meth:`flow` is what DisPose calls (``CMP.run``)."""

    def __init__(self, image_encoder: DilatedResNet, flow_encoder: SparseEncoder, flow_decoder: SkipDecoder):
        super().__init__()
        self.image_encoder, self.flow_encoder, self.flow_decoder = image_encoder, flow_encoder, flow_decoder
        bins = flow_decoder.head.out_channels // 2
        step = 2 * FLOW_MAX / bins
        self.register_buffer("mesh", torch.arange(bins).view(1, -1, 1, 1).float() * step - FLOW_MAX + step / 2,
                             persistent=False)

    def forward(self, image: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        """Bin logits ``[N,2·bins,H/2,W/2]``."""
        enc, conv1, layer1 = self.image_encoder(image)
        return self.flow_decoder(torch.cat([enc, self.flow_encoder(sparse)], 1), conv1, layer1)

    def flow(self, image: torch.Tensor, sparse: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Dense flow ``[N,2,H,W]`` from the image in 0..1 ``[N,3,H,W]`` and sparse hints + mask ``[N,2,H,W]``."""
        dtype = next(self.parameters()).dtype
        logits = self(image.to(dtype) * 2 - 1, torch.cat([sparse, mask], 1).to(dtype))
        bins = self.mesh.shape[1]
        mesh = self.mesh.to(logits.dtype)
        fx = (logits[:, :bins].softmax(1) * mesh).sum(1, keepdim=True)
        fy = (logits[:, bins:].softmax(1) * mesh).sum(1, keepdim=True)
        flow = torch.cat([fx, fy], 1)
        if flow.shape[-2:] != image.shape[-2:]:
            flow = F.interpolate(flow, size=image.shape[-2:], mode="bilinear", align_corners=True)
        return flow


def build_cmp(state: dict[str, torch.Tensor], source: str) -> CMP:
    """A meta-device CMP shaped by a (prefix-free) state dict."""
    def shape(key):
        if key not in state:
            raise ValueError(f"{source} is not a CMP checkpoint: it has no {key!r}. Expected ckpt_iter_42000.pth.tar "
                             "from huggingface.co/MyNiuuu/MOFA-Video-Hybrid (models/cmp/).")
        return state[key].shape

    blocks = []
    for stage in range(1, 5):
        ids = {int(m[1]) for k in state if (m := re.match(rf"image_encoder\.layer{stage}\.(\d+)\.", k))}
        if not ids:
            shape(f"image_encoder.layer{stage}.0.conv1.weight")
        blocks.append(max(ids) + 1)
    planes = tuple(shape(f"image_encoder.layer{s}.0.conv1.weight")[0] for s in range(1, 5))
    outs = tuple(shape(f"image_encoder.layer{s}.0.conv3.weight")[0] for s in range(1, 5))
    with torch.device("meta"):
        projections = tuple(f"image_encoder.layer{s}.0.downsample.0.weight" in state for s in range(1, 5))
        encoder = DilatedResNet(shape("image_encoder.conv1.weight")[0], planes, outs, tuple(blocks),
                                shape("image_encoder.conv5.weight")[0], projections)
        sparse = SparseEncoder(shape("flow_encoder.features.0.weight")[0], shape("flow_encoder.features.4.weight")[0],
                               shape("flow_encoder.features.0.weight")[1])
        decoder = SkipDecoder(shape("flow_decoder.decoder1.0.weight")[1], shape("flow_decoder.decoder1.0.weight")[0],
                              shape("flow_decoder.fusion8.0.weight")[0], tuple(shape("flow_decoder.skipconv4.0.weight")[:2][::-1]),
                              shape("flow_decoder.fusion4.0.weight")[0], tuple(shape("flow_decoder.skipconv2.0.weight")[:2][::-1]),
                              shape("flow_decoder.fusion2.0.weight")[0], shape("flow_decoder.head.weight")[0])
    return CMP(encoder, sparse, decoder)  # built here, outside the meta device: its bin centres are real
