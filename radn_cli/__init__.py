"""radn: full-reference perceptual image quality with RADN (Region-Adaptive Deformable Network)."""

__version__ = "0.1.0"
