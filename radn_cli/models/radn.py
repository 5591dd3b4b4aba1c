"""RADN (Region-Adaptive Deformable Network) and its WResNet baseline, as the authors' code defines them.

State-dict names are the reference code's (``conv1.weight`` .. ``conv22.bias``, ``conv_offset``,
``deform``, ``deform2``, ``Nonlocal1/2.{theta,phi,g,W}``, ``fc1_q`` .. ``fc2_w``), so weights move
between the two without a key map. See ../shared/RADN_SPEC.md for the architecture.

The network is split into per-patch stages (trunk, deformable step, tail: any number of patches, in
any chunks) and per-image stages (patch attention over all N patches of one image, heads, pooling).
``RADN.forward`` composes them for [B, N, 3, 32, 32] batches; ``radn_cli.scoring`` composes them in
bounded-memory chunks and reuses the reference branch across distorted images.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURES = ("radn", "wresnet")  # on 32x32 patches; models/__init__.py lists all


@dataclass(frozen=True)
class RADNConfig:
    arch: str = "radn"  # "radn", or "wresnet" for the paper's baseline (no deformable step, no attention)
    deformable: bool = True  # reference-oriented deformable convolution after block 4 (radn only)
    attention: bool = True  # patch-level non-local attention, one per branch (radn only)
    dropout: float = 0.5  # in both heads, active in training mode only

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; expected one of {ARCHITECTURES}")
        if self.arch == "wresnet" and (self.deformable or self.attention):
            raise ValueError("wresnet has neither the deformable step nor attention")

    @classmethod
    def wresnet(cls) -> RADNConfig:
        return cls(arch="wresnet", deformable=False, attention=False)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RADNConfig:
        return cls(**json.loads(text))


class RADNOutput(NamedTuple):
    score: torch.Tensor  # (B,) image scores: sum(w * s) / sum(w)
    patch_scores: torch.Tensor  # (B, N) s_i
    patch_weights: torch.Tensor  # (B, N) w_i > 0


class DeformConv3x3(nn.Module):
    """Parameters of a 3x3 deformable convolution, named and initialised like torchvision's DeformConv2d.

    The operation itself is ``_deform`` in RADN; torchvision is imported only where its CUDA kernel is
    used, which keeps it (about 1.5 s and 170 MiB) out of CPU start-up.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.empty(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(in_channels * 9)
        nn.init.uniform_(self.bias, -bound, bound)


class PatchAttention(nn.Module):
    """Embedded-Gaussian non-local block over the N patch vectors of one image.

    z = x + W(softmax(theta(x) phi(x)^T) g(x)), single head, no 1/sqrt(d) scaling (as the reference
    code). The 1x1 convolutions keep the reference code's 4-d weights so that checkpoints load as
    they are; they are applied as linear maps through scaled_dot_product_attention, whose memory
    does not grow with N^2.
    """

    def __init__(self, channels: int = 512, inner: int = 256) -> None:
        super().__init__()
        self.g = nn.Conv2d(channels, inner, 1)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.W = nn.Conv2d(inner, channels, 1)
        nn.init.zeros_(self.W.weight)
        nn.init.zeros_(self.W.bias)

    @staticmethod
    def _project(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, conv.weight.flatten(1), conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, N, C)
        query = self._project(self.theta, x).unsqueeze(1)  # (B, 1, N, inner)
        key = self._project(self.phi, x).unsqueeze(1)
        value = self._project(self.g, x).unsqueeze(1)
        y = F.scaled_dot_product_attention(query, key, value, scale=1.0).squeeze(1)  # (B, N, inner)
        return x + self._project(self.W, y)


def _sampling_matrix(offsets: torch.Tensor, height: int, width: int, out_dtype: torch.dtype) -> torch.Tensor:
    """Bilinear sampling of the 9 deformed taps as a matrix: (B, H*W*9, H*W) in ``out_dtype``.

    Row ``p * 9 + k`` holds the (at most four) bilinear weights with which tap k of output position p
    reads the input positions; corners outside the map get weight 0 (zero padding), as in DCNv1.
    Positions and weights are computed in fp32 (or wider) and each weight is rounded once.
    """
    dtype = torch.promote_types(offsets.dtype, torch.float32)
    batch, device = offsets.shape[0], offsets.device
    tap = torch.arange(9, device=device)
    shifts = offsets.to(dtype).view(batch, 9, 2, height, width).permute(0, 3, 4, 1, 2)  # (B, H, W, 9, 2)
    rows = torch.arange(height, dtype=dtype, device=device).view(1, height, 1, 1) + (tap // 3 - 1)
    cols = torch.arange(width, dtype=dtype, device=device).view(1, 1, width, 1) + (tap % 3 - 1)
    y = (rows + shifts[..., 0]).flatten(1)  # (B, H*W*9): position-major, tap-minor
    x = (cols + shifts[..., 1]).flatten(1)
    y0, x0 = y.floor(), x.floor()
    fy, fx = y - y0, x - x0
    matrix = torch.zeros(batch, y.shape[1], height * width, dtype=out_dtype, device=device)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy <= height - 1) & (xx >= 0) & (xx <= width - 1)
            index = (yy.clamp(0, height - 1) * width + xx.clamp(0, width - 1)).long()
            # scatter_add: a clamped outside corner may land on an inside one, with weight 0
            matrix.scatter_add_(2, index.unsqueeze(2), (wy * wx * inside).to(out_dtype).unsqueeze(2))
    return matrix


def deform_conv3x3(
    x: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """DCNv1 3x3 deformable convolution (stride 1, padding 1, one offset group), in plain PyTorch.

    The same operation as ``torchvision.ops.deform_conv2d(x, offsets, weight, bias, padding=1)``
    (bilinear sampling, zeros outside the map; offsets are (dy, dx) per kernel tap in row-major tap
    order), as two matrix products: a per-patch sampling matrix times the input (gathering the 9
    deformed taps of every position), then the taps times the weights as a 1x1 convolution. On the CPU
    (81 patches of 256 x 8 x 8, 2 cores) it takes 11 ms in bf16 and 24 ms in fp32, against 110 ms for
    torchvision's fp32-only kernel; it returns a channels-last tensor.

    Precision: both products run in ``x.dtype`` (accumulating in fp32). Sampling positions and
    bilinear weights are computed in fp32 from fp32 offsets; in bf16 the weights are then rounded
    like any activation. Measured against float64: max error 0.26% of the output range, of which
    0.25% is the rounding of the output itself (fp32 sampling weights would save 0.01% for 6 ms
    per 81 patches).
    """
    batch, channels, height, width = x.shape
    matrix = _sampling_matrix(offsets, height, width, x.dtype)
    pixels = x.permute(0, 2, 3, 1).reshape(batch, height * width, channels)  # a view if channels-last
    taps = torch.bmm(matrix, pixels)
    # (B*H*W, 9*C) rows, tap-major within a row: a channels-last (B, 9*C, H, W) map for a 1x1 conv
    taps = taps.view(batch, height, width, 9 * channels).permute(0, 3, 1, 2)
    kernel = weight.to(x.dtype).permute(0, 2, 3, 1).reshape(weight.shape[0], 9 * channels, 1, 1)
    kernel = kernel.contiguous(memory_format=torch.channels_last)
    return F.conv2d(taps, kernel, bias.to(x.dtype))


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


# (in channels, out channels, stride of the first conv) of the residual blocks: conv1-4, conv5-8, ...
_TRUNK_BLOCKS = ((3, 64, 1), (64, 128, 2), (128, 256, 2), (256, 256, 1))
_BLOCK5 = (256, 512, 2)


class RADN(nn.Module):
    """Full-reference IQA on 32x32 patches: per-patch score and weight, pooled to an image score.

    Example:
        >>> model = RADN().eval()
        >>> patches = torch.rand(2, 4, 3, 32, 32)  # (images, patches per image, RGB, 32, 32)
        >>> out = model(patches, patches)
        >>> out.score.shape, out.patch_weights.shape
        (torch.Size([2]), torch.Size([2, 4]))
    """

    def __init__(self, config: RADNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or RADNConfig()
        wresnet = config.arch == "wresnet"
        blocks = list(_TRUNK_BLOCKS)
        if wresnet:
            blocks[3] = (256, 256, 2)  # WResNet's conv13 has stride 2
        for index, (cin, cout, stride) in enumerate([*blocks, _BLOCK5]):
            first = 4 * index + 1
            setattr(self, f"conv{first}", _conv3x3(cin, cout, stride))
            for k in range(first + 1, first + 4):
                setattr(self, f"conv{k}", _conv3x3(cout, cout))
        if not wresnet:
            self.conv21 = _conv3x3(512, 512, stride=2)
            self.conv22 = _conv3x3(512, 512)
        if config.deformable:
            self.conv_offset = nn.Conv2d(256, 18, 3, padding=1)
            self.deform = DeformConv3x3(256, 256)
            self.deform2 = DeformConv3x3(256, 256)
        self.fc1_q = nn.Linear(512 * 3, 512)
        self.fc2_q = nn.Linear(512, 1)
        self.fc1_w = nn.Linear(512 * 3, 512)
        self.fc2_w = nn.Linear(512, 1)
        self.dropout = nn.Dropout(config.dropout)
        if config.attention:
            self.Nonlocal1 = PatchAttention()  # distorted branch
            self.Nonlocal2 = PatchAttention()  # reference branch
        self._formats: tuple[torch.memory_format | None, torch.memory_format | None] = (None, None)

    # ---- per-patch stages -------------------------------------------------------------------------

    def _block(self, x: torch.Tensor, first: int, relu_first: bool = True) -> torch.Tensor:
        convs = [getattr(self, f"conv{k}") for k in range(first, first + 4)]
        identity = convs[0](x)
        if relu_first:
            identity = F.relu(identity, inplace=True)  # in place on a conv output: autograd-safe
        y = identity
        for conv in convs[1:]:
            y = F.relu(conv(y), inplace=True)
        return y + identity

    def use_layout(self, trunk: torch.memory_format | None, tail: torch.memory_format | None) -> RADN:
        """Run the trunk (blocks 1-4, offsets) and the tail (block 5 on) in these memory formats.

        Weights are converted now, activations as they enter a stage; ``None`` leaves a stage's
        layout as it comes. Which format is fastest depends on the kernel library and the shape:
        oneDNN on the CPU is fastest channels-last for the trunk's wide maps and contiguous for the
        tail's 4x4 and 2x2 maps (benchmarks/README.md). Returns self.
        """
        self._formats = (trunk, tail)
        for name, module in self.named_children():
            if isinstance(module, nn.Conv2d) and name.startswith("conv"):
                index = int(name[4:]) if name[4:].isdigit() else 0  # conv_offset belongs to the trunk
                layout = tail if index >= 17 else trunk
                if layout is not None:
                    module.weight.data = module.weight.data.contiguous(memory_format=layout)
        return self

    def _as_layout(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        layout = self._formats[stage]
        return x if layout is None else x.contiguous(memory_format=layout)

    def trunk(self, patches: torch.Tensor) -> torch.Tensor:
        """Blocks 1-4: (P, 3, 32, 32) -> (P, 256, 8, 8), or (P, 256, 4, 4) for wresnet."""
        relu_first = self.config.arch == "radn"  # WResNet: no ReLU on conv1
        x = self._block(self._as_layout(patches, 0), 1, relu_first=relu_first)
        for first in (5, 9, 13):
            x = self._block(x, first)
        return x

    def tail(self, x: torch.Tensor) -> torch.Tensor:
        """Block 5, conv21-22 (radn), average pool: (P, 256, h, w) -> (P, 512)."""
        x = self._block(self._as_layout(x, 1), 17)
        if self.config.arch == "radn":
            x = F.relu(self.conv22(F.relu(self.conv21(x))))
        return F.avg_pool2d(x, 2).flatten(1)

    def _deform(self, layer: DeformConv3x3, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        # CUDA: torchvision's kernel, in fp32 (offsets need the precision). CPU: deform_conv3x3, which
        # takes sampling positions and weights from fp32 offsets and runs its products in x's precision.
        with torch.autocast(x.device.type, enabled=False):
            if x.device.type == "cuda":
                from torchvision.ops import deform_conv2d

                dtype = torch.promote_types(x.dtype, torch.float32)
                args = (x.to(dtype), offsets.to(dtype), layer.weight.to(dtype), layer.bias.to(dtype))
                return deform_conv2d(*args, padding=1).to(x.dtype)
            return deform_conv3x3(x, offsets, layer.weight, layer.bias)

    def encode_reference(self, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reference patches (P, 3, 32, 32) -> features (P, 512) before attention, offsets (P, 18, 8, 8)."""
        h = self.trunk(ref)
        if not self.config.deformable:
            return self.tail(h), None
        offsets = self.conv_offset(h)
        return self.tail(self._deform(self.deform2, h, offsets)), offsets

    def encode_distorted(self, dist: torch.Tensor, offsets: torch.Tensor | None) -> torch.Tensor:
        """Distorted patches (P, 3, 32, 32) and the reference's offsets -> features (P, 512)."""
        h = self.trunk(dist)
        if self.config.deformable:
            if offsets is None:
                raise ValueError("this model needs the reference's offsets")
            h = self._deform(self.deform, h, offsets)
        return self.tail(h)

    # ---- per-image stages -------------------------------------------------------------------------

    def attend_reference(self, features: torch.Tensor) -> torch.Tensor:
        """(B, N, 512) -> (B, N, 512), over the N patches of each image."""
        return self.Nonlocal2(features) if self.config.attention else features

    def attend_distorted(self, features: torch.Tensor) -> torch.Tensor:
        return self.Nonlocal1(features) if self.config.attention else features

    def head(self, dist: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused features -> per-patch (scores, weights), shaped like the inputs minus the last axis."""
        fused = torch.cat((dist - ref, dist, ref), dim=-1)  # (..., 1536)
        scores = self.fc2_q(self.dropout(F.relu(self.fc1_q(fused)))).squeeze(-1)
        weights = F.relu(self.fc2_w(self.dropout(F.relu(self.fc1_w(fused))))).squeeze(-1) + 1e-6
        return scores, weights

    @staticmethod
    def pool(scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Weighted average over the last axis (the patches of an image)."""
        return (scores * weights).sum(-1) / weights.sum(-1)

    def forward(self, dist: torch.Tensor, ref: torch.Tensor) -> RADNOutput:
        """dist, ref: (B, N, 3, 32, 32) patches at the same positions -> RADNOutput with (B,) scores."""
        if dist.shape != ref.shape or dist.dim() != 5:
            raise ValueError(
                f"expected two (B, N, 3, 32, 32) tensors, got {tuple(dist.shape)} and {tuple(ref.shape)}"
            )
        out = self.forward_shared_reference(dist.unsqueeze(1), ref)
        return RADNOutput(*(t.squeeze(1) for t in out))

    def forward_shared_reference(self, dist: torch.Tensor, ref: torch.Tensor) -> RADNOutput:
        """K distorted versions of each reference: dist (B, K, N, 3, 32, 32), ref (B, N, 3, 32, 32).

        The reference branch runs once per reference; scores come out as (B, K).
        """
        if dist.dim() != 6 or ref.dim() != 5 or dist.shape[:1] + dist.shape[2:] != ref.shape:
            raise ValueError(
                f"expected (B, K, N, 3, 32, 32) and (B, N, 3, 32, 32), got {tuple(dist.shape)} "
                f"and {tuple(ref.shape)}"
            )
        batch, k, n = dist.shape[:3]
        ref_features, offsets = self.encode_reference(ref.flatten(0, 1))  # (B*N, 512), (B*N, 18, 8, 8)
        if offsets is not None:
            offsets = (
                offsets.unflatten(0, (batch, 1, n)).expand(batch, k, n, *offsets.shape[1:]).flatten(0, 2)
            )
        dist_features = self.encode_distorted(dist.flatten(0, 2), offsets)  # (B*K*N, 512)
        ref_features = self.attend_reference(ref_features.unflatten(0, (batch, n)))  # (B, N, 512)
        dist_features = self.attend_distorted(dist_features.unflatten(0, (batch * k, n)))  # (B*K, N, 512)
        ref_features = ref_features.unsqueeze(1).expand(batch, k, n, -1).flatten(0, 1)
        scores, weights = self.head(dist_features, ref_features.to(dist_features.dtype))  # (B*K, N)
        out = RADNOutput(self.pool(scores, weights), scores, weights)
        return RADNOutput(*(t.unflatten(0, (batch, k)) for t in out))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
