"""8-bit round trip of a float batch, for the types that run through Pillow on the CPU (06, 09, 10).

The image is rounded to 8 bit first, as MATLAB's ``rgb2ind`` and ``imwrite`` see it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def to_uint8_images(x: Tensor) -> np.ndarray:
    """[B, 3, H, W] float in [0, 1] -> [B, H, W, 3] uint8 (round, saturate), on the CPU."""
    u8 = (x.detach().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)
    return np.ascontiguousarray(u8.cpu().numpy())


def from_uint8_images(arrs: list[np.ndarray], like: Tensor) -> Tensor:
    t = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).to(dtype=like.dtype)
    return (t / 255.0).to(like.device)
