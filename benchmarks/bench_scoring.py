"""Scoring speed and memory of radn against a reference-style baseline, in one process.

For every case (an image size, or a set of pairs) and precision this measures pairs per second of
``radn_cli.scoring.Scorer`` and, in the same process on the same weights and the same images, of
``baseline.ReferenceStyleRADN`` (the authors' test-time control flow: per-image loop, fp32, both
branches for every pair, all patches in one forward). Ratios are ours / baseline.

Cases (``--cases``, comma-separated):
  288        one 288x288 pair (81 patches)               512x384  one 512x384 pair (192 patches)
  1080p      one 1920x1080 pair (1,980 patches)          8k       one 7680x4320 pair (32,400 patches)
  WxH or N   one pair of that size (for smoke runs: 64x64, 96)
  pipal      1 reference, --pipal-count distorted images (default 116, 288x288): ours with reference
             reuse (encode_reference once, score per image), ours without reuse (score_pair per image),
             and the baseline
  png        --png-count pairs of 288x288 PNG files, each with its own reference, scored end to end
             (decode, score, CSV) through radn_cli.batch.run_batch; ours only

Pair images are crops/tilings of examples/ref.png and examples/dist.png; the PIPAL-shaped and PNG
sets use the KADID-10k distortions of radn_cli.train.distortions (type 15 left out: slow to make).
Weights: the test suite's seeded weights (tests/golden/seeded.py) unless --weights is given; speed
does not depend on training, low-precision agreement does.

Timing: one warm-up (for large images a crop with the same chunk shapes) excluded, then the median
of ``--repeat`` runs (``--repeat-large`` for sets and images over 1,024 patches). CUDA is
synchronised around every timed run.

Peak memory. CPU: the peak RSS of a fresh subprocess per (case, implementation, precision) that
builds the images, loads the weights and runs the workload once, so that cases do not pollute each
other (a set case scores its first 4 pairs there: the peak does not grow with the number of pairs).
The peak is VmHWM from /proc/self/status; ``getrusage(RUSAGE_SELF).ru_maxrss`` is recorded too but
on Linux it carries the parent's high-water mark across fork/exec (see ``rss_peak_mib``). Reported
with the peak reached before scoring (set-up: interpreter, torch, weights, images). GPU: torch's
peak of allocated memory over the timed runs (``max_memory_allocated``, reset first), in process.

Usage (see benchmarks/README.md):
  python benchmarks/bench_scoring.py --device cpu --markdown --out results-cpu.json
  python benchmarks/bench_scoring.py --device cuda --precisions fp32,bf16,fp16 --markdown
  python benchmarks/bench_scoring.py --cases 64x64,pipal --pipal-count 3 --repeat 1 --markdown  # smoke
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import baseline  # noqa: E402  (puts the repository root and tests/ on sys.path)
import torch  # noqa: E402

from radn_cli.devices import PRECISIONS, default_batch_size, keep_freed_memory  # noqa: E402
from radn_cli.scoring import Scorer  # noqa: E402
from radn_cli.tiling import PATCH, grid_shape  # noqa: E402
from radn_cli.weights import LoadedWeights, load_weights  # noqa: E402

ROOT = baseline.ROOT
NAMED_PAIRS = {"288": (288, 288), "512x384": (512, 384), "1080p": (1920, 1080), "8k": (7680, 4320)}
DEFAULT_CASES = "288,512x384,pipal,1080p,8k"
LARGE_PATCHES = 1024  # images with more patches than this are timed --repeat-large times
BASELINES = ("baseline", "reference-code")  # fp32, one pair after another, both branches every time
PROBED = ("baseline", "reference-code", "ours")  # implementations whose CPU peak RSS is measured
PROBE_SET_COUNT = 4  # a set case's memory probe scores this many pairs: the peak does not grow with the count
SCORE_TOLERANCE_FP32 = 1e-5  # batch-size independence
BASELINE_TOLERANCE = 1e-4  # ours fp32 vs the reference-style baseline


# ---- cases and images -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "pair", "set" (one reference, many distorted) or "png" (files, end to end)
    width: int
    height: int
    count: int = 1  # pairs scored per run

    @property
    def patches(self) -> int:
        rows, cols = grid_shape(self.height, self.width)
        return rows * cols

    @property
    def large(self) -> bool:
        return self.kind != "pair" or self.patches > LARGE_PATCHES


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use WxH or N)")
    width = int(match.group(1))
    return width, int(match.group(2) or width)


def parse_case(spec: str, args: argparse.Namespace) -> Case:
    spec = spec.strip().lower()
    if spec == "pipal":
        return Case("pipal", "set", *args.pipal_size, count=args.pipal_count)
    if spec == "png":
        return Case("png", "png", *args.png_size, count=args.png_count)
    width, height = NAMED_PAIRS.get(spec) or _size(spec)
    if width < PATCH or height < PATCH:
        raise argparse.ArgumentTypeError(f"case {spec!r} is smaller than one {PATCH}x{PATCH} patch")
    return Case(spec, "pair", width, height)


def example_images() -> tuple[torch.Tensor, torch.Tensor]:
    from radn_cli.images import load_image

    return (
        load_image(ROOT / "examples" / "ref.png").tensor,
        load_image(ROOT / "examples" / "dist.png").tensor,
    )


def tiled(source: torch.Tensor, width: int, height: int, left: int = 0, top: int = 0) -> torch.Tensor:
    """[3, height, width] filled by repeating source (shifted by left, top), without a larger temporary."""
    src_h, src_w = source.shape[1:]
    out = torch.empty(3, height, width, dtype=source.dtype)
    y = 0
    while y < height:
        sy = (top + y) % src_h
        h = min(src_h - sy, height - y)
        x = 0
        while x < width:
            sx = (left + x) % src_w
            w = min(src_w - sx, width - x)
            out[:, y : y + h, x : x + w] = source[:, sy : sy + h, sx : sx + w]
            x += w
        y += h
    return out


SLOW_DISTORTIONS = (15,)  # type 15 (denoising) takes seconds per image to make; left out to keep set-up short


def distortion_plan(count: int) -> list[tuple[int, int]]:
    """(KADID type, level 1..5) for each of count images, in order, cycling after 120 (type 15 left out)."""
    combos = [(kind, level) for kind in range(1, 26) if kind not in SLOW_DISTORTIONS for level in range(1, 6)]
    return [combos[i % len(combos)] for i in range(count)]


def distorted_versions(ref: torch.Tensor, count: int, seed: int = 0) -> list[torch.Tensor]:
    from radn_cli.train.distortions import distort

    generator = torch.Generator().manual_seed(seed)
    return [distort(ref, kind, level, generator=generator) for kind, level in distortion_plan(count)]


def build_inputs(case: Case, workdir: Path) -> dict:
    """Images (CPU tensors) or files for a case; deterministic."""
    ref_src, dist_src = example_images()
    if case.kind == "pair":
        return {
            "ref": tiled(ref_src, case.width, case.height),
            "dist": tiled(dist_src, case.width, case.height),
        }
    if case.kind == "set":
        ref = tiled(ref_src, case.width, case.height)
        return {"ref": ref, "dists": distorted_versions(ref, case.count)}
    return {"pairs": write_png_pairs(case, workdir / f"png-{case.width}x{case.height}", ref_src)}


def write_png_pairs(case: Case, folder: Path, source: torch.Tensor) -> list:
    """case.count pairs of PNG files, each with its own reference (a different crop of the source)."""
    from PIL import Image

    from radn_cli.pairing import Pair
    from radn_cli.train.distortions import distort

    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(1)

    def save(image: torch.Tensor, path: Path) -> Path:
        pixels = image.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        Image.fromarray(pixels).save(path, compress_level=1)
        return path

    pairs = []
    for index, (kind, level) in enumerate(distortion_plan(case.count)):
        ref = tiled(source, case.width, case.height, left=37 * index, top=23 * index)
        dist = distort(ref, kind, level, generator=generator)
        pairs.append(
            Pair(save(ref, folder / f"ref{index:04d}.png"), save(dist, folder / f"dist{index:04d}.png"))
        )
    return pairs


def warm_crop(image: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Top rows of an image holding at least batch_size + 1 patches: the same full-chunk shapes, less work."""
    rows, cols = grid_shape(*image.shape[1:])
    need = min(rows, math.ceil((batch_size + 1) / cols))
    return image[:, : need * PATCH, :]


# ---- workloads ------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batched_pairs(scorer: Scorer, refs: torch.Tensor, dists: torch.Tensor) -> list[float]:
    """K same-size pairs [K, 3, H, W], each with its own reference, through ``Scorer.score_many``:
    their patches share forward passes of batch_size, as ``radn batch`` groups them on a GPU."""
    encodings = scorer.encode_references(list(refs))
    return [result.score for result in scorer.score_many(list(zip(encodings, dists)))]


def make_workload(impl: str, case: Case, inputs: dict, scorer: Scorer | None, base, args, workdir: Path):
    """A function running one timed unit of work and returning its scores, and its warm-up function."""
    if case.kind == "pair":
        ref, dist = inputs["ref"], inputs["dist"]
        small_ref = warm_crop(ref, args.batch_size) if case.large else ref
        small_dist = warm_crop(dist, args.batch_size) if case.large else dist
        if impl in BASELINES:
            runner = base[impl]
            return (lambda: [runner.score_pair(ref, dist)]), (
                lambda: runner.score_pair(small_ref, small_dist)
            )
        if impl == "ours":
            return (lambda: [scorer.score_pair(ref, dist).score]), (
                lambda: scorer.score_pair(small_ref, small_dist)
            )
        if impl == "ours-batched":
            refs = ref.unsqueeze(0).expand(args.pair_batch, -1, -1, -1)
            dists = dist.unsqueeze(0).expand(args.pair_batch, -1, -1, -1)
            return (lambda: batched_pairs(scorer, refs, dists)), (lambda: batched_pairs(scorer, refs, dists))
    if case.kind == "set":
        ref, dists = inputs["ref"], inputs["dists"]
        if impl in BASELINES:
            runner = base[impl]
            return (lambda: [runner.score_pair(ref, d) for d in dists]), (
                lambda: runner.score_pair(ref, dists[0])
            )
        if impl == "ours":

            def reuse() -> list[float]:
                encoding = scorer.encode_reference(ref)
                return [scorer.score(encoding, d).score for d in dists]

            return reuse, (lambda: scorer.score_pair(ref, dists[0]))
        if impl == "ours-no-reuse":
            return (lambda: [scorer.score_pair(ref, d).score for d in dists]), (
                lambda: scorer.score_pair(ref, dists[0])
            )
    if case.kind == "png" and impl == "ours":
        pairs = inputs["pairs"]
        counter = iter(range(10**9))

        def run_files(subset) -> list[float]:
            from radn_cli.batch import run_batch

            out = workdir / f"png-{scorer.precision}-{next(counter)}.csv"
            summary = run_batch(scorer, subset, out, workers=args.png_workers)
            if summary.failed:
                raise RuntimeError(f"{summary.failed} PNG pairs failed; see {out}")
            with open(out, newline="", encoding="utf-8") as handle:
                rows = {(r["ref"], r["dist"]): float(r["score"]) for r in csv.DictReader(handle)}
            return [rows[(str(p.ref), str(p.dist))] for p in subset]

        return (lambda: run_files(pairs)), (lambda: run_files(pairs[:2]))
    raise ValueError(f"no workload {impl!r} for case {case.name!r}")


def make_baselines(model, args) -> dict:
    """The runners of the baseline rows: the re-implementation, and the authors' code when given."""
    runners = {"baseline": baseline.ReferenceStyleRADN(model).eval()}
    if args.reference_code:
        runners["reference-code"] = baseline.AuthorsRADN(args.reference_code, model, args.device)
    return runners


def implementations(case: Case, args) -> list[tuple[str, str]]:
    """(implementation, precision) rows of a case, in order."""
    rows = []
    if case.kind != "png":
        rows.append(("baseline", "fp32"))
        if args.reference_code:
            rows.append(("reference-code", "fp32"))
    for precision in args.precisions:
        rows.append(("ours", precision))
        if case.kind == "set":
            rows.append(("ours-no-reuse", precision))
        if case.kind == "pair" and args.pair_batch > 1 and not case.large:
            rows.append(("ours-batched", precision))
    return rows


def baseline_skip_reason(case: Case, args) -> str | None:
    if case.patches > args.baseline_max_patches:
        return (
            f"{case.patches} patches per image > --baseline-max-patches {args.baseline_max_patches}: the "
            f"reference-style forward runs all patches at once (N x N attention matrix "
            f"{case.patches**2 * 4 / 2**30:.1f} GiB, activations ~{case.patches * 0.25:.0f} MiB per layer)"
        )
    return None


# ---- measuring ------------------------------------------------------------------------------------


def measure(run, warm, device: torch.device, repeat: int) -> dict:
    warm()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, scores = [], []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        scores = run()
        sync(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    row = {"seconds": times, "median_s": median, "pairs_per_s": len(scores) / median, "scores": scores}
    if device.type == "cuda":
        row["gpu_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        row["gpu_peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
    return row


def rss_now_mib() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def ru_maxrss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def rss_peak_mib() -> float:
    """Peak RSS of this process: VmHWM on Linux, else ru_maxrss.

    On Linux ``ru_maxrss`` is carried across ``execve`` (the kernel folds the pre-exec image's high-water
    mark into it), so a subprocess started from a large parent reports at least the parent's RSS
    (measured here: 1.1 GiB for a probe whose own peak was 0.85 GiB). VmHWM belongs to the new address
    space only.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    return ru_maxrss_mib()


def probe_memory(args) -> None:
    """Subprocess entry: build one case, run one workload once, print its peak RSS as JSON."""
    impl, precision = args.probe.split(":")
    case = parse_case(args.cases[0], args)
    with tempfile.TemporaryDirectory(prefix="radn-bench-probe-") as tmp:
        inputs = build_inputs(case, Path(tmp))
        loaded = load_weights(args.weights)
        scorer = Scorer(loaded, device="cpu", precision=precision, batch_size=args.batch_size)
        base = make_baselines(scorer.model, args) if impl in BASELINES else None
        run, _ = make_workload(impl, case, inputs, scorer, base, args, Path(tmp))
        setup_peak, before = rss_peak_mib(), rss_now_mib()
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "rss_setup_peak_mib": setup_peak,
                    "rss_before_mib": before,
                    "rss_peak_mib": rss_peak_mib(),
                    "ru_maxrss_mib": ru_maxrss_mib(),
                    "seconds": seconds,
                }
            )
        )


def run_probe(case_spec: str, impl: str, precision: str, weights: Path, args) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--probe",
        f"{impl}:{precision}",
        "--cases",
        case_spec,
        "--weights",
        str(weights),
        "--batch-size",
        str(args.batch_size),
        "--pipal-count",
        str(min(args.pipal_count, PROBE_SET_COUNT)),
        "--pipal-size",
        "x".join(map(str, args.pipal_size)),
        "--png-count",
        str(args.png_count),
        "--png-size",
        "x".join(map(str, args.png_size)),
        "--png-workers",
        str(args.png_workers),
        "--pair-batch",
        str(args.pair_batch),
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.default_allocator:
        command += ["--default-allocator"]
    if args.reference_code:
        command += ["--reference-code", str(args.reference_code)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"probe exited {done.returncode}: {tail[0]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def batch_size_check(
    case: Case, inputs: dict, loaded: LoadedWeights, device: str, fp32_score: float | None, args
) -> dict:
    sizes = [args.batch_size, args.check_batch_size]
    scores = []
    for size in sizes:
        if size == args.batch_size and fp32_score is not None:
            scores.append(fp32_score)
            continue
        scorer = Scorer(loaded, device=device, precision="fp32", batch_size=size)
        scores.append(scorer.score_pair(inputs["ref"], inputs["dist"]).score)
    diff = abs(scores[0] - scores[1])
    return {"batch_sizes": sizes, "scores": scores, "abs_diff": diff, "ok": diff <= SCORE_TOLERANCE_FP32}


def run_case(
    case_spec: str, loaded: LoadedWeights, base: dict, weights_path: Path, args, workdir: Path
) -> dict:
    case = parse_case(case_spec, args)
    device = torch.device(args.device)
    say(
        f"[{case.name}] building inputs ({case.kind}, {case.width}x{case.height}, {case.count} pair(s), "
        f"{case.patches} patches per image)"
    )
    inputs = build_inputs(case, workdir)
    scorers = {
        p: Scorer(loaded, device=args.device, precision=p, batch_size=args.batch_size)
        for p in args.precisions
    }
    repeat = args.repeat_large if case.large else args.repeat
    result: dict = {
        "case": case.name,
        "kind": case.kind,
        "width": case.width,
        "height": case.height,
        "patches_per_image": case.patches,
        "pairs": case.count,
        "repeat": repeat,
        "rows": [],
    }
    skip = baseline_skip_reason(case, args)
    for impl, precision in implementations(case, args):
        row = {"impl": impl, "precision": precision}
        if impl in BASELINES and skip:
            row["skipped"] = skip
            say(f"[{case.name}] baseline skipped: {skip}")
        else:
            run, warm = make_workload(impl, case, inputs, scorers.get(precision), base, args, workdir)
            row.update(measure(run, warm, device, repeat))
            say(
                f"[{case.name}] {impl:14s} {precision}: {row['pairs_per_s']:9.3f} pairs/s "
                f"(median of {repeat}: {row['median_s']:.3f} s)"
            )
            if device.type == "cpu" and not args.no_memory:
                probe = run_probe(case_spec, impl, precision, weights_path, args) if impl in PROBED else {}
                if probe:
                    row["cpu_memory"] = probe
                    if "rss_peak_mib" in probe:
                        say(
                            f"[{case.name}] {impl:14s} {precision}: peak RSS {probe['rss_peak_mib']:.0f} MiB "
                            f"(setup {probe['rss_setup_peak_mib']:.0f} MiB)"
                        )
                    else:
                        say(f"[{case.name}] memory probe failed: {probe['error']}")
        result["rows"].append(row)
    derive(result)
    if case.kind == "pair" and case.name in args.batch_check:
        fp32 = next((r for r in result["rows"] if r["impl"] == "ours" and r["precision"] == "fp32"), None)
        result["batch_size_check"] = batch_size_check(
            case, inputs, loaded, args.device, fp32["scores"][0] if fp32 else None, args
        )
        say(f"[{case.name}] batch-size check: {result['batch_size_check']}")
    return result


def derive(result: dict) -> None:
    """Ratios vs the baseline and vs no reuse, bf16/fp16 agreement with fp32, baseline agreement."""
    rows = result["rows"]
    find = {(r["impl"], r["precision"]): r for r in rows if "pairs_per_s" in r}
    base = find.get(("baseline", "fp32"))
    authors = find.get(("reference-code", "fp32"))
    for row in rows:
        if "pairs_per_s" not in row:
            continue
        if base is not None and row is not base:
            row["x_baseline"] = row["pairs_per_s"] / base["pairs_per_s"]
        if authors is not None and row is not authors:
            row["x_reference_code"] = row["pairs_per_s"] / authors["pairs_per_s"]
        no_reuse = find.get(("ours-no-reuse", row["precision"]))
        if row["impl"] == "ours" and no_reuse is not None:
            row["x_no_reuse"] = row["pairs_per_s"] / no_reuse["pairs_per_s"]
        fp32 = find.get((row["impl"], "fp32"))
        if row["precision"] != "fp32" and fp32 is not None:
            a, b = fp32["scores"], row["scores"]
            diffs = [abs(x - y) for x, y in zip(a, b, strict=True)]
            row["max_abs_diff_vs_fp32"] = max(diffs)
            spread = max(a) - min(a)
            if len(a) > 2 and spread > 0:
                from radn_cli.evaluation.stats import srocc

                row["max_diff_over_fp32_range"] = max(diffs) / spread
                row["srocc_vs_fp32"] = float(srocc(a, b))
    ours = find.get(("ours", "fp32"))
    for key, other in (("baseline_agreement", base), ("reference_code_agreement", authors)):
        if other is not None and ours is not None:
            diff = max(abs(x - y) for x, y in zip(ours["scores"], other["scores"], strict=True))
            result[key] = {
                "max_abs_diff": diff,
                "tolerance": BASELINE_TOLERANCE,
                "ok": diff <= BASELINE_TOLERANCE,
            }


# ---- targets and reporting ------------------------------------------------------------------------


def targets(results: list[dict], device: str, trained: bool) -> list[dict]:
    """The issue's numeric targets that this run measured, with pass/fail.

    bf16/fp16 agreement relative to the fp32 score range is left out with the seeded weights (their
    scores hardly vary between distortions); benchmarks/bench_bf16_agreement.py measures it on TID2013.
    """
    out = []

    def row(case: str, impl: str, precision: str) -> dict | None:
        for result in results:
            if result["case"] == case:
                for r in result["rows"]:
                    if r["impl"] == impl and r["precision"] == precision and "pairs_per_s" in r:
                        return r
        return None

    def add(name: str, value: float | None, goal: float, higher: bool = True, unit: str = "") -> None:
        if value is not None:
            ok = value >= goal if higher else value <= goal
            out.append(
                {"target": name, "value": value, "goal": f"{'>=' if higher else '<='} {goal}{unit}", "ok": ok}
            )

    if device == "cpu":
        for precision, goal in (("fp32", 2.0), ("bf16", 3.0)):
            r = row("288", "ours", precision)
            add(f"CPU 288x288 {precision} x baseline", r and r.get("x_baseline"), goal)
            add(f"CPU 288x288 {precision} x reference code", r and r.get("x_reference_code"), goal)
        for precision in ("fp32", "bf16"):
            r = row("8k", "ours", precision)
            mem = r and r.get("cpu_memory", {}).get("rss_peak_mib")
            add(f"CPU 8K {precision} peak RSS (GiB)", mem and mem / 1024, 3.0, higher=False)
    else:
        r = row("288", "ours", "bf16")
        add("GPU 288x288 bf16 pairs/s (Scorer, one pair at a time)", r and r["pairs_per_s"], 1000)
        r = row("288", "ours-batched", "bf16")
        add("GPU 288x288 bf16 pairs/s (Scorer.score_many, pairs batched)", r and r["pairs_per_s"], 1000)
        r = row("png", "ours", "bf16")
        add("GPU 288x288 bf16 pairs/s end to end from PNG", r and r["pairs_per_s"], 600)
        for precision in ("fp32", "bf16", "fp16"):
            r = row("8k", "ours", precision)
            mem = r and r.get("gpu_peak_allocated_mib")
            add(f"GPU 8K {precision} peak allocated (GiB)", mem and mem / 1024, 6.0, higher=False)
    for precision in ("bf16", "fp16"):
        r = row("pipal", "ours", precision)
        if trained and r and "srocc_vs_fp32" in r:
            add(f"PIPAL-shaped set {precision}: SROCC vs fp32", r["srocc_vs_fp32"], 0.999)
            add(
                f"PIPAL-shaped set {precision}: max |diff| / fp32 range",
                r["max_diff_over_fp32_range"],
                0.01,
                higher=False,
            )
    for precision in ("fp32", "bf16", "fp16"):
        r = row("pipal", "ours", precision)
        add(f"PIPAL-shaped set {precision}: reuse x no reuse", r and r.get("x_no_reuse"), 1.8)
    for result in results:
        check = result.get("batch_size_check")
        if check:
            add(
                f"{result['case']} fp32 |score(batch {check['batch_sizes'][0]}) - score(batch "
                f"{check['batch_sizes'][1]})|",
                check["abs_diff"],
                SCORE_TOLERANCE_FP32,
                higher=False,
            )
        for key, name in (("baseline_agreement", "baseline"), ("reference_code_agreement", "reference code")):
            agreement = result.get(key)
            if agreement:
                add(
                    f"{result['case']} fp32 |ours - {name}|",
                    agreement["max_abs_diff"],
                    BASELINE_TOLERANCE,
                    higher=False,
                )
    return out


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and (value != 0 and (abs(value) < 10**-digits or abs(value) >= 1e6)):
        return f"{value:.2e}"
    return f"{value:,.{digits}f}"


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        f"Device: {env['device_name']} ({report['device']}), torch {env['torch']}, "
        f"torchvision {env['torchvision']}, "
        f"{env['threads']} threads, batch size {report['batch_size']}, commit {env['commit']}, "
        f"{env['date']}, "
        f"weights {report['weights']}" + (" (seeded, untrained)" if report["seeded_weights"] else ""),
        "",
        "| case | patches/image | pairs/run | implementation | precision | pairs/s | x baseline "
        "| x reference code | x no reuse | peak memory | max abs diff vs fp32 |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for result in report["results"]:
        for row in result["rows"]:
            pairs = result["pairs"] if row["impl"] != "ours-batched" else report["pair_batch"]
            head = (
                f"| {result['case']} | {result['patches_per_image']:,} | {pairs} "
                f"| {row['impl']} | {row['precision']} "
            )
            if "skipped" in row:
                lines.append(head + "| skipped | | | | | |")
                notes.append(f"{result['case']} {row['impl']} skipped: {row['skipped']}")
                continue
            if "gpu_peak_allocated_mib" in row:
                memory = f"{row['gpu_peak_allocated_mib']:,.0f} MiB GPU"
            elif "rss_peak_mib" in row.get("cpu_memory", {}):
                memory = f"{row['cpu_memory']['rss_peak_mib']:,.0f} MiB RSS"
            else:
                memory = ""
            diff = row.get("max_abs_diff_vs_fp32")
            if diff is not None and "max_diff_over_fp32_range" in row and not report["seeded_weights"]:
                diff_text = f"{_fmt(diff)} ({100 * row['max_diff_over_fp32_range']:.2f}% of range)"
            else:
                diff_text = _fmt(diff)
            lines.append(
                head + f"| {_fmt(row['pairs_per_s'])} | {_fmt(row.get('x_baseline'))} "
                f"| {_fmt(row.get('x_reference_code'))} | {_fmt(row.get('x_no_reuse'))} | {memory} "
                f"| {diff_text} |"
            )
    if report.get("targets"):
        lines += ["", "| target | measured | goal | met |", "|---|---:|---|---|"]
        for t in report["targets"]:
            lines.append(
                f"| {t['target']} | {_fmt(t['value'], 4)} | {t['goal']} | {'yes' if t['ok'] else 'NO'} |"
            )
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def environment(device: str) -> dict:
    import torchvision

    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as handle:
                name = next(
                    (line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), name
                )
        except OSError:
            pass
        name = f"{name}, {os.cpu_count()} logical CPUs"
    try:
        commit = (
            subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "device_name": name,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "commit": commit,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- command line ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument(
        "--cases",
        default=None,
        help=f"comma-separated: 288, 512x384, pipal, 1080p, 8k, png, WxH (default {DEFAULT_CASES}; "
        "with png added on cuda)",
    )
    parser.add_argument(
        "--precisions",
        default=None,
        help="comma-separated (default fp32,bf16 on cpu; fp32,bf16,fp16 on cuda)",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="timed runs per small pair (default 5 cpu, 20 cuda)"
    )
    parser.add_argument(
        "--repeat-large",
        type=int,
        default=None,
        help="timed runs for sets and images over 1,024 patches (default 1 cpu, 3 cuda)",
    )
    parser.add_argument("--pipal-count", type=int, default=116, help="distorted images in the pipal set")
    parser.add_argument(
        "--pipal-size", type=_size, default=(288, 288), help="WxH of the pipal set (default 288x288)"
    )
    parser.add_argument("--png-count", type=int, default=64, help="pairs in the png case")
    parser.add_argument(
        "--png-size", type=_size, default=(288, 288), help="WxH of the png case (default 288x288)"
    )
    parser.add_argument(
        "--png-workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="decoding threads of run_batch in the png case",
    )
    parser.add_argument(
        "--pair-batch",
        type=int,
        default=None,
        help="also time K copies of a small pair scored together by Scorer.score_many "
        "(default 0 on cpu = off, 64 on cuda)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="Scorer batch size (patches per chunk; default the Scorer's: 256 on cpu, 2048 on cuda)",
    )
    parser.add_argument(
        "--check-batch-size",
        type=int,
        default=100,
        help="second batch size of the batch-size independence check",
    )
    parser.add_argument(
        "--batch-check",
        default="8k",
        help="comma-separated pair cases that get the batch-size check (default 8k)",
    )
    parser.add_argument(
        "--baseline-max-patches",
        type=int,
        default=4096,
        help="skip the baseline for images with more patches (default 4096: 8K is skipped)",
    )
    parser.add_argument(
        "--reference-code",
        type=Path,
        default=None,
        help="a checkout of the authors' code (IIGROUP/RADN at be1ae49; main.py and model/ are enough): "
        "adds a 'reference-code' row that runs their RADN.forward with the same weights",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the CPU peak-RSS subprocesses")
    parser.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc's malloc settings alone (by default the run calls "
        "radn_cli.devices.keep_freed_memory, as the CLI does)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write all results as JSON here")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table on stdout")
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="radn weights file (default: the test suite's seeded weights, written to a temp "
        "dir). Speed does not depend on it; bf16/fp16 agreement with fp32 does: with the "
        "seeded weights the scores hardly vary between distortions, so the agreement "
        "relative to the score range means something only with trained weights",
    )
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)  # internal: memory subprocess
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.cases = [
        c.strip() for c in (args.cases or DEFAULT_CASES + (",png" if cuda else "")).split(",") if c.strip()
    ]
    args.precisions = [
        p.strip() for p in (args.precisions or ("fp32,bf16,fp16" if cuda else "fp32,bf16")).split(",")
    ]
    for precision in args.precisions:
        if precision not in PRECISIONS:
            parser.error(f"unknown precision {precision!r}")
        if precision == "fp16" and not cuda:
            parser.error("fp16 is for CUDA devices")
    args.repeat = args.repeat or (20 if cuda else 5)
    args.repeat_large = args.repeat_large or (3 if cuda else 1)
    args.pair_batch = (64 if cuda else 0) if args.pair_batch is None else args.pair_batch
    args.batch_size = args.batch_size or default_batch_size(torch.device(args.device))
    args.batch_check = [c.strip().lower() for c in args.batch_check.split(",") if c.strip()]
    for spec in args.cases:
        try:
            parse_case(spec, args)
        except argparse.ArgumentTypeError as exc:
            parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.default_allocator:
        keep_freed_memory()  # as the CLI does; in this process it applies to every implementation alike
    if args.probe:
        probe_memory(args)
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        say("CUDA is not available here")
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="radn-bench-") as tmp:
        workdir = Path(tmp)
        weights_path = args.weights or baseline.write_seeded_weights(workdir / "seeded.safetensors")
        loaded = load_weights(weights_path)
        base = make_baselines(loaded.model, args)  # once: each keeps its own fp32 copy of the weights
        results = [run_case(spec, loaded, base, weights_path, args, workdir) for spec in args.cases]
    report = {
        "device": args.device,
        "batch_size": args.batch_size,
        "pair_batch": args.pair_batch,
        "weights": loaded.info.weights_id,
        "seeded_weights": args.weights is None,
        "allocator": "glibc default" if args.default_allocator else "keep_freed_memory",
        "reference_code": str(args.reference_code) if args.reference_code else None,
        "environment": environment(args.device),
        "cases": args.cases,
        "precisions": args.precisions,
        "results": results,
        "seconds_total": time.perf_counter() - started,
    }
    report["targets"] = targets(
        results, "cpu" if args.device == "cpu" else "cuda", trained=args.weights is not None
    )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        say(f"wrote {args.out}")
    if args.markdown:
        print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
