"""RADN against RADN-Lite in one run: scoring pairs/s on a 512x384 and a 1536x1024 pair, and training
images/s of RADN-Lite's two stages.

    python benchmarks/bench_architectures.py [--radn W1] [--lite W2] [--device cpu] [--repeats 3]

``--radn`` defaults to the shipped weights when they are RADN, else to a RADN with random weights;
``--lite`` to the shipped weights when they are RADN-Lite, else to a RADN-Lite with random heads (the
arithmetic, hence the speed, does not depend on the values; it does on the settings, e.g. ``texture``).
Both are timed with ``Scorer.score_pair`` (reference encoded and distorted image scored: one pair, as
``radn score`` does), fp32, after a warm-up, median of ``--repeats``; the ratio RADN time / RADN-Lite
time is the speed-up. Training: RADN-Lite's frozen-trunk stage (heads on stored statistics, batches of 8 photo
visits x 8 versions x 48 patches) and its end-to-end stage (trunk, deformable step and heads on whole
256x192 regions, 2 photos x 8 versions), images per second of a training step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radn_cli.devices import keep_freed_memory  # noqa: E402
from radn_cli.images import load_image  # noqa: E402
from radn_cli.models import RADN, RADNConfig  # noqa: E402
from radn_cli.models.lite import BRANCH_IN, RADNLite  # noqa: E402
from radn_cli.scoring import Scorer  # noqa: E402
from radn_cli.train import heads  # noqa: E402
from radn_cli.weights import LoadedWeights, load_weights, read_info, save_weights, shipped_weights_path  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples"


def pair(width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The example pair resized to width x height (antialiased)."""
    ref, dist = (load_image(EXAMPLE / name).tensor for name in ("ref.png", "dist.png"))
    resize = lambda x: F.interpolate(x[None], size=(height, width), mode="bilinear", antialias=True)[0]  # noqa: E731
    return resize(ref).clamp(0, 1), resize(dist).clamp(0, 1)


def time_pair(scorer: Scorer, ref, dist, repeats: int) -> float:
    scorer.score_pair(ref, dist)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        scorer.score_pair(ref, dist)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def weights_of(arch: str, path: str | None) -> LoadedWeights:
    """``path``, or the shipped weights when they are ``arch``, or ``arch`` with random weights."""
    if path:
        if read_info(path).config.arch != arch:
            sys.exit(f"{path} is not {arch} weights")
        return load_weights(path)
    if read_info(shipped_weights_path()).config.arch == arch:
        return load_weights(shipped_weights_path())
    tmp = Path(f"/tmp/bench_{arch}_random.safetensors")
    save_weights(RADNLite() if arch == "radn-lite" else RADN(RADNConfig()), tmp, name=f"{arch}-random")
    return load_weights(tmp)


def train_rates(config, repeats: int) -> dict:
    """Images per second of a RADN-Lite training step (``config``), frozen-trunk and end-to-end stage."""
    model = RADNLite(config).train()
    p, k, n = 8, 8, 48
    batch = heads.StatsBatch(
        torch.randn(p, n, BRANCH_IN),
        torch.randn(p, k, n, BRANCH_IN),
        torch.randn(p, k, n, config.compare_in),
        torch.rand(p, k) * 4 + 1,
        torch.full((p, k), 0.3),
        torch.randint(1, 26, (p, k, 2)),
    )
    optimizer = torch.optim.Adam([q for name, q in model.named_parameters() if not name.startswith("trunk.")])

    def heads_step():
        loss = heads.synthetic_loss(heads.forward(model, batch), batch, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    full = torch.optim.Adam(model.parameters())
    ref, dist = torch.rand(2, 3, 192, 256), torch.rand(2 * 8, 3, 192, 256)

    def e2e_step():
        out = model(dist, ref.repeat_interleave(8, 0))
        loss = out.score.square().mean()
        full.zero_grad()
        loss.backward()
        full.step()

    rates = {}
    for name, step, images in (("heads", heads_step, p * k), ("end_to_end", e2e_step, 16)):
        step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        rates[name] = round(images / statistics.median(times), 1)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radn", help="RADN weights (default: the shipped file if RADN, else random)")
    parser.add_argument(
        "--lite", help="RADN-Lite weights (default: the shipped file if RADN-Lite, else random)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-train", action="store_true")
    args = parser.parse_args()
    keep_freed_memory()
    loaded = {arch: weights_of(arch, path) for arch, path in (("radn", args.radn), ("radn-lite", args.lite))}
    scorers = {arch: Scorer(weights, device=args.device) for arch, weights in loaded.items()}
    result: dict = {
        "device": args.device,
        "threads": torch.get_num_threads(),
        "weights": {arch: weights.info.weights_id for arch, weights in loaded.items()},
        "scoring": {},
    }
    for width, height in ((512, 384), (1536, 1024)):
        ref, dist = pair(width, height)
        seconds = {name: time_pair(s, ref, dist, args.repeats) for name, s in scorers.items()}
        result["scoring"][f"{width}x{height}"] = {
            **{f"{name}_pairs_per_s": round(1 / t, 3) for name, t in seconds.items()},
            "speedup": round(seconds["radn"] / seconds["radn-lite"], 1),
        }
        print(json.dumps({f"{width}x{height}": result["scoring"][f"{width}x{height}"]}), flush=True)
    if not args.no_train:
        result["training_images_per_s"] = train_rates(loaded["radn-lite"].model.config, args.repeats)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
