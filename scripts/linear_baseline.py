"""The linear ImageNet-feature baseline of issue 24, reproduced: the bar a new default must clear.

Frozen EfficientNet-Lite0 (ImageNet weights), the six taps of RADN-Lite (544 channels), channels
unit-normalised at every position, per channel the mean squared difference between reference and
distorted image over the whole image, log; a ridge regression (standardised features, alpha = 0.1 n)
fitted to the KADID-10k cell means of 800 synthetic versions (100 training-pool photos, centre
512x384 region, 8 random cells each, made by ``radn_cli.train.distortions``). Then scored on a
human-rated database (SROCC overall and per type).

    python scripts/linear_baseline.py ../shared/data/pristine tid2013_dev [--json out.json]

No RADN, no patch heads; about 5 CPU minutes. Needs the training extra (efficientnet-lite0 weights).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from radn_cli.evaluation.databases import load_database
from radn_cli.evaluation.stats import srocc
from radn_cli.images import load_image
from radn_cli.models.efficientnet_lite import load_pretrained, normalise
from radn_cli.train.data import PhotoBank, centre_crop, choose_cells, find_photos, split_photos, window_shape
from radn_cli.train.distortions import distort
from radn_cli.train.labels import target


@torch.inference_mode()
def features(net, ref: torch.Tensor, dist: torch.Tensor) -> np.ndarray:
    """(3, H, W) pair -> 544 log mean squared differences of unit-normalised channels."""
    taps = net.taps(normalise(torch.stack([ref, dist])))
    out = []
    for t in taps:
        t = F.normalize(t, dim=1, eps=1e-10)
        out.append(((t[0] - t[1]) ** 2).mean((1, 2)))
    return torch.log(torch.cat(out) + 1e-10).numpy().astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("photos")
    parser.add_argument("database")
    parser.add_argument("--photos-used", type=int, default=100)
    parser.add_argument("--per-photo", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    net = load_pretrained()
    started = time.perf_counter()
    train_photos, _ = split_photos(find_photos(args.photos), 0.1, args.seed)
    g = torch.Generator().manual_seed(args.seed)
    chosen = torch.randperm(len(train_photos), generator=g)[: args.photos_used].tolist()
    bank = PhotoBank([train_photos[i] for i in chosen], 0)
    x, y = [], []
    for index in range(len(bank)):
        photo = bank.get(index)
        region = centre_crop(photo, *window_shape(*photo.shape[1:], 512)).float().div(255)
        for i, (t, level) in enumerate(choose_cells(args.per_photo, False, g)):
            dg = torch.Generator().manual_seed(args.seed * 100_003 + index * 31 + i)
            x.append(features(net, region, distort(region[None], t, level, generator=dg)[0]))
            y.append(target(t, level)[0])
    x, y = np.stack(x), np.array(y)
    mean, sd = x.mean(0), x.std(0) + 1e-8
    z = (x - mean) / sd
    alpha = 0.1 * len(y)
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    fit_seconds = time.perf_counter() - started

    db = load_database(Path(args.database))
    pred, mos, types = [], [], []
    for pair in db.pairs:
        f = features(net, load_image(pair.ref).tensor, load_image(pair.dist).tensor)
        pred.append(float(((f - mean) / sd) @ coef + y.mean()))
        mos.append(pair.mos if db.higher_is_better else -pair.mos)
        types.append(pair.dist_type)
    pred, mos = np.array(pred), np.array(mos)
    result = {
        "srocc": float(srocc(pred, mos)),
        "per_type": {
            t: float(srocc(pred[[u == t for u in types]], mos[[u == t for u in types]]))
            for t in sorted(set(types))
        },
        "train_versions": len(y),
        "train_srocc": float(srocc(z @ coef, y)),
        "fit_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
