"""RADN-Lite: RADN's ideas on a pretrained trunk run over the whole image.

An ImageNet-trained EfficientNet-Lite0 (:mod:`.efficientnet_lite`) runs fully convolutionally on the
reference and on the distorted image. Its six taps (544 channels, strides 2 to 32) and the pixels
themselves are summarised on RADN's grid of 32x32 patches; from there on it is RADN:

* **reference-oriented deformable step**: offsets predicted from the reference's stride-8 tap deform
  the stride-8 taps of both images (``conv_offset``, ``deform`` for the distorted image, ``deform2``
  for the reference), as RADN deforms its block-4 features; it starts as the identity;
* **per-patch features**: for each patch, per channel, the mean of each tap over the patch (both
  images: what is there) and the log mean squared difference of the channel-normalised taps (what
  differs, as LPIPS compares features); the pixels add their mean, standard deviation and squared
  difference per colour channel;
* **texture comparison** (``texture``, optional): per patch and channel of the taps finer than a patch,
  the log squared difference of the two images' patch means of the channel-normalised taps and the log
  ratio of their patch variances (DISTS compares textures so). A 1-2 px misalignment moves what is in
  a patch by a few percent and leaves these nearly alone, while noise, blur and compression change
  them: measured on the TID2013 dev set with the ImageNet trunk, a 1-px shift's pointwise difference at
  stride 2 is 3x the median visibly distorted image's, its patch-mean difference 0.1x;
* **patch-level attention** over all patches of an image, one per branch (``Nonlocal1`` distorted,
  ``Nonlocal2`` reference), on 512-d patch vectors;
* **score and weight heads** on the fused vector (difference, distorted, reference and comparison
  features) and the **weighted pooling** sum(w s) / sum(w).

The per-patch statistics are plain averages over the patch's cells of each tap, so the network's
per-image outputs are exactly RADN's (per-patch scores and weights on the same grid) and the scoring
engine can compute the trunk tile by tile (overlapping tiles) for images of any size.

Input normalisation belongs to the trunk: ``(255 x - 127) / 128``, stored in the weights metadata.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..constants import PATCH
from .efficientnet_lite import TAP_CHANNELS, TAPS, EfficientNetLite, normalise
from .radn import DeformConv3x3, PatchAttention, RADNOutput

ARCH = "radn-lite"
TRUNKS = ("efficientnet-lite0",)
INPUT_NORMS = ("(255x-127)/128",)
DEFORM_TAP = 3  # the stride-8 tap (40 channels)
PIXEL_STATS = 6  # per colour channel: mean and standard deviation over the patch
BRANCH_IN = TAP_CHANNELS + PIXEL_STATS  # 550 per-patch inputs of each branch
COMPARE_IN = TAP_CHANNELS + 3  # 547: per tap channel and per colour channel
TEXTURE_TAPS = tuple(i for i, (_, stride) in enumerate(TAPS) if stride < PATCH)  # more than a cell a patch
TEXTURE_CHANNELS = sum(TAPS[i][0] for i in TEXTURE_TAPS)  # 224
TEXTURE_IN = 2 * TEXTURE_CHANNELS  # 448: patch-mean difference and variance ratio per channel
LOG_EPS = 1e-6
VARIANCE_EPS = 1e-5  # of a channel-normalised tap over a patch: a flat patch's floor


@dataclass(frozen=True)
class RADNLiteConfig:
    arch: str = ARCH
    trunk: str = "efficientnet-lite0"  # TRUNKS
    input_norm: str = "(255x-127)/128"  # what the trunk expects of [0, 1] RGB
    deformable: bool = True  # reference-oriented deformable step on the stride-8 tap
    attention: bool = True  # patch attention, one per branch
    width: int = 512  # patch vector size (attention and heads)
    dropout: float = 0.1  # in both heads, training mode only
    compare_from: int = 1  # the finest stride (1: the pixels, 2, 4 ... 32) whose differences the heads see
    texture: bool = False  # add the texture comparison (module doc) to the heads' comparison statistics

    def __post_init__(self) -> None:
        if self.arch != ARCH:
            raise ValueError(f"not a {ARCH} config: arch {self.arch!r}")
        if self.trunk not in TRUNKS:
            raise ValueError(f"unknown trunk {self.trunk!r}; expected one of {TRUNKS}")
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"unknown input normalisation {self.input_norm!r}")
        if self.compare_from not in (1, *(stride for _, stride in TAPS)):
            raise ValueError(
                f"compare_from is a stride of the taps (1, 2, 4 ... 32), not {self.compare_from}"
            )

    @property
    def compare_in(self) -> int:
        """How many comparison statistics a patch has: 547, or 995 with ``texture``."""
        return COMPARE_IN + (TEXTURE_IN if self.texture else 0)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def sampled_deform_conv3x3(
    x: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """DCNv1 3x3 deformable convolution (stride 1, padding 1; offsets (dy, dx) per tap, row-major
    taps), as ``torchvision.ops.deform_conv2d`` computes it, for maps of any size: each tap is a
    bilinear ``grid_sample`` of the map (zeros outside), then one product with the weights. Memory
    grows as 9 x the map (``radn.deform_conv3x3``'s sampling matrix grows as the square of the map:
    right for RADN's 8x8 patch maps, not for a whole image). Sampling in fp32, the product in
    ``x.dtype``."""
    batch, channels, height, width = x.shape
    source = x.float()
    shifts = offsets.float().view(batch, 9, 2, height, width)
    ys = torch.arange(height, dtype=torch.float32, device=x.device).view(1, height, 1)
    xs = torch.arange(width, dtype=torch.float32, device=x.device).view(1, 1, width)
    taps = []
    for k in range(9):
        py = ys + (k // 3 - 1) + shifts[:, k, 0]  # (B, H, W) sampling rows
        px = xs + (k % 3 - 1) + shifts[:, k, 1]
        grid = torch.stack([(2 * px + 1) / width - 1, (2 * py + 1) / height - 1], -1)  # pixel centres
        taps.append(F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    columns = torch.stack(taps, 2).to(x.dtype)  # (B, C, 9, H, W)
    kernel = weight.to(x.dtype).reshape(weight.shape[0], channels, 9)
    return torch.einsum("bckhw,ock->bohw", columns, kernel) + bias.to(x.dtype).view(1, -1, 1, 1)


def cell_means(x: torch.Tensor, stride: int, rows: int, cols: int) -> torch.Tensor:
    """Mean over each 32x32 patch of a map at ``stride``: (B, C, h, w) -> (B, rows * cols, C)."""
    k = PATCH // stride
    x = x[:, :, : rows * k, : cols * k].float()
    if k > 1:
        x = F.avg_pool2d(x, k)
    return x.flatten(2).transpose(1, 2)


def branch_stats(pixels: torch.Tensor, taps: list[torch.Tensor], rows: int, cols: int) -> torch.Tensor:
    """What is in each patch of one image: (B, N, 550), N = rows * cols patches in row-major order.

    Per colour channel the mean and standard deviation of the [0, 1] pixels, per tap channel its mean.
    """
    mean = cell_means(pixels, 1, rows, cols)
    square = cell_means(pixels * pixels, 1, rows, cols)
    parts = [mean, (square - mean * mean).clamp_min(0).add(1e-6).sqrt()]
    parts += [cell_means(t, stride, rows, cols) for (_, stride), t in zip(TAPS, taps)]
    return torch.cat(parts, -1)


def compare_stats(
    ref_pixels: torch.Tensor,
    dist_pixels: torch.Tensor,
    ref_taps: list[torch.Tensor],
    dist_taps: list[torch.Tensor],
    rows: int,
    cols: int,
    texture: bool = False,
) -> torch.Tensor:
    """What differs in each patch: (B, N, 547), the log mean squared difference per colour channel and
    per channel of the taps normalised over their channels at each position (as LPIPS compares); with
    ``texture`` (B, N, 995): then per channel of the taps finer than a patch the log squared difference
    of the two images' patch means of the normalised taps (224), then the log ratio of their patch
    variances, distorted over reference (224; module doc)."""
    parts = [cell_means((dist_pixels.float() - ref_pixels.float()) ** 2, 1, rows, cols)]
    means, ratios = [], []
    for tap, ((_, stride), r, d) in enumerate(zip(TAPS, ref_taps, dist_taps)):
        r = F.normalize(r.float(), dim=1, eps=1e-10)
        d = F.normalize(d.float(), dim=1, eps=1e-10)
        parts.append(cell_means((d - r) ** 2, stride, rows, cols))
        if texture and tap in TEXTURE_TAPS:
            mean_r, mean_d = cell_means(r, stride, rows, cols), cell_means(d, stride, rows, cols)
            var_r = (cell_means(r * r, stride, rows, cols) - mean_r * mean_r).clamp_min(0)
            var_d = (cell_means(d * d, stride, rows, cols) - mean_d * mean_d).clamp_min(0)
            means.append((mean_d - mean_r) ** 2)
            ratios.append(torch.log((var_d + VARIANCE_EPS) / (var_r + VARIANCE_EPS)))
    pointwise = torch.log(torch.cat(parts + means, -1) + LOG_EPS)
    return torch.cat([pointwise, *ratios], -1) if texture else pointwise


def identical_compare(config: RADNLiteConfig) -> torch.Tensor:
    """:func:`compare_stats` of an image with itself, (compare_in,): no difference anywhere (log of the
    floor), equal variances (log ratio 0)."""
    values = torch.full((config.compare_in,), math.log(LOG_EPS))
    if config.texture:
        values[COMPARE_IN + TEXTURE_CHANNELS :] = 0.0
    return values


class RADNLite(nn.Module):
    """Full-reference IQA on whole images with a pretrained trunk; RADN's per-patch outputs.

    Example:
        >>> model = RADNLite().eval()
        >>> ref = torch.rand(2, 3, 64, 96)  # (images, RGB, height, width), [0, 1]
        >>> out = model(ref.flip(-1), ref)
        >>> out.score.shape, out.patch_scores.shape  # 2 x 3 patches of 32x32 per image
        (torch.Size([2]), torch.Size([2, 6]))
    """

    def __init__(self, config: RADNLiteConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or RADNLiteConfig()
        self.trunk = EfficientNetLite()
        channels = TAPS[DEFORM_TAP][0]
        if config.deformable:
            self.conv_offset = nn.Conv2d(channels, 18, 3, padding=1)
            self.deform = DeformConv3x3(channels, channels)
            self.deform2 = DeformConv3x3(channels, channels)
        # standardisation of the per-patch statistics (set from training data, then fixed)
        self.register_buffer("branch_mean", torch.zeros(BRANCH_IN))
        self.register_buffer("branch_std", torch.ones(BRANCH_IN))
        self.register_buffer("compare_mean", torch.zeros(config.compare_in))
        self.register_buffer("compare_std", torch.ones(config.compare_in))
        strides = [1] * 3 + [stride for channels, stride in TAPS for _ in range(channels)]
        # 0 for a pointwise difference the heads ignore (the texture comparison is always seen); a plain
        # attribute (made from the config, not a weight, and it must survive loading onto the meta device)
        seen = [float(s >= config.compare_from) for s in strides] + [1.0] * (config.compare_in - COMPARE_IN)
        self.compare_seen = torch.tensor(seen, device="cpu")
        width = config.width
        self.embed = nn.Linear(BRANCH_IN, width)  # both branches (Siamese)
        self.embed_compare = nn.Linear(config.compare_in, width)
        if config.attention:
            self.Nonlocal1 = PatchAttention(width, width // 2)  # distorted branch
            self.Nonlocal2 = PatchAttention(width, width // 2)  # reference branch
        self.fc1_q = nn.Linear(4 * width, width)
        self.fc2_q = nn.Linear(width, 1)
        self.fc1_w = nn.Linear(4 * width, width)
        self.fc2_w = nn.Linear(width, 1)
        self.dropout = nn.Dropout(config.dropout)
        self.reset_head()

    def reset_head(self) -> None:
        """Identity deformable step, zero offsets, heads near the middle of the DMOS scale."""
        with torch.no_grad():
            if self.config.deformable:
                nn.init.zeros_(self.conv_offset.weight)
                nn.init.zeros_(self.conv_offset.bias)
                for layer in (self.deform, self.deform2):
                    layer.weight.zero_()
                    layer.weight[:, :, 1, 1] = torch.eye(layer.weight.shape[0])
                    layer.bias.zero_()
            nn.init.constant_(self.fc2_q.bias, 3.0)
            nn.init.constant_(self.fc2_w.bias, 1.0)

    def train(self, mode: bool = True) -> RADNLite:
        """Training mode for everything but the trunk's batch norms, which keep their ImageNet
        statistics (a batch of one photo's versions would make poor batch statistics)."""
        super().train(mode)
        for module in self.trunk.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    # ---- whole-image stages (the scoring engine runs them tile by tile) ---------------------------

    def taps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """[0, 1] images (B, 3, H, W) -> the trunk's six taps."""
        return self.trunk.taps(normalise(images))

    def offsets(self, ref_taps: list[torch.Tensor]) -> torch.Tensor | None:
        return self.conv_offset(ref_taps[DEFORM_TAP]) if self.config.deformable else None

    def deform_reference(self, tap: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self._deform(self.deform2, tap, offsets)

    def deform_distorted(self, tap: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self._deform(self.deform, tap, offsets)

    def _deform(self, layer: DeformConv3x3, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            if x.device.type == "cuda":
                from torchvision.ops import deform_conv2d  # CUDA only: torchvision stays out of CPU start-up

                dtype = torch.promote_types(x.dtype, torch.float32)
                args = (x.to(dtype), offsets.to(dtype), layer.weight.to(dtype), layer.bias.to(dtype))
                return deform_conv2d(*args, padding=1).to(x.dtype)
            return sampled_deform_conv3x3(x, offsets, layer.weight, layer.bias)

    def deformed(
        self, ref_taps: list[torch.Tensor], dist_taps: list[torch.Tensor], offsets: torch.Tensor | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The taps with the stride-8 tap of both images deformed by the reference's offsets."""
        if offsets is None:
            return ref_taps, dist_taps
        ref_taps, dist_taps = list(ref_taps), list(dist_taps)
        ref_taps[DEFORM_TAP] = self.deform_reference(ref_taps[DEFORM_TAP], offsets)
        dist_taps[DEFORM_TAP] = self.deform_distorted(dist_taps[DEFORM_TAP], offsets)
        return ref_taps, dist_taps

    def patch_stats(self, ref: torch.Tensor, dist: torch.Tensor, rows: int, cols: int):
        """Whole images (B, 3, H, W) -> per-patch statistics (ref, dist, compare), each (B, N, ...)."""
        taps = self.taps(torch.cat([ref, dist]))
        ref_taps = [t[: ref.shape[0]] for t in taps]
        dist_taps = [t[ref.shape[0] :] for t in taps]
        ref_taps, dist_taps = self.deformed(ref_taps, dist_taps, self.offsets(ref_taps))
        return (
            branch_stats(ref, ref_taps, rows, cols),
            branch_stats(dist, dist_taps, rows, cols),
            compare_stats(ref, dist, ref_taps, dist_taps, rows, cols, self.config.texture),
        )

    # ---- per-image stages on per-patch statistics ------------------------------------------------

    def embed_reference(self, ref_stats: torch.Tensor) -> torch.Tensor:
        """(B, N, 550) -> (B, N, width), after the reference attention."""
        x = F.relu(self.embed((ref_stats - self.branch_mean) / self.branch_std))
        return self.Nonlocal2(x) if self.config.attention else x

    def embed_distorted(self, dist_stats: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.embed((dist_stats - self.branch_mean) / self.branch_std))
        return self.Nonlocal1(x) if self.config.attention else x

    def head(
        self, ref: torch.Tensor, dist: torch.Tensor, compare_stats: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded branches (B, N, width) and comparison statistics (B, N, 547 or 995) -> (scores,
        weights)."""
        seen = self.compare_seen.to(compare_stats.device)
        compare = (compare_stats - self.compare_mean) / self.compare_std * seen
        compare = F.relu(self.embed_compare(compare))
        fused = torch.cat((compare, dist - ref, dist, ref), dim=-1)  # (B, N, 4 width)
        scores = self.fc2_q(self.dropout(F.relu(self.fc1_q(fused)))).squeeze(-1)
        weights = F.relu(self.fc2_w(self.dropout(F.relu(self.fc1_w(fused))))).squeeze(-1) + 1e-6
        return scores, weights

    @staticmethod
    def pool(scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return (scores * weights).sum(-1) / weights.sum(-1)

    def from_stats(self, ref_stats, dist_stats, compare_stats) -> RADNOutput:
        """Per-patch statistics (B, N, ...) -> RADNOutput with (B,) scores."""
        ref = self.embed_reference(ref_stats)
        dist = self.embed_distorted(dist_stats)
        scores, weights = self.head(ref, dist, compare_stats)
        return RADNOutput(self.pool(scores, weights), scores, weights)

    def shared_reference_stats(self, dist: torch.Tensor, ref: torch.Tensor):
        """K distorted versions (K, 3, H, W) of one reference (3, H, W) -> per-patch statistics
        (ref (1, N, 550), dist (K, N, 550), compare (K, N, 547 or 995)); the reference's trunk runs once."""
        k = dist.shape[0]
        rows, cols = ref.shape[1] // PATCH, ref.shape[2] // PATCH
        layout = (
            torch.channels_last
            if self.trunk._conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )
        taps = self.taps(torch.cat([ref[None], dist]).contiguous(memory_format=layout))
        ref_taps = [t[:1].expand(k, *t.shape[1:]) for t in taps]
        ref_taps, dist_taps = self.deformed(ref_taps, [t[1:] for t in taps], self.offsets(ref_taps))
        refs = ref[None].expand(k, -1, -1, -1)
        return (
            branch_stats(ref[None], [t[:1] for t in ref_taps], rows, cols),
            branch_stats(dist, dist_taps, rows, cols),
            compare_stats(refs, dist, ref_taps, dist_taps, rows, cols, self.config.texture),
        )

    def forward_shared_reference(self, dist: torch.Tensor, ref: torch.Tensor) -> RADNOutput:
        """K distorted versions (K, 3, H, W) of one reference (3, H, W) -> RADNOutput, (K,) scores."""
        ref_stats, dist_stats, compare = self.shared_reference_stats(dist, ref)
        ref_features = self.embed_reference(ref_stats).expand(dist.shape[0], -1, -1)
        scores, weights = self.head(ref_features, self.embed_distorted(dist_stats), compare)
        return RADNOutput(self.pool(scores, weights), scores, weights)

    def forward(self, dist: torch.Tensor, ref: torch.Tensor) -> RADNOutput:
        """Whole images dist, ref (B, 3, H, W) in [0, 1], H and W at least 32 -> RADNOutput."""
        if dist.shape != ref.shape or dist.dim() != 4 or min(dist.shape[2:]) < PATCH:
            raise ValueError(
                f"expected two (B, 3, H >= 32, W >= 32) tensors, got {tuple(dist.shape)} "
                f"and {tuple(ref.shape)}"
            )
        rows, cols = ref.shape[2] // PATCH, ref.shape[3] // PATCH
        return self.from_stats(*self.patch_stats(ref, dist, rows, cols))

    def trunk_parameters(self):
        return self.trunk.parameters()

    def head_parameters(self):
        return (p for n, p in self.named_parameters() if not n.startswith("trunk."))
