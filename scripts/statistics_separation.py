"""Which comparison statistics tell a misalignment from a visible distortion? (RADN-Lite's trunk)

    python scripts/statistics_separation.py DATABASE [--json out.json]

For every reference of a rated database (the TID2013 dev set, say) the ImageNet EfficientNet-Lite0
trunk (the training extra's weights) runs on the reference, on four copies people cannot tell from
it (``shift1``, ``shift2``, ``rescale1``, ``warp1``, as ``scripts/check_invariance.py`` makes them)
and on the database's *visibly* distorted images of it (rated at least 1.0 below its best-rated
distorted image). Per tap of the trunk (channels normalised at each position, as RADN-Lite compares)
and per family of per-patch statistics, the mean over patches and channels of:

* ``pointwise``: the squared difference at each position, averaged over the patch (what RADN-Lite's
  heads always saw);
* ``patch_mean``: the squared difference of the two patch means (``--texture``);
* ``variance_ratio``: the squared log ratio of the two patch variances (``--texture``);
* ``pooled3``: the pointwise difference after a 3x3 average of each map (a blur before comparing).

The first three are RADN-Lite's own comparison statistics (``radn_cli.models.lite.compare_stats`` with
``texture``, its logs undone); the texture ones exist for taps finer than a patch (at stride 32 a
patch is one position: see the pointwise row).

Printed per family and tap, for each probe: ``ratio``, its value over the median visibly distorted
image's (mean over references; small is good), and ``above``, the share of visibly distorted images
with a larger value (1 is good). A family that separates has a small ratio and ``above`` near 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from check_invariance import _shifted  # noqa: E402

from radn_cli.constants import PATCH  # noqa: E402
from radn_cli.evaluation.databases import load_database  # noqa: E402
from radn_cli.images import load_image  # noqa: E402
from radn_cli.models.efficientnet_lite import TAPS, load_pretrained, normalise  # noqa: E402
from radn_cli.models.lite import (  # noqa: E402
    COMPARE_IN,
    LOG_EPS,
    TEXTURE_CHANNELS,
    TEXTURE_TAPS,
    cell_means,
    compare_stats,
)
from radn_cli.train.data import rescaled, warped  # noqa: E402

FAMILIES = ("pointwise", "patch_mean", "variance_ratio", "pooled3")
PROBES = ("shift1", "shift2", "rescale1", "warp1")


def statistics(ref_pixels, dist_pixels, ref_taps, dist_taps, rows: int, cols: int) -> dict[str, list[float]]:
    """Each family's mean over patches and channels, per tap (module doc; NaN where not defined)."""
    compare = compare_stats(ref_pixels, dist_pixels, ref_taps, dist_taps, rows, cols, texture=True)[0]
    squared = compare[:, : COMPARE_IN + TEXTURE_CHANNELS].exp() - LOG_EPS  # the logged mean squares
    out: dict[str, list[float]] = {f: [] for f in FAMILIES}
    start, texture_start = 3, COMPARE_IN  # after the 3 colour channels; the texture block
    for tap, ((channels, stride), r, d) in enumerate(zip(TAPS, ref_taps, dist_taps)):
        out["pointwise"].append(float(squared[:, start : start + channels].mean()))
        start += channels
        if tap in TEXTURE_TAPS:
            means = squared[:, texture_start : texture_start + channels]
            ratios = compare[
                :, texture_start + TEXTURE_CHANNELS : texture_start + TEXTURE_CHANNELS + channels
            ]
            out["patch_mean"].append(float(means.mean()))
            out["variance_ratio"].append(float((ratios**2).mean()))
            texture_start += channels
        else:
            out["patch_mean"].append(float("nan"))
            out["variance_ratio"].append(float("nan"))
        r, d = F.normalize(r, dim=1, eps=1e-10), F.normalize(d, dim=1, eps=1e-10)
        pooled = F.avg_pool2d(d, 3, 1, 1) - F.avg_pool2d(r, 3, 1, 1)
        out["pooled3"].append(float(cell_means(pooled**2, stride, rows, cols).mean()))
    return out


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("--visible", type=float, default=1.0, help="rating gap that counts as visible")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    trunk = load_pretrained().eval()
    db = load_database(args.database)
    sign = 1.0 if db.higher_is_better else -1.0
    by_ref: dict[Path, list] = {}
    for pair in db.pairs:
        by_ref.setdefault(pair.ref, []).append(pair)
    found = {f: {t: {p: [] for p in PROBES} for t in range(len(TAPS))} for f in FAMILIES}
    for index, (ref_path, pairs) in enumerate(sorted(by_ref.items())):
        ref = load_image(ref_path).tensor
        probes = [
            _shifted(ref, 1),
            _shifted(ref, 2),
            rescaled(ref, 1.01),
            warped(ref, torch.Generator().manual_seed(index), amplitude=1.0),
        ]
        best = max(sign * p.mos for p in pairs)
        visible = [load_image(p.dist).tensor for p in pairs if sign * p.mos <= best - args.visible]
        images = torch.stack([ref, *probes, *visible])
        taps = trunk.taps(normalise(images))
        rows, cols = ref.shape[1] // PATCH, ref.shape[2] // PATCH
        ref_taps = [t[:1] for t in taps]
        found_here = [
            statistics(images[:1], images[j : j + 1], ref_taps, [t[j : j + 1] for t in taps], rows, cols)
            for j in range(1, len(images))
        ]
        for family in FAMILIES:
            for tap in range(len(TAPS)):
                distorted = np.array([s[family][tap] for s in found_here[len(PROBES) :]])
                for k, probe in enumerate(PROBES):
                    value = found_here[k][family][tap]
                    found[family][tap][probe].append(
                        (value / np.median(distorted), float((distorted > value).mean()))
                    )
        print(f"{ref_path.name}: {len(visible)} visibly distorted", file=sys.stderr, flush=True)
    table = {}
    for family in FAMILIES:
        for tap, (_, stride) in enumerate(TAPS):
            row = {}
            for probe in PROBES:
                values = np.array(found[family][tap][probe])
                if np.isnan(values[:, 0]).all():
                    continue
                row[probe] = {
                    "ratio": round(float(values[:, 0].mean()), 3),
                    "above": round(float(values[:, 1].mean()), 3),
                }
            if row:
                table[f"{family} stride {stride} (tap {tap})"] = row
                cells = " | ".join(f"{p} {v['ratio']:.3f} / {v['above']:.3f}" for p, v in row.items())
                print(f"{family:14s} stride {stride:2d} tap {tap} | {cells}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
