"""The HTML report of a batch (`radn report`, `radn batch --report`): a page that works offline.

``report.html`` and its folder ``report_files/`` (script, style, thumbnails, views and heatmaps)
show a results CSV: a summary (pairs, failures and their errors, weights, score scale and
direction), the score histogram, a table per method when the distorted paths have one folder per
method, a sortable, filterable table of the pairs whose rows open the reference, the distorted image
and its per-patch heatmap side by side, and each reference's distorted versions ranked.

Modules, one concern each:

* ``table``: the results CSV read back (``csvtable``), methods, ranks per reference;
* ``summary``: mean, median, Student-t confidence interval, histogram bins (no scipy);
* ``assets``: the picture folder, which is also the cache (names are hashes of what a picture shows);
* ``build``: the order of the work, and ``BatchHeatmaps``, the hook `radn batch` feeds as it scores;
* ``page``: what the template shows; ``render``: Jinja2 (autoescaped) and the files written;
* ``browser``: headless Chromium for the tests, the benchmark and the demo (never imported here).

Nothing here prints; torch is imported only to decode images and to score pairs whose heatmap is
missing.
"""

from __future__ import annotations

from .build import DEFAULT_MAP, BatchHeatmaps, Built, build_report, files_folder, weights_mismatch
from .table import ResultRow, Results, read_results

__all__ = [
    "DEFAULT_MAP",
    "BatchHeatmaps",
    "Built",
    "ResultRow",
    "Results",
    "build_report",
    "files_folder",
    "read_results",
    "weights_mismatch",
]
