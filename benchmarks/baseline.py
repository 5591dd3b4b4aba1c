"""The speed baseline: RADN executed the way the authors' test code executes it, on our weights.

``ReferenceStyleRADN`` wraps one of our ``radn_cli.models.radn.RADN`` modules (the same parameters, so the
same numbers) and runs its forward pass the way the reference code's ``RADN.forward`` and its test
scripts do:

* one image pair at a time, in a Python loop over the batch (the test scripts pass batches of one);
* fp32 only, under ``torch.no_grad()``;
* every patch of an image in a single forward pass: the test scripts crop all 32x32 patches of an
  image into one stacked tensor, so nothing bounds memory on large images;
* both branches for every pair: trunk of the distorted and of the reference patches, offsets from
  the reference, ``torchvision.ops.deform_conv2d`` for both deformable convolutions (the kernel the
  reference code calls, on every device), tail of both branches;
* the non-local blocks as the reference's ``NONLocalBlock2D``: 1x1 convolutions on a
  [1, 512, N, 1] layout, an explicit N x N ``matmul``, ``softmax``, a second ``matmul``, the W
  convolution and the residual sum (the full N x N matrix is materialised);
* both heads and the weighted average over all patches.

Patches are cut one at a time from the image (a Python loop of crops, then a stack), as the
reference's ``NonOverlappingCropPatches`` does with PIL crops. The grid is ours (rows = H // 32,
cols = W // 32, row-major from the top-left corner) so that the two implementations score exactly
the same patches; the reference's own rule differs only for images with exactly one side a multiple
of 32 (e.g. 1920x1080: it drops the last column as well, 33x59 instead of 33x60 patches).

The module also makes the deterministic seeded weights the benchmarks run on (speed does not depend
on training): ``seeded_model()`` and ``write_seeded_weights(path)`` use the same rules as the test
suite's ``tests/golden/seeded.py``.

Self-check (a few seconds): ``python benchmarks/baseline.py`` scores a small pair with the baseline
and with ``radn_cli.scoring.Scorer`` and prints both.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

ROOT = Path(__file__).resolve().parent.parent
for _extra in (ROOT, ROOT / "tests"):  # radn_cli without an install; tests/golden for the seeding rules
    if str(_extra) not in sys.path:
        sys.path.insert(0, str(_extra))

from radn_cli.models.radn import RADN, RADNConfig  # noqa: E402

PATCH = 32


# ---- seeded weights -------------------------------------------------------------------------------


def seeded_model(seed: int = 0) -> RADN:
    """A full RADN (deformable step and attention) with the test suite's seeded weights, fp32, eval."""
    from golden.seeded import seeded_state_dict

    model = RADN(RADNConfig()).double()  # seeded values are drawn in float64
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    model.load_state_dict(seeded_state_dict(shapes, seed))
    return model.float().eval()


def write_seeded_weights(path: str | Path, seed: int = 0) -> Path:
    """A radn weights file (fp32) holding ``seeded_model(seed)``; returns its path."""
    from radn_cli.weights import save_weights

    path = Path(path)
    save_weights(
        seeded_model(seed),
        path,
        name=f"bench-seeded-{seed}",
        training_data="none: seeded random weights for benchmarks",
        score_scale="arbitrary",
        metrics={"note": "untrained; for speed and agreement measurements only"},
    )
    return path


# ---- the reference-style forward ------------------------------------------------------------------


def crop_patches(image: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """All whole patches of an image [3, H, W], cut one by one in row-major order: [N, 3, p, p]."""
    rows, cols = image.shape[1] // patch, image.shape[2] // patch
    crops = []
    for top in range(0, rows * patch, patch):
        for left in range(0, cols * patch, patch):
            crops.append(image[:, top : top + patch, left : left + patch])
    return torch.stack(crops)


class ReferenceStyleRADN(nn.Module):
    """Our RADN's parameters, run with the reference code's test-time control flow (see the module doc)."""

    def __init__(self, model: RADN) -> None:
        super().__init__()
        config = model.config
        if config.arch != "radn" or not config.deformable or not config.attention:
            raise ValueError("the reference-style baseline needs a full RADN (deformable step and attention)")
        # its own copy with contiguous weights, as load_state_dict into a fresh reference model gives
        # (a Scorer converts its model's weights to the layouts it runs fastest in)
        self.net = copy.deepcopy(model).float()
        for parameter in self.net.parameters():
            parameter.data = parameter.data.contiguous()

    # Blocks as the reference writes them out: conv + ReLU on the first conv of each block, three more
    # conv + ReLU, then the residual sum with the first activation.
    def _residual_block(self, x: torch.Tensor, first: int) -> torch.Tensor:
        net = self.net
        head = F.relu(getattr(net, f"conv{first}")(x))
        out = head
        for index in (first + 1, first + 2, first + 3):
            out = F.relu(getattr(net, f"conv{index}")(out))
        return out + head

    def features_low(self, x: torch.Tensor) -> torch.Tensor:
        """conv1..conv16: [N, 3, 32, 32] -> [N, 256, 8, 8]."""
        for first in (1, 5, 9, 13):
            x = self._residual_block(x, first)
        return x

    def features_high(self, x: torch.Tensor) -> torch.Tensor:
        """conv17..conv22 and the 2x2 average pool: [N, 256, 8, 8] -> [N, 512]."""
        net = self.net
        x = self._residual_block(x, 17)
        x = F.relu(net.conv22(F.relu(net.conv21(x))))
        return F.avg_pool2d(x, 2).reshape(-1, 512)

    @staticmethod
    def _deformable(layer: nn.Module, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return deform_conv2d(x, offsets, layer.weight, layer.bias, padding=(1, 1))

    @staticmethod
    def _non_local(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Embedded-Gaussian non-local block on x [1, C, N, 1], N x N matrix made explicitly."""
        batch, inner = x.shape[0], block.theta.weight.shape[0]
        values = block.g(x).reshape(batch, inner, -1).transpose(1, 2)  # [1, N, inner]
        queries = block.theta(x).reshape(batch, inner, -1).transpose(1, 2)  # [1, N, inner]
        keys = block.phi(x).reshape(batch, inner, -1)  # [1, inner, N]
        affinity = torch.softmax(torch.matmul(queries, keys), dim=-1)  # [1, N, N]
        mixed = torch.matmul(affinity, values).transpose(1, 2).contiguous()  # [1, inner, N]
        return block.W(mixed.reshape(batch, inner, *x.shape[2:])) + x

    @staticmethod
    def _as_columns(vectors: torch.Tensor) -> torch.Tensor:
        """[N, 512] patch vectors -> [1, 512, N, 1], the layout the reference feeds its non-local block."""
        return vectors.t().unsqueeze(0).unsqueeze(-1)

    @staticmethod
    def _from_columns(columns: torch.Tensor) -> torch.Tensor:
        return columns[0, :, :, 0].t()

    def forward(self, dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """dist, ref: [B, N, 3, 32, 32] -> [B, 1] image scores, one pair after another."""
        net = self.net
        scores = torch.ones((dist.shape[0], 1), device=dist.device)
        for index in range(dist.shape[0]):
            low = self.features_low(dist[index])
            low_ref = self.features_low(ref[index])
            offsets = net.conv_offset(low_ref)
            high = self.features_high(self._deformable(net.deform, low, offsets))
            high_ref = self.features_high(self._deformable(net.deform2, low_ref, offsets))
            high = self._from_columns(self._non_local(net.Nonlocal1, self._as_columns(high)))
            high_ref = self._from_columns(self._non_local(net.Nonlocal2, self._as_columns(high_ref)))
            fused = torch.cat((high - high_ref, high, high_ref), dim=1)
            quality = net.fc2_q(net.dropout(F.relu(net.fc1_q(fused))))
            weight = F.relu(net.fc2_w(net.dropout(F.relu(net.fc1_w(fused))))) + 1e-6
            scores[index] = torch.sum(quality * weight) / torch.sum(weight)
        return scores

    @torch.no_grad()
    def score_pair(self, ref_image: torch.Tensor, dist_image: torch.Tensor) -> float:
        """One pair of [3, H, W] images in [0, 1] (any device; patches are cut on the CPU, as PIL does)."""
        device = next(self.net.parameters()).device
        dist = crop_patches(dist_image.cpu()).unsqueeze(0).to(device)
        ref = crop_patches(ref_image.cpu()).unsqueeze(0).to(device)
        return float(self(dist, ref)[0, 0])


class AuthorsRADN:
    """The authors' own code (IIGROUP/RADN at be1ae49, a local checkout) with our weights.

    Loaded the way ``tests/golden/make_golden.py`` loads it for the golden values (the files are first
    checked against their git blob ids; ``model/Deform.py``'s 2021 torchvision call is replaced by
    ``torchvision.ops.DeformConv2d``, the same DCNv1 operation; unused training imports of ``main.py``
    are stubbed), so this runs the reference ``RADN.forward`` itself: per-image loop, both branches,
    NCHW fp32. Patches are cut like the baseline's (``crop_patches``), on the same grid.
    """

    def __init__(self, checkout: str | Path, model: RADN, device: str | torch.device = "cpu") -> None:
        from golden import make_golden

        make_golden.check_reference(Path(checkout))
        radn_cls, _, _, _ = make_golden.load_reference(Path(checkout))
        self.net = radn_cls(weighted_average=True, pooling=0)
        self.net.load_state_dict({k: v.float().contiguous() for k, v in model.state_dict().items()})
        self.net.to(device).eval()
        self.device = torch.device(device)

    @torch.no_grad()
    def score_pair(self, ref_image: torch.Tensor, dist_image: torch.Tensor) -> float:
        """As ``ReferenceStyleRADN.score_pair``: patches cut on the CPU, then moved to the device."""
        dist = crop_patches(dist_image.cpu()).unsqueeze(0).to(self.device)
        ref = crop_patches(ref_image.cpu()).unsqueeze(0).to(self.device)
        return float(self.net((dist, ref))[0, 0])


def _self_check() -> int:
    import tempfile

    from radn_cli.scoring import Scorer
    from radn_cli.weights import load_weights

    torch.manual_seed(0)
    ref = torch.rand(3, 96, 128)
    dist = (ref + 0.1 * torch.randn_like(ref)).clamp(0, 1)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_weights(write_seeded_weights(Path(tmp) / "seeded.safetensors"))
    ours = Scorer(loaded, device="cpu", precision="fp32").score_pair(ref, dist).score
    theirs = ReferenceStyleRADN(loaded.model).eval().score_pair(ref, dist)
    print(f"Scorer.score_pair {ours:.7f}  reference-style {theirs:.7f}  |diff| {abs(ours - theirs):.2e}")
    return 0 if abs(ours - theirs) <= 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(_self_check())
