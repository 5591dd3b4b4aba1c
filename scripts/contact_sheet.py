"""Contact sheet of the 25 KADID-10k distortion types x 5 levels on one photo.

    python scripts/contact_sheet.py PHOTO OUT.png [--size 128] [--fit] [--seed 0]

One row per type, columns: the reference, then levels 1..5. Each cell is labelled with the type's
short name and the level. The distortions run on the full photo at its own resolution (as KADID's
did on its 512x384 references); by default each cell shows a ``size`` x ``size`` crop from the
centre at 1:1 so that pixel-level artefacts stay visible, ``--fit`` shows the whole image scaled to
``size`` px wide instead. Random types use the seed 10000*type + 100*level + seed.

The reference column shows the reference after the generator's first global min-max stretch
(``mapmm``), i.e. the image every level is computed from, so that only the distortion itself
differs between the columns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radn_cli.train.distortions import DISTORTIONS, distort, mapmm  # noqa: E402


def to_tensor(im: Image.Image) -> torch.Tensor:
    arr = np.array(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr).permute(2, 0, 1).float().div(255.0).unsqueeze(0)


def to_image(x: torch.Tensor) -> Image.Image:
    arr = (x[0].clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(arr))


def make_cell(im: Image.Image, size: int, fit: bool) -> Image.Image:
    if fit:
        h = max(1, round(im.height * size / im.width))
        return im.resize((size, h), Image.Resampling.LANCZOS)
    w, h = im.size
    cw, ch = min(size, w), min(size, h)
    left, top = (w - cw) // 2, (h - ch) // 2
    cell = Image.new("RGB", (size, size), (128, 128, 128))
    cell.paste(im.crop((left, top, left + cw, top + ch)), ((size - cw) // 2, (size - ch) // 2))
    return cell


def label(cell: Image.Image, text: str, font: ImageFont.ImageFont) -> None:
    draw = ImageDraw.Draw(cell)
    x0, y0, x1, y1 = draw.textbbox((2, 1), text, font=font)
    draw.rectangle((0, 0, x1 + 2, y1 + 2), fill=(0, 0, 0))
    draw.text((2, 1), text, fill=(255, 255, 0), font=font)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", type=int, default=128, help="cell width in pixels (default 128)")
    ap.add_argument("--fit", action="store_true", help="show the whole image scaled, not a 1:1 crop")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    ref_im = Image.open(args.photo).convert("RGB")
    ref = to_tensor(ref_im)
    font = ImageFont.load_default(size=max(8, args.size // 11))
    ref_cell = make_cell(to_image(mapmm(ref)), args.size, args.fit)
    cell_w, cell_h = ref_cell.size
    sheet = Image.new("RGB", (6 * cell_w, len(DISTORTIONS) * cell_h), (0, 0, 0))
    for row, spec in enumerate(DISTORTIONS):
        cell = ref_cell.copy()
        label(cell, f"{spec.id:02d} {spec.name} ref", font)
        sheet.paste(cell, (0, row * cell_h))
        for level in range(1, 6):
            gen = torch.Generator().manual_seed(10_000 * spec.id + 100 * level + args.seed)
            out = distort(ref, spec.id, level, generator=gen)
            cell = make_cell(to_image(out), args.size, args.fit)
            label(cell, f"{spec.id:02d} {spec.name} L{level}", font)
            sheet.paste(cell, (level * cell_w, row * cell_h))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
