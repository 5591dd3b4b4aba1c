"""Pack what a GPU training run needs into gpu_data/, small enough to travel to a lent device.

    python scripts/pack_gpu_data.py [--shared ../shared] [--out gpu_data] [--budget-mib 10] [--side 256]

The device tool sends at most 64 MiB of working tree, and the shipped weights take 42 of it, so the
clean photos (102 MB) cannot travel as they are. This writes ``OUT/photos/``: a centre crop of
``side`` x ``side`` pixels at the photo's own resolution (no resampling) from as many photos as fit
in the budget, taken round-robin from each source folder so every source is represented, saved as
JPEG quality 95 without chroma subsampling; and ``OUT/tid2013_dev_src/``: the TID2013 dev set's
references, parameters and rebuilding script (4 MB), to evaluate on the device. gpu_data/ is
git-ignored; scripts/gpu_train.sh reads it (name it in the device call's carry).
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from itertools import zip_longest
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radn_cli.train.data import find_photos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--shared", type=Path, default=root.parent / "shared")
    parser.add_argument("--out", type=Path, default=root / "gpu_data")
    parser.add_argument("--budget-mib", type=float, default=10.0)
    parser.add_argument("--side", type=int, default=256)
    args = parser.parse_args()
    pristine = args.shared / "data" / "pristine"
    sources = [find_photos(folder) for folder in sorted(p for p in pristine.iterdir() if p.is_dir())]
    photos = [p for group in zip_longest(*sources) for p in group if p is not None]
    out = args.out / "photos"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    budget, used, count = int(args.budget_mib * 2**20), 0, 0
    for path in photos:
        with Image.open(path) as image:
            image = image.convert("RGB")
            width, height = image.size
            side = min(args.side, width, height)
            left, top = (width - side) // 2, (height - side) // 2
            crop = image.crop((left, top, left + side, top + side))
        buffer = io.BytesIO()
        crop.save(buffer, "JPEG", quality=95, subsampling=0)
        if used + buffer.tell() > budget:
            break
        (out / f"{path.parent.name}_{path.stem}.jpg").write_bytes(buffer.getvalue())
        used += buffer.tell()
        count += 1
    tid = args.shared / "data" / "tid2013_dev"
    target = args.out / "tid2013_dev_src"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(tid, target)
    print(f"{count} of {len(photos)} photos, {used / 2**20:.1f} MiB in {out}; TID2013 dev set in {target}")


if __name__ == "__main__":
    main()
