"""Rebuild the example pair examples/ref.png and examples/dist.png.

ref.png is "seeding" by Clemens Engelhardt (CC0-1.0, see README.md beside this file), downscaled with
Lanczos to 1024 px wide and cropped to its top-left 512x384. dist.png is ref.png compressed by Pillow
as a JPEG at quality 20 with 4:2:0 chroma subsampling, decoded again and saved as PNG.

    python examples/make_example.py [--source PHOTO] [--out-dir examples]

PHOTO is either the full-size photo from the Debian package (5312x2988 JPEG) or the 512x384 tile of
the project's shared data (the default); both give the same ref.png.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image

SIZE = (512, 384)
DOWNSCALED_WIDTH = 1024
JPEG_QUALITY = 20
HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[1] / "shared/data/pristine/wallpapers/seeding_by_Clements_Engelhardt_0.webp"


def reference(source: Path) -> Image.Image:
    """The 512x384 reference: the tile as it is, or the full photo downscaled and cropped."""
    photo = Image.open(source).convert("RGB")
    if photo.size == SIZE:
        return photo
    height = round(photo.height * DOWNSCALED_WIDTH / photo.width)
    return photo.resize((DOWNSCALED_WIDTH, height), Image.Resampling.LANCZOS).crop((0, 0, *SIZE))


def jpeg_distorted(ref: Image.Image) -> Image.Image:
    """ref after a JPEG round trip at quality 20, 4:2:0."""
    buffer = io.BytesIO()
    ref.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling="4:2:0")
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="photo (default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=HERE, help="where to write (default: %(default)s)")
    args = parser.parse_args()
    if not args.source.is_file():
        parser.error(f"{args.source}: no such file; pass --source (see examples/README.md)")
    ref = reference(args.source)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    ref.save(args.out_dir / "ref.png", optimize=True)
    jpeg_distorted(ref).save(args.out_dir / "dist.png", optimize=True)
    print(f"wrote {args.out_dir / 'ref.png'} and {args.out_dir / 'dist.png'}")


if __name__ == "__main__":
    main()
