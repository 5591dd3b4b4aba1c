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
* ``plan``: each row with the keys of its pictures, or why it has no heatmap;
* ``build``: the order of the work, and ``BatchHeatmaps``, the hook `radn batch` feeds as it scores;
* ``page``: what the template shows; ``render``: Jinja2 (autoescaped) and the files written;
* ``browser``: headless Chromium for the tests, the benchmark and the demo (never imported here).

Nothing here prints. The names below are imported on first use: reading a results CSV
(``read_results``) and naming the report's folder (``files_folder``) load neither PyTorch nor
Jinja2, so that `radn report` reports a bad CSV at once; ``build`` imports PyTorch (decoding,
scoring the pairs whose heatmap is missing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

# public name -> module that defines it
_LAZY = {
    "DEFAULT_MAP": ".build",
    "BatchHeatmaps": ".build",
    "Built": ".build",
    "build_report": ".build",
    "weights_mismatch": ".build",
    "files_folder": ".assets",
    "ResultRow": ".table",
    "Results": ".table",
    "read_results": ".table",
}

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

if TYPE_CHECKING:
    from .assets import files_folder
    from .build import DEFAULT_MAP, BatchHeatmaps, Built, build_report, weights_mismatch
    from .table import ResultRow, Results, read_results


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
