"""How fast RADN could possibly score a pair on this machine: the convolution floor.

Nearly all of RADN's arithmetic is 3x3 convolutions (1.45 GFLOP per 32x32 patch per branch). This
script times every convolution of one pair on its own, with ``torch.nn.functional.conv2d`` on random
data of the layer's exact shape (N patches), in both memory layouts (channels-last and contiguous),
and keeps the faster. The sum over both branches is the **floor**: the time a pair would take if
everything except the convolutions were free and each convolution ran at the best rate this
machine's kernel library reaches for its shape. The deformable convolutions count as 3x3
convolutions of the same shape (the same FLOPs; their sampling is left out, so the floor stays a
lower bound).

In the same run it times the baseline (``baseline.ReferenceStyleRADN``) and ``radn_cli``'s Scorer on
a pair of N patches, and reports:

- the largest speed-up over the baseline that any implementation doing the same arithmetic could
  reach (baseline time / floor), per precision;
- the speed-up reached (baseline / ours) and how close ours is to the floor (floor / ours).

    python benchmarks/bench_conv_floor.py --markdown            # 288x288 pair (81 patches), fp32, bf16
    python benchmarks/bench_conv_floor.py --patches 192 --out floor.json

CPU only (the question it answers is whether a CPU target is reachable at all).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baseline  # noqa: E402

from radn_cli.devices import keep_freed_memory  # noqa: E402
from radn_cli.scoring import Scorer  # noqa: E402
from radn_cli.weights import load_weights  # noqa: E402

# (name, in channels, out channels, input side, stride, runs per pair): one RADN branch, plus the
# offsets (reference only). The deformable convolutions: same FLOPs as a 3x3 convolution.
LAYERS = (
    [("conv1", 3, 64, 32, 1, 2)]
    + [(f"conv{k}", 64, 64, 32, 1, 2) for k in (2, 3, 4)]
    + [("conv5", 64, 128, 32, 2, 2)]
    + [(f"conv{k}", 128, 128, 16, 1, 2) for k in (6, 7, 8)]
    + [("conv9", 128, 256, 16, 2, 2)]
    + [(f"conv{k}", 256, 256, 8, 1, 2) for k in range(10, 17)]
    + [("conv_offset", 256, 18, 8, 1, 1), ("deform, deform2", 256, 256, 8, 1, 2)]
    + [("conv17", 256, 512, 8, 2, 2)]
    + [(f"conv{k}", 512, 512, 4, 1, 2) for k in (18, 19, 20)]
    + [("conv21", 512, 512, 4, 2, 2), ("conv22", 512, 512, 2, 1, 2)]
)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def median_time(run, repeat: int) -> float:
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_layer(patches: int, cin: int, cout: int, side: int, stride: int, dtype, repeat: int) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(patches, cin, side, side, generator=g).to(dtype)
    w = (torch.randn(cout, cin, 3, 3, generator=g) / (9 * cin) ** 0.5).to(dtype)
    b = torch.zeros(cout, dtype=dtype)
    best = {}
    with torch.inference_mode():
        for layout in (torch.channels_last, torch.contiguous_format):
            xl, wl = x.contiguous(memory_format=layout), w.contiguous(memory_format=layout)
            best[str(layout).split(".")[-1]] = median_time(
                lambda xl=xl, wl=wl: F.conv2d(xl, wl, b, stride=stride, padding=1), repeat
            )
    layout = min(best, key=best.get)
    out_side = side // stride
    flop = 2 * patches * cin * cout * 9 * out_side * out_side
    return {"seconds": best[layout], "layout": layout, "all_layouts": best, "flop": flop}


def measure(args) -> dict:
    side = int(round(args.patches**0.5))
    rows, cols = side, -(-args.patches // side)
    height, width = 32 * rows, 32 * cols
    report = {"patches": rows * cols, "image": f"{width}x{height}", "threads": torch.get_num_threads()}
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(3, height, width, generator=g)
    dist = (ref + 0.05 * torch.randn(3, height, width, generator=g)).clamp(0, 1)
    with tempfile.TemporaryDirectory(prefix="radn-floor-") as tmp:
        loaded = load_weights(baseline.write_seeded_weights(Path(tmp) / "seeded.safetensors"))
    base = baseline.ReferenceStyleRADN(loaded.model).eval()
    report["baseline_s"] = median_time(lambda: base.score_pair(ref, dist), args.repeat)
    report["precisions"] = list(args.precisions)
    for name in args.precisions:
        dtype = PRECISIONS[name]
        layers = []
        for layer, cin, cout, side_in, stride, runs in LAYERS:
            timing = time_layer(rows * cols, cin, cout, side_in, stride, dtype, args.repeat)
            layers.append({"layer": layer, "runs_per_pair": runs, **timing})
        floor = sum(entry["seconds"] * entry["runs_per_pair"] for entry in layers)
        flop = sum(entry["flop"] * entry["runs_per_pair"] for entry in layers)
        scorer = Scorer(loaded, device="cpu", precision=name)
        ours = median_time(lambda scorer=scorer: scorer.score_pair(ref, dist), args.repeat)
        report[name] = {
            "layers": layers,
            "floor_s": floor,
            "conv_flop_per_pair": flop,
            "floor_gflops": flop / floor / 1e9,
            "ours_s": ours,
            "max_x_baseline": report["baseline_s"] / floor,
            "ours_x_baseline": report["baseline_s"] / ours,
            "ours_of_floor": floor / ours,
        }
    return report


def markdown(report: dict) -> str:
    lines = [
        f"{report['image']} pair ({report['patches']} patches), {report['threads']} threads; baseline "
        f"{report['baseline_s']:.3f} s per pair (fp32).",
        "",
        "| precision | conv GFLOP/pair | floor s | floor GFLOP/s | max x baseline | ours s | ours x baseline "
        "| ours at floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in report["precisions"]:
        r = report[name]
        lines.append(
            f"| {name} | {r['conv_flop_per_pair'] / 1e9:.1f} | {r['floor_s']:.3f} | {r['floor_gflops']:.0f} "
            f"| {r['max_x_baseline']:.2f} | {r['ours_s']:.3f} | {r['ours_x_baseline']:.2f} "
            f"| {100 * r['ours_of_floor']:.0f}% |"
        )
    names = report["precisions"]
    header = "| layer | x per pair | " + " | ".join(f"{n} ms | {n} GFLOP/s" for n in names)
    lines += ["", f"{header} | layouts ({', '.join(names)}) |"]
    lines.append("|---|---:|" + "---:|---:|" * len(names) + "---|")
    for index, layer in enumerate(report[names[0]]["layers"]):
        cells = [report[n]["layers"][index] for n in names]
        timings = " | ".join(
            f"{1e3 * c['seconds']:.2f} | {c['flop'] / c['seconds'] / 1e9:.0f}" for c in cells
        )
        layouts = ", ".join(c["layout"] for c in cells)
        lines.append(f"| {layer['layer']} | {layer['runs_per_pair']} | {timings} | {layouts} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patches", type=int, default=81, help="patches per image (default 81: 288x288)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables on stdout")
    parser.add_argument(
        "--precisions",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=list(PRECISIONS),
        help="comma-separated, of fp32,bf16 (default both; fp32 alone on a CPU without bf16 kernels)",
    )
    args = parser.parse_args(argv)
    unknown = [p for p in args.precisions if p not in PRECISIONS]
    if unknown or not args.precisions:
        parser.error(f"--precisions: use fp32 and/or bf16, not {', '.join(unknown) or 'nothing'}")
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the CLI and bench_scoring.py do
    report = measure(args)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        print(markdown(report))
    else:
        for name in report["precisions"]:
            r = report[name]
            print(
                f"{name}: floor {r['floor_s']:.3f} s (max {r['max_x_baseline']:.2f}x baseline), "
                f"ours {r['ours_s']:.3f} s ({r['ours_x_baseline']:.2f}x, "
                f"{100 * r['ours_of_floor']:.0f}% of floor)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
