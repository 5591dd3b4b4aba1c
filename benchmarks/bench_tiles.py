"""RADN-Lite's tiles against the untiled computation: how far the trunk's margin must reach.

    python benchmarks/bench_tiles.py --weights LITE.safetensors [--halos 128,256,384,512] [--core 256]

A 1536x1152 pair (the example photo magnified 3x, bicubic, and its JPEG q25 copy) is scored untiled
(one tile holding the whole image) and with tiles of ``--core`` patches (16x16 = 512 px by default,
the worst case of many tile borders) at each margin; prints the score difference, the largest
per-patch difference and the time. The margin the tile engine uses (``radn_cli.scoring.tiles.HALO``)
is the smallest measured to keep scores within 1e-4.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import radn_cli.scoring.tiles as tiles  # noqa: E402
from radn_cli.devices import keep_freed_memory  # noqa: E402
from radn_cli.images import load_image  # noqa: E402
from radn_cli.scoring import Scorer  # noqa: E402
from radn_cli.weights import load_weights  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ref.png"


def large_pair() -> tuple[torch.Tensor, torch.Tensor]:
    ref = load_image(EXAMPLE).tensor
    big = F.interpolate(ref[None], scale_factor=3, mode="bicubic", antialias=True)[0].clamp(0, 1)
    buffer = io.BytesIO()
    Image.fromarray((big.permute(1, 2, 0) * 255).round().byte().numpy()).save(buffer, "JPEG", quality=25)
    dist = torch.from_numpy(np.array(Image.open(buffer))).permute(2, 0, 1).float() / 255
    return big, dist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--halos", default="128,256,384,512")
    parser.add_argument("--core", type=int, default=256, help="patches per tile core")
    args = parser.parse_args()
    keep_freed_memory()
    weights = load_weights(args.weights)
    ref, dist = large_pair()
    start = time.perf_counter()
    untiled = Scorer(weights, device="cpu", batch_size=10**8).score_pair(ref, dist)
    rows = [{"halo": "untiled", "score": untiled.score, "seconds": round(time.perf_counter() - start, 1)}]
    for halo in (int(h) for h in args.halos.split(",")):
        tiles.HALO = halo
        start = time.perf_counter()
        result = Scorer(weights, device="cpu", batch_size=args.core).score_pair(ref, dist)
        rows.append(
            {
                "halo": halo,
                "score": result.score,
                "difference": abs(result.score - untiled.score),
                "largest_patch_difference": float((result.patch_scores - untiled.patch_scores).abs().max()),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
