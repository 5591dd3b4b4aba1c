"""Constants shared across radn: what counts as an image file, and RADN's patch size.

Imports nothing heavy (no torch, no Pillow): the CLI reads these before PyTorch loads.
"""

from __future__ import annotations

# File suffixes read as images (compared in lower case): folders are searched for these.
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"})

# RADN scores non-overlapping PATCH x PATCH squares, row-major from the top-left corner.
PATCH = 32

# --precision values, fastest last on a GPU; training runs in the first two only
PRECISION_NAMES: tuple[str, ...] = ("fp32", "bf16", "fp16")
TRAINING_PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
# The per-patch maps a heatmap can show, their former names and the default: heatmap.choices (MAPS)
