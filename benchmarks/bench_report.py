"""How fast a 10,000-row HTML report opens in headless Chromium (target: under 3 s).

Makes a synthetic results CSV of --rows rows (5 method folders, 2% failed rows) whose paths point at
a few small images made here (40 references, 5 x 40 distorted versions), writes the report with
`radn report --no-heatmaps` (timed too), then opens it from file:// in headless Chromium --runs
times and reports, per load (median and worst):

  DOMContentLoaded   the page and its inline rows parsed (performance navigation timing)
  table              the script done: rows parsed, sorted and the first page of the table drawn
                     (the `radn-table` performance mark report.js sets)
  wall               from the WebDriver `get` call until the table is there, as a user waits

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) and the
test extra's selenium.

Usage:
  python benchmarks/bench_report.py [--rows 10000] [--runs 5] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from radn_cli.report.browser import chromium, open_report

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = "ref,dist,score,patches,width,height,weights,precision,error".split(",")
METHODS = ("bicubic", "edsr", "esrgan", "jpeg-q20", "swinir")
IMAGES = 40
TARGET_S = 3.0


def make_study(root: Path, rows: int) -> Path:
    """Small images (64x96) and a results CSV of ``rows`` rows pointing at them."""
    rng = np.random.default_rng(0)
    for j in range(IMAGES):
        image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
        (root / "refs").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "refs" / f"{j:04d}.png")
        for k, method in enumerate(METHODS):
            noisy = np.clip(image + rng.normal(0, 4 + 6 * k, image.shape), 0, 255).astype(np.uint8)
            (root / "results" / method).mkdir(parents=True, exist_ok=True)
            Image.fromarray(noisy).save(root / "results" / method / f"{j:04d}.png")
    draw = random.Random(0)
    scores = root / "scores.csv"
    with open(scores, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(COLUMNS)
        for index in range(rows):
            k, j = index % len(METHODS), (index // len(METHODS)) % IMAGES
            ref, dist = root / "refs" / f"{j:04d}.png", root / "results" / METHODS[k] / f"{j:04d}.png"
            if draw.random() < 0.02:
                out.writerow(
                    [ref, dist, "", "", "", "", "bench@0", "fp32", f"{dist}: decoder error (synthetic)"]
                )
            else:
                score = min(5.0, max(1.0, draw.gauss(4.2 - 0.35 * k, 0.4)))
                out.writerow([ref, dist, score, 6, 96, 64, "bench@0", "fp32", ""])
    return scores


def load_once(driver, page: Path) -> dict[str, float]:
    driver.get("about:blank")
    started = time.perf_counter()
    open_report(driver, page)  # WebDriver's get returns at the load event; then the table is checked for
    wall = time.perf_counter() - started
    timing = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "const t = performance.getEntriesByName('radn-table')[0];"
        "const shown = document.querySelectorAll('#pairs-table tbody tr').length;"
        "return [n.domContentLoadedEventEnd, t ? t.startTime : null, shown,"
        " document.getElementById('count').textContent]"
    )
    return {
        "dcl": timing[0] / 1000,
        "table": timing[1] / 1000,
        "wall": wall,
        "shown": timing[2],
        "count": timing[3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="make the study and the report in this folder")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        root = args.keep or Path(temporary)
        scores = make_study(root, args.rows)
        page = root / "report.html"
        started = time.perf_counter()
        radn = [sys.executable, "-m", "radn_cli", "report", str(scores), "-o", str(page), "--no-heatmaps"]
        subprocess.run(radn, check=True, cwd=ROOT)
        build = time.perf_counter() - started
        driver = chromium()
        try:
            loads = [load_once(driver, page) for _ in range(args.runs)]
        finally:
            driver.quit()

    def stat(key: str) -> dict[str, float]:
        values = [load[key] for load in loads]
        return {"median": statistics.median(values), "max": max(values)}

    numbers = {
        "rows": args.rows,
        "html_bytes": None if not args.keep else page.stat().st_size,
        "build_s": build,
        "dom_content_loaded_s": stat("dcl"),
        "table_s": stat("table"),
        "wall_s": stat("wall"),
        "rows_drawn": loads[-1]["shown"],
        "count": loads[-1]["count"],
    }
    if args.json:
        print(json.dumps(numbers, indent=2))
        return
    print(f"{args.rows} rows: report written in {build:.1f} s (radn report --no-heatmaps)")
    for label, key in (
        ("DOMContentLoaded", "dom_content_loaded_s"),
        ("table drawn", "table_s"),
        ("wall", "wall_s"),
    ):
        median, worst = numbers[key]["median"], numbers[key]["max"]
        print(f"  {label:18s} median {median:.3f} s, worst {worst:.3f} s ({args.runs} loads)")
    verdict = "under" if numbers["wall_s"]["max"] < TARGET_S else "OVER"
    print(f"  {numbers['count']}, {numbers['rows_drawn']} rows drawn; {verdict} the {TARGET_S:.0f} s target")


if __name__ == "__main__":
    main()
