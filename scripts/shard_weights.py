"""Split radn weights into float16 shards of bounded size, and merge shards back into one file.

    python scripts/shard_weights.py split WEIGHTS OUT_DIR [--max-mib 15]
    python scripts/shard_weights.py merge SHARD [SHARD ...] -o OUT.safetensors

What a lent GPU machine can hand back is limited to files of 16 MiB (device tool), so
scripts/gpu_train.sh returns its weights as shards; ``merge`` here rebuilds a float16 radn weights
file with the original metadata (name, recipe, metrics) and a fresh checksum, which ``radn weights
info`` then verifies. Shards are named ``<stem>.shard-<i>-of-<n>.safetensors``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radn_cli.weights import load_weights, read_info, save_with_metadata  # noqa: E402


def split(weights: Path, out_dir: Path, max_mib: float) -> list[Path]:
    loaded = load_weights(weights)  # checksum verified
    metadata = dict(loaded.info.metadata)
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in loaded.model.state_dict().items()}
    limit = int(max_mib * 2**20) - 64 * 1024  # room for the header
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if nbytes > limit:
            raise SystemExit(f"{name} alone ({nbytes / 2**20:.1f} MiB) is over --max-mib")
        if size + nbytes > limit and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, shard in enumerate(shards, 1):
        path = out_dir / f"{weights.stem}.shard-{i}-of-{len(shards)}.safetensors"
        save_file(shard, str(path), metadata={**metadata, "shard": f"{i}/{len(shards)}"})
        paths.append(path)
    return paths


def merge(shards: list[Path], output: Path) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    metadata: dict[str, str] = {}
    seen = set()
    for path in shards:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            seen.add(meta.get("shard"))
            metadata = metadata or dict(meta)
            for name in handle.keys():
                tensors[name] = handle.get_tensor(name)
    total = int(next(iter(seen)).split("/")[1]) if seen and None not in seen else len(shards)
    if len(seen) != total:
        raise SystemExit(f"expected {total} shards, got {len(seen)}: {sorted(seen)}")
    metadata.pop("shard", None)
    save_with_metadata(tensors, output, metadata, dtype=torch.float16)
    load_weights(output)  # the tensors fit the model and the checksum holds
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("split")
    s.add_argument("weights", type=Path)
    s.add_argument("out_dir", type=Path)
    s.add_argument("--max-mib", type=float, default=15.0)
    m = sub.add_parser("merge")
    m.add_argument("shards", type=Path, nargs="+")
    m.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    if args.verb == "split":
        for path in split(args.weights, args.out_dir, args.max_mib):
            print(f"{path}\t{path.stat().st_size / 2**20:.1f} MiB")
    else:
        out = merge(args.shards, args.output)
        print(f"{read_info(out).weights_id}\t{out}")


if __name__ == "__main__":
    main()
