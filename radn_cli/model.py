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

ARCHITECTURES = ("radn", "wresnet")


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


def deform_conv3x3(
    x: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """DCNv1 3x3 deformable convolution (stride 1, padding 1, one offset group), in plain PyTorch.

    Numerically the same operation as ``torchvision.ops.deform_conv2d(x, offsets, weight, bias,
    padding=1)`` (bilinear sampling, zeros outside the map; offsets are (dy, dx) per kernel tap in
    row-major tap order), built from grid_sample and one matrix product: on the CPU it is about 2x
    faster forward and 5x faster forward+backward than torchvision's kernel.
    """
    batch, channels, height, width = x.shape
    ys = torch.arange(height, dtype=x.dtype, device=x.device).view(1, height, 1)
    xs = torch.arange(width, dtype=x.dtype, device=x.device).view(1, 1, width)
    scale_y, scale_x = 2.0 / max(height - 1, 1), 2.0 / max(width - 1, 1)
    taps = []
    for tap in range(9):
        ky, kx = divmod(tap, 3)
        y = ys + (ky - 1) + offsets[:, 2 * tap]  # (B, H, W) sampling rows
        x_ = xs + (kx - 1) + offsets[:, 2 * tap + 1]
        grid = torch.stack((x_ * scale_x - 1, y * scale_y - 1), dim=-1)  # (B, H, W, 2), normalised
        taps.append(F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True))
    columns = torch.stack(taps, dim=2)  # (B, C, 9, H, W)
    out = torch.einsum("bckhw,ock->bohw", columns, weight.flatten(2))
    return out + bias.view(1, -1, 1, 1)


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

    # ---- per-patch stages -------------------------------------------------------------------------

    def _block(self, x: torch.Tensor, first: int, relu_first: bool = True) -> torch.Tensor:
        convs = [getattr(self, f"conv{k}") for k in range(first, first + 4)]
        identity = convs[0](x)
        if relu_first:
            identity = F.relu(identity)
        y = identity
        for conv in convs[1:]:
            y = F.relu(conv(y))
        return y + identity

    def trunk(self, patches: torch.Tensor) -> torch.Tensor:
        """Blocks 1-4: (P, 3, 32, 32) -> (P, 256, 8, 8), or (P, 256, 4, 4) for wresnet."""
        x = self._block(patches, 1, relu_first=self.config.arch == "radn")  # WResNet: no ReLU on conv1
        for first in (5, 9, 13):
            x = self._block(x, first)
        return x

    def tail(self, x: torch.Tensor) -> torch.Tensor:
        """Block 5, conv21-22 (radn), average pool: (P, 256, h, w) -> (P, 512)."""
        x = self._block(x, 17)
        if self.config.arch == "radn":
            x = F.relu(self.conv22(F.relu(self.conv21(x))))
        return F.avg_pool2d(x, 2).flatten(1)

    def _deform(self, layer: DeformConv3x3, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        # Always in at least fp32 (torchvision has no bf16 CPU kernel; offsets need the precision).
        # CUDA: torchvision's kernel; CPU: the grid_sample formulation, several times faster there.
        dtype = torch.promote_types(x.dtype, torch.float32)
        args = (x.to(dtype), offsets.to(dtype), layer.weight.to(dtype), layer.bias.to(dtype))
        with torch.autocast(x.device.type, enabled=False):
            if x.device.type == "cuda":
                from torchvision.ops import deform_conv2d

                return deform_conv2d(*args, padding=1)
            return deform_conv3x3(*args)

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
