"""Deterministic, signal-preserving random weights for RADN / WResNet state dicts (for golden tests).

Why not PyTorch's default initialisation: it shrinks the signal by about 3x per layer, so through
RADN's ~25 layers the image score hardly depends on the image (an identical pair and a JPEG-damaged
pair differ by ~2.5e-8 for RADN, ~9e-6 for WResNet, measured with torch.manual_seed(0)) and an
agreement test at 1e-4 would prove nothing.  The rules below keep the activations O(1) all the way
to the heads (RMS ~1.5 after block 4, ~1.1 for the 512-d patch vectors).

``seeded_state_dict(shapes, seed)`` returns a float64 CPU tensor for every name in ``shapes``
(state-dict names exactly as in the reference code, e.g. ``conv7.weight`` [128, 128, 3, 3],
``Nonlocal1.theta.weight`` [256, 512, 1, 1], ``conv_offset.weight`` [18, 256, 3, 3]).  Every tensor is
drawn from its own ``torch.Generator`` seeded with ``seed * 1_000_003 + zlib.crc32(name)``, so a value
depends only on (seed, name, shape): not on which other names are present nor on their order.  Values
are drawn directly in float64 with ``torch.randn(..., dtype=torch.float64, generator=g)`` on the CPU
(PyTorch's CPU normal sampler; the golden JSON stores a SHA-256 of every tensor, so a change of that
sampler in a future PyTorch would show up as a fingerprint mismatch, not as a model bug).

Rules (``fan_in = shape[1] * prod(shape[2:])``; ``z`` is a standard normal draw of the given shape):

=========================================  =====================================================
name                                       value
=========================================  =====================================================
``conv*.weight``, ``deform*.weight``,      Kaiming normal, fan-in, ReLU gain:
``fc1_*.weight``, ``fc2_*.weight``,        ``z * sqrt(2 / fan_in)``
``Nonlocal*.g.weight``
``conv_offset.weight``                     ``OFFSET_SCALE * z * sqrt(2 / fan_in)``
``Nonlocal*.theta.weight``,                ``NONLOCAL_QK_SCALE * z * sqrt(2 / fan_in)``
``Nonlocal*.phi.weight``
``Nonlocal*.W.weight``                     ``NONLOCAL_W_SCALE * z * sqrt(2 / fan_in)`` (the reference
                                           initialises it to zero, which would make the attention
                                           block an identity and untested)
``fc2_w.bias``                             ``FC2_W_BIAS`` (constant, positive, so relu(fc2_w) is
                                           not zero for most patches)
any other ``*.bias``                       ``BIAS_STD * z``
anything else (not expected)               ``z * sqrt(2 / fan_in)`` if 2-d or more, else ``BIAS_STD * z``
=========================================  =====================================================

How the constants were chosen (measured with the reference code at commit be1ae49 on the golden
images in this folder, float64, seed 0; make_golden.py records the same statistics in golden.json
under ``init_statistics_float64``):

* ``OFFSET_SCALE = 0.5``.  The reference features after block 4 (input of ``conv_offset``) have an
  RMS of 1.73 (pair a) / 1.55 (pair b), so plain Kaiming would give offsets of ~2 px RMS on an 8x8
  map.  With 0.5 the offsets measure 1.02 / 0.92 px RMS, max |offset| 4.4 / 3.9 px: fractional
  bilinear sampling at about one pixel of displacement, mostly inside the map.
* ``NONLOCAL_QK_SCALE = 1.0`` (plain Kaiming for theta and phi).  Measured over the 12 patches:
  mean row entropy of the softmax 0.48-0.63 of log(N) (lowest single row 0.28), mean of the row
  maxima 0.44-0.59: neither uniform nor one-hot.  Smaller scales make it uniform quickly (the logits
  scale with the square): 0.7 -> entropy 0.71-0.85, 0.3 -> 0.98-0.99, 0.1 or less -> 1.000; the
  identical-vs-JPEG score gap was also largest at 1.0.
* ``NONLOCAL_W_SCALE = 0.1``: the attention block changes the 512-d patch vectors by 18-22 % of
  their norm (``|z - x| / |x|``), enough to matter, not enough to dominate.
* ``FC2_W_BIAS = 5.0``.  Because fc1_w's output is post-ReLU (all positive, correlated across
  patches), ``fc2_w.weight @ h`` has a large common negative part with seed 0: -3.3..-2.3 for RADN,
  -5.5..-3.7 for WResNet, so a bias of 1.0 would clip every weight to 1e-6.  With 5.0 the RADN
  weights are 1.70-2.70 (none clipped) and the WResNet weights 1e-6..1.30 (5 of 12 patches clipped
  on pair a, none on pair b), so both the weighting and the ReLU of the weight head are exercised.
* ``BIAS_STD = 0.01`` for all other biases.

Results: RADN scores are about -0.9, WResNet about -2.1 (O(1)); identical pair minus JPEG-q23 pair:
5.7e-3 (RADN) and 1.7e-2 (WResNet); +1e-3 on every element of ``conv7.weight`` moves the RADN
score by 0.34.  Note that ``Nonlocal*.phi.bias`` provably has no effect (it adds a per-row constant
to the softmax logits) and ``fc2_w.bias`` very little (+1e-3 moves the score by 3e-6).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping

import torch

OFFSET_SCALE = 0.5
NONLOCAL_QK_SCALE = 1.0
NONLOCAL_W_SCALE = 0.1
FC2_W_BIAS = 5.0
BIAS_STD = 0.01
SEED_STRIDE = 1_000_003

_QK = re.compile(r"^Nonlocal\d+\.(theta|phi)\.weight$")
_NL_W = re.compile(r"^Nonlocal\d+\.W\.weight$")


def _generator(name: str, seed: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(seed * SEED_STRIDE + zlib.crc32(name.encode("utf-8")))
    return g


def _fan_in(shape: tuple[int, ...]) -> int:
    return shape[1] * math.prod(shape[2:])


def weight_scale(name: str, shape: tuple[int, ...]) -> float:
    """The standard deviation used for ``name`` (0.0 for a constant tensor)."""
    if name == "fc2_w.bias":
        return 0.0
    if name.endswith(".bias") or len(shape) < 2:
        return BIAS_STD
    kaiming = math.sqrt(2.0 / _fan_in(shape))
    if name == "conv_offset.weight":
        return OFFSET_SCALE * kaiming
    if _QK.match(name):
        return NONLOCAL_QK_SCALE * kaiming
    if _NL_W.match(name):
        return NONLOCAL_W_SCALE * kaiming
    return kaiming


def seeded_tensor(name: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """One float64 tensor of the seeded state dict (see the module docstring)."""
    shape = tuple(int(s) for s in shape)
    if name == "fc2_w.bias":
        return torch.full(shape, FC2_W_BIAS, dtype=torch.float64)
    z = torch.randn(shape, dtype=torch.float64, generator=_generator(name, seed))
    return z * weight_scale(name, shape)


def seeded_state_dict(shapes: Mapping[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """A float64 state dict with a deterministic tensor for every ``name -> shape`` in ``shapes``.

    Example:
        >>> sd = seeded_state_dict({"conv1.weight": (64, 3, 3, 3), "fc2_w.bias": (1,)})
        >>> sd["conv1.weight"].dtype, sd["conv1.weight"].shape, sd["fc2_w.bias"].item()
        (torch.float64, torch.Size([64, 3, 3, 3]), 5.0)
    """
    return {name: seeded_tensor(name, tuple(shape), seed) for name, shape in shapes.items()}


def describe() -> dict[str, object]:
    """The initialisation rules and constants, for recording next to golden numbers."""
    return {
        "generator": "per tensor: torch.Generator('cpu').manual_seed(seed * 1000003 + zlib.crc32(name)); "
        "torch.randn(shape, dtype=float64, generator=g) * std",
        "kaiming": "std = sqrt(2 / fan_in), fan_in = shape[1] * prod(shape[2:])",
        "rules": {
            "conv*/deform*/fc*/Nonlocal*.g weight": "kaiming",
            "conv_offset.weight": f"{OFFSET_SCALE} * kaiming",
            "Nonlocal*.theta.weight, Nonlocal*.phi.weight": f"{NONLOCAL_QK_SCALE} * kaiming",
            "Nonlocal*.W.weight": f"{NONLOCAL_W_SCALE} * kaiming",
            "fc2_w.bias": f"constant {FC2_W_BIAS}",
            "other biases": f"N(0, {BIAS_STD}^2)",
        },
        "constants": {
            "OFFSET_SCALE": OFFSET_SCALE,
            "NONLOCAL_QK_SCALE": NONLOCAL_QK_SCALE,
            "NONLOCAL_W_SCALE": NONLOCAL_W_SCALE,
            "FC2_W_BIAS": FC2_W_BIAS,
            "BIAS_STD": BIAS_STD,
            "SEED_STRIDE": SEED_STRIDE,
        },
    }
