"""Evaluation against human ratings: database layouts, agreement statistics, classical metrics, plots.

* ``databases``: ``load_database`` / ``detect_layout`` for TID2013, KADID-10k, PIPAL, LIVE, CSIQ and
  generic ``ref,dist,mos`` CSV files, each in its own on-disk layout.
* ``stats``: SROCC, KRCC, PLCC, RMSE, the VQEG 4-parameter logistic and ``correlation_report`` (numpy).
* ``classical``: PSNR, SSIM and MS-SSIM as the reference MATLAB code computes them (torch).
* ``plot``: ``scatter_plot`` to a PNG (Pillow).

``classical`` and ``plot`` import torch / Pillow, so they are not imported here; import them directly.
"""

from .databases import LAYOUTS, RatedDatabase, RatedPair, detect_layout, load_database
from .stats import correlation_report, krcc, logistic4, logistic4_fit, plcc, rmse, srocc

__all__ = [
    "LAYOUTS",
    "RatedDatabase",
    "RatedPair",
    "correlation_report",
    "detect_layout",
    "krcc",
    "load_database",
    "logistic4",
    "logistic4_fit",
    "plcc",
    "rmse",
    "srocc",
]
