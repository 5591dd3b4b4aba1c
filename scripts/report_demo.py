"""A demo of the HTML report made from real images: the README's screenshot (docs/report.png).

    python scripts/report_demo.py OUT_DIR [--screenshot docs/report.png]

From examples/ref.png (the CC0 photo of examples/README.md) it makes three references (the whole
512x384 image and two 256x192 crops of it) and one folder per "method", each holding a version of
every reference, named like it: results/jpeg-q10/, jpeg-q40/ (Pillow JPEG), blur/ (Gaussian,
radius 1.5), noise/ (Gaussian, sigma 12, seeded), down-up/ (4x down, bicubic back up). One file is
cut short on purpose (results/noise/crop2.png) so the report shows a failure. Then it runs

    radn batch --pairs OUT_DIR/pairs.csv -o OUT_DIR/scores.csv --report OUT_DIR/report.html

with the default weights, and with --screenshot opens the report in headless Chromium (Debian's
chromium and chromium-driver, selenium), and stacks two views into one PNG: the top of the page
(summary, histogram, methods) and the worst pair opened (reference, distorted, heatmap). When
pngquant is installed (Debian package pngquant) the PNG is reduced to 256 colours with it.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
WIDTH, TOP_H, DETAIL_H = 1280, 980, 760  # screenshot: px wide, height of each of the two views


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _noise(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    noisy = pixels + np.random.default_rng(seed).normal(0.0, sigma, pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))


def _down_up(image: Image.Image, factor: int) -> Image.Image:
    small = image.resize((image.width // factor, image.height // factor), Image.Resampling.BICUBIC)
    return small.resize(image.size, Image.Resampling.BICUBIC)


METHODS = {
    "jpeg-q10": lambda im, seed: _jpeg(im, 10),
    "jpeg-q40": lambda im, seed: _jpeg(im, 40),
    "blur": lambda im, seed: im.filter(ImageFilter.GaussianBlur(1.5)),
    "noise": lambda im, seed: _noise(im, 12.0, seed),
    "down-up": lambda im, seed: _down_up(im, 4),
}


def make_demo(out: Path) -> Path:
    """The references, the method folders and the pairs list; returns the pairs list."""
    photo = Image.open(ROOT / "examples" / "ref.png").convert("RGB")
    references = {
        "full": photo,
        "crop1": photo.crop((0, 0, 256, 192)),
        "crop2": photo.crop((256, 192, 512, 384)),
    }
    pairs = [("ref", "dist")]
    for seed, (name, reference) in enumerate(references.items()):
        (out / "refs").mkdir(parents=True, exist_ok=True)
        reference.save(out / "refs" / f"{name}.png")
        for method, make in METHODS.items():
            (out / "results" / method).mkdir(parents=True, exist_ok=True)
            make(reference, seed).save(out / "results" / method / f"{name}.png")
            pairs.append((f"refs/{name}.png", f"results/{method}/{name}.png"))
    cut = out / "results" / "noise" / "crop2.png"
    cut.write_bytes(cut.read_bytes()[:400])  # a truncated file: the report lists the failure
    with open(out / "pairs.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(pairs)
    return out / "pairs.csv"


def screenshot(page: Path, target: Path) -> None:
    from radn_cli.report.browser import chromium, open_report, wait_for

    driver = chromium(WIDTH, TOP_H)
    try:
        open_report(driver, page)
        top = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
        driver.set_window_size(WIDTH, DETAIL_H)
        driver.execute_script("document.getElementById('pairs').scrollIntoView()")
        driver.execute_script("document.querySelector('#pairs-table tbody tr').click()")  # the worst pair
        ids = "['detail-ref', 'detail-dist', 'detail-heat']"
        wait_for(driver, f"return {ids}.every(id => document.getElementById(id).naturalWidth > 0)")
        time.sleep(0.3)
        detail = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    finally:
        driver.quit()
    sheet = Image.new("RGB", (top.width, top.height + detail.height + 8), (200, 203, 210))
    sheet.paste(top, (0, 0))
    sheet.paste(detail, (0, top.height + 8))
    sheet.save(target, optimize=True)
    if shutil.which("pngquant"):  # photos make a large PNG: 256 colours, well dithered (about 2.5x smaller)
        subprocess.run(
            ["pngquant", "--quality", "70-95", "--speed", "1", "--force", "--output", target, target],
            check=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the demo set, the CSV and the report")
    parser.add_argument("--screenshot", type=Path, help="PNG of the report (the README's is docs/report.png)")
    args = parser.parse_args()
    pairs = make_demo(args.out)
    command = [
        sys.executable,
        "-m",
        "radn_cli",
        "batch",
        "--pairs",
        pairs.name,
        "-o",
        "scores.csv",
        "--overwrite",
    ]
    finished = subprocess.run([*command, "--report", "report.html"], cwd=args.out)  # paths relative to OUT
    if finished.returncode not in (0, 1):  # 1: the truncated file failed, as intended
        sys.exit(finished.returncode)
    if args.screenshot:
        screenshot(args.out / "report.html", args.screenshot)
        print(f"wrote {args.screenshot} ({args.screenshot.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
