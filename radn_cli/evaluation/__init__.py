"""Evaluation against human ratings: database layouts, agreement statistics, classical metrics, plots.

* ``databases``: ``load_database`` / ``detect_layout`` for TID2013, KADID-10k, PIPAL, LIVE, CSIQ and
  generic ``ref,dist,mos`` CSV files, each in its own on-disk layout.
* ``stats``: SROCC, KRCC, PLCC, RMSE, the VQEG 4-parameter logistic and ``correlation_report`` (numpy).
* ``classical``: PSNR, SSIM and MS-SSIM as the reference MATLAB code computes them (torch).
* ``plot``: ``scatter_plot`` to a PNG (Pillow).

* ``runner``: ``evaluate`` (every pair through ``pipeline.score_pairs``, every metric, correlations).
* ``outputs``: the JSON report, per-pair scores as CSV, scatter plots.

``classical``, ``plot``, ``runner`` and ``outputs`` import torch / Pillow, so they are not imported
here; import them directly. The statistics are imported on first use (numpy), so that the CLI can
read the layouts' descriptions for its help without loading numpy.
"""

from importlib import import_module

from .databases import LAYOUTS, RatedDatabase, RatedPair, detect_layout, load_database

_STATS = ("correlation_report", "krcc", "logistic4", "logistic4_fit", "plcc", "rmse", "srocc")


def __getattr__(name: str):
    if name in _STATS:
        return getattr(import_module(".stats", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
