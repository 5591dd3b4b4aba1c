"""Does bf16 (or fp16) rank a TID2013-layout set the same as fp32, and by how much do the scores differ?

Scores every pair of a folder in the TID2013 layout:

  DIR/reference_images/I01.BMP ...        references (any image suffix, names matched case-insensitively)
  DIR/distorted_images/i01_01_1.bmp ...   distorted images; the reference is the name up to the first "_"
  DIR/mos_with_names.txt                  "MOS name" per line

(the TID2013 dev set of ../shared/data/tid2013_dev/ is built in this layout by its make_tid2013.py),
in fp32 and in the lower precision, with the reference encoded once per reference and precision.
Reports SROCC(fp32 scores, low-precision scores), max |diff| / (max - min of the fp32 scores), the mean
|diff|, and each precision's SROCC with the MOS. Targets (from the issue): SROCC >= 0.999 and max |diff|
<= 1% of the fp32 score range. Use trained weights: with untrained (seeded) weights the scores hardly
vary between distortions and the range is meaningless.

Usage:
  python benchmarks/bench_bf16_agreement.py tid2013_dev --weights W [--device auto] [--compare bf16]
      [--limit N] [--out agreement.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SROCC_TARGET = 0.999
RANGE_SHARE_TARGET = 0.01


def read_pairs(folder: Path) -> list[tuple[Path, Path, float]]:
    """(reference, distorted, MOS) for every line of mos_with_names.txt, in file order."""
    ref_dir, dist_dir = folder / "reference_images", folder / "distorted_images"
    listing = folder / "mos_with_names.txt"
    for needed in (ref_dir, dist_dir, listing):
        if not needed.exists():
            raise SystemExit(f"{needed} not found: not a TID2013-layout folder")
    references: dict[str, Path] = {}
    for path in sorted(ref_dir.iterdir()):
        if path.is_file():
            references.setdefault(path.stem.lower(), path)
    pairs = []
    for number, line in enumerate(listing.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise SystemExit(f"{listing}:{number}: expected 'MOS name', got {line!r}")
        mos, name = float(fields[0]), fields[1]
        ref = references.get(name.split("_", 1)[0].lower())
        if ref is None:
            raise SystemExit(f"{listing}:{number}: no reference image for {name}")
        pairs.append((ref, dist_dir / name, mos))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="TID2013-layout folder")
    parser.add_argument("--weights", type=Path, default=None, help="weights file (default: radn's lookup)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--compare", default="bf16", choices=("bf16", "fp16"), help="precision compared with fp32"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=None, help="score only the first N pairs (smoke runs)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write summary and per-pair scores as JSON")
    args = parser.parse_args(argv)

    import torch

    from radn_cli.evaluation.stats import plcc, srocc
    from radn_cli.images import load_image
    from radn_cli.scoring import Scorer
    from radn_cli.weights import load_weights, resolve_weights

    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = read_pairs(args.folder)[: args.limit]
    loaded = load_weights(resolve_weights(args.weights).path)
    precisions = ("fp32", args.compare)
    scorers = {
        p: Scorer(loaded, device=args.device, precision=p, batch_size=args.batch_size) for p in precisions
    }
    by_ref: dict[Path, list[int]] = defaultdict(list)
    for index, (ref, _, _) in enumerate(pairs):
        by_ref[ref].append(index)
    scores = {p: [float("nan")] * len(pairs) for p in precisions}
    seconds = dict.fromkeys(precisions, 0.0)
    done = 0
    for ref_path, indices in by_ref.items():
        ref = load_image(ref_path).tensor
        dists = [load_image(pairs[i][1]).tensor for i in indices]
        for precision, scorer in scorers.items():
            start = time.perf_counter()
            encoding = scorer.encode_reference(ref)
            for i, dist in zip(indices, dists, strict=True):
                scores[precision][i] = scorer.score(encoding, dist).score
            seconds[precision] += time.perf_counter() - start
        done += len(indices)
        print(f"{ref_path.name}: {done}/{len(pairs)} pairs", file=sys.stderr, flush=True)

    high, low = scores["fp32"], scores[args.compare]
    mos = [m for _, _, m in pairs]
    diffs = [abs(a - b) for a, b in zip(high, low, strict=True)]
    spread = max(high) - min(high)
    summary = {
        "folder": str(args.folder),
        "weights": loaded.info.weights_id,
        "device": str(scorers["fp32"].device),
        "compare": args.compare,
        "pairs": len(pairs),
        "references": len(by_ref),
        "srocc_fp32_vs_low": float(srocc(high, low)) if len(pairs) > 2 else None,
        "plcc_fp32_vs_low": float(plcc(high, low)) if len(pairs) > 2 else None,
        "max_abs_diff": max(diffs),
        "mean_abs_diff": sum(diffs) / len(diffs),
        "fp32_range": spread,
        "max_diff_over_range": max(diffs) / spread if spread > 0 else None,
        "srocc_vs_mos": {p: float(srocc(scores[p], mos)) if len(pairs) > 2 else None for p in precisions},
        "seconds": seconds,
        "pairs_per_s": {p: len(pairs) / s for p, s in seconds.items()},
    }
    summary["srocc_ok"] = (
        summary["srocc_fp32_vs_low"] is not None and summary["srocc_fp32_vs_low"] >= SROCC_TARGET
    )
    summary["range_ok"] = (
        summary["max_diff_over_range"] is not None and summary["max_diff_over_range"] <= RANGE_SHARE_TARGET
    )
    if args.out:
        per_pair = [
            {"ref": str(r), "dist": str(d), "mos": m, **{p: scores[p][i] for p in precisions}}
            for i, (r, d, m) in enumerate(pairs)
        ]
        args.out.write_text(
            json.dumps({"summary": summary, "pairs": per_pair}, indent=2) + "\n", encoding="utf-8"
        )

    def fmt(value, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    print(
        f"{summary['pairs']} pairs, {summary['references']} references, weights {summary['weights']}, "
        f"{summary['device']}"
    )
    print(
        f"SROCC(fp32, {args.compare}) = {fmt(summary['srocc_fp32_vs_low'], '.6f')} "
        f"(target >= {SROCC_TARGET}: {'met' if summary['srocc_ok'] else 'NOT met'})"
    )
    print(
        f"max |diff| = {summary['max_abs_diff']:.3e} = {fmt(summary['max_diff_over_range'], '.3%')} "
        f"of the fp32 range {spread:.4g} "
        f"(target <= {RANGE_SHARE_TARGET:.0%}: {'met' if summary['range_ok'] else 'NOT met'}); "
        f"mean |diff| {summary['mean_abs_diff']:.3e}"
    )
    print("SROCC with MOS: " + ", ".join(f"{p} {fmt(v, '.4f')}" for p, v in summary["srocc_vs_mos"].items()))
    print("pairs/s: " + ", ".join(f"{p} {v:.2f}" for p, v in summary["pairs_per_s"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
