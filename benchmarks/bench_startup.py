"""How long `radn --help` and `radn score` take, and how much of `radn score` is start-up.

Every number is the wall time of a fresh process (median of --runs), measured from here with
time.perf_counter() around subprocess.run:

  python -c pass                 the interpreter alone
  python -c "import torch"       torch (what every scoring command pays)
  python -c "import radn_cli.cli.commands"  the CLI's command tree (must not import torch)
  radn --help                    target: < 0.5 s
  radn score REF DIST --weights W  the example pair (examples/ref.png, dist.png, 512x384) with seeded weights

Then a staged copy of what `radn score` does (same library calls in the same order, each stage timed
inside one process) splits the command into: imports, loading the reference image, loading the weights,
building the Scorer, loading the distorted image, scoring (encode_reference + score), and
start-up = wall time of `radn score` - scoring.

Usage:
  python benchmarks/bench_startup.py [--runs 5] [--score-runs 3] [--device auto]
      [--out startup.json] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HELP_TARGET_S = 0.5

# What `radn score REF DIST` does (radn_cli/cli/score.py: score), one stage at a time.
STAGED = r"""
import json, sys, time
t0 = time.perf_counter()
stages = {}
def mark(name):
    global t0
    now = time.perf_counter()
    stages[name] = now - t0
    t0 = now
import radn_cli.cli.commands
mark("import radn_cli.cli.commands")
from radn_cli.images import check_pair, load_image
from radn_cli.devices import keep_freed_memory
from radn_cli.scoring import Scorer
from radn_cli.weights import load_weights, resolve_weights
mark("import torch + scoring modules")
ref_path, dist_path, weights, device = sys.argv[1:5]
ref = load_image(ref_path)
mark("load reference image")
loaded = load_weights(resolve_weights(weights).path)
mark("load weights (read, sha256, model)")
keep_freed_memory()  # as the CLI does before building its Scorer
scorer = Scorer(loaded, device=device, precision="fp32", batch_size=256)
mark("build Scorer (model to device)")
dist = load_image(dist_path)
check_pair(ref, dist, ref_path=ref_path, dist_path=dist_path)
mark("load distorted image")
score = scorer.score(scorer.encode_reference(ref.tensor), dist.tensor).score
if scorer.device.type == "cuda":
    import torch
    torch.cuda.synchronize()
mark("score (encode_reference + score)")
print(json.dumps({"stages": stages, "score": score, "device": str(scorer.device)}))
"""


def radn_command() -> list[str]:
    """The installed `radn` entry point next to this interpreter, else on PATH, else `python -m radn_cli`."""
    beside = Path(sys.executable).parent / ("radn.exe" if os.name == "nt" else "radn")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("radn")
    return [found] if found else [sys.executable, "-m", "radn_cli"]


def timed_runs(command: list[str], runs: int, env: dict[str, str]) -> dict:
    times, last = [], None
    for _ in range(runs):
        start = time.perf_counter()
        last = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if last.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({last.returncode}): {last.stderr.strip()[-500:]}")
    return {
        "command": command,
        "runs": times,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "stdout": last.stdout.strip()[-300:] if last else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each quick command (median)")
    parser.add_argument(
        "--score-runs", type=int, default=3, help="runs of `radn score` and of the staged copy"
    )
    parser.add_argument("--device", default="auto", help="--device for radn score (default auto, as the CLI)")
    parser.add_argument("--ref", type=Path, default=ROOT / "examples" / "ref.png")
    parser.add_argument("--dist", type=Path, default=ROOT / "examples" / "dist.png")
    parser.add_argument("--weights", type=Path, default=None, help="weights file (default: seeded weights)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="radn-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("RADN_WEIGHTS", "RADN_VERBOSE")}
        env["RADN_DATA_DIR"] = str(Path(tmp) / "data")  # no user-installed weights are picked up
        weights = args.weights
        if weights is None:
            weights = Path(tmp) / "seeded.safetensors"
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys; sys.path.insert(0, sys.argv[1]); import baseline; "
                    "baseline.write_seeded_weights(sys.argv[2])",
                    str(HERE),
                    str(weights),
                ],
                check=True,
                cwd=ROOT,
            )
        py = sys.executable
        radn = radn_command()
        ref, dist = str(args.ref), str(args.dist)
        results = {
            "python -c pass": timed_runs([py, "-c", "pass"], args.runs, env),
            "import torch": timed_runs([py, "-c", "import torch"], args.runs, env),
            "import radn_cli.cli.commands": timed_runs(
                [py, "-c", "import radn_cli.cli.commands"], args.runs, env
            ),
            "radn --help": timed_runs([*radn, "--help"], args.runs, env),
            "radn score": timed_runs(
                [*radn, "score", ref, dist, "--weights", str(weights), "--device", args.device],
                args.score_runs,
                env,
            ),
        }
        cli_imports_torch = subprocess.run(
            [py, "-c", "import sys, radn_cli.cli.commands; print('torch' in sys.modules)"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        ).stdout.strip()
        staged_runs = []
        for _ in range(args.score_runs):
            done = subprocess.run(
                [py, "-c", STAGED, ref, dist, str(weights), args.device],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
            )
            if done.returncode != 0:
                raise SystemExit(f"staged run failed: {done.stderr.strip()[-500:]}")
            staged_runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    stages = {
        name: statistics.median(run["stages"][name] for run in staged_runs)
        for name in staged_runs[0]["stages"]
    }
    score_wall = results["radn score"]["median_s"]
    scoring = stages["score (encode_reference + score)"]
    report = {
        "results": results,
        "cli_module_imports_torch": cli_imports_torch == "True",
        "staged": {"device": staged_runs[0]["device"], "median_stage_s": stages, "runs": staged_runs},
        "radn_score_wall_s": score_wall,
        "radn_score_scoring_s": scoring,
        "radn_score_startup_s": score_wall - scoring,
        "radn_score_startup_share": (score_wall - scoring) / score_wall,
        "help_target_s": HELP_TARGET_S,
        "help_ok": results["radn --help"]["median_s"] < HELP_TARGET_S,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = ["| measurement | median s | min s |", "|---|---:|---:|"]
    for name, row in results.items():
        lines.append(f"| `{name}` | {row['median_s']:.3f} | {row['min_s']:.3f} |")
    lines += [
        "",
        f"`radn score` staged ({report['staged']['device']}, median of {args.score_runs}):",
        "",
        "| stage | s |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {value:.3f} |" for name, value in stages.items()]
    lines += [
        "",
        f"- `radn --help`: {results['radn --help']['median_s']:.3f} s (target < {HELP_TARGET_S} s: "
        f"{'met' if report['help_ok'] else 'NOT met'}); "
        f"radn_cli.cli.commands imports torch: {cli_imports_torch}",
        f"- `radn score {args.ref.name} {args.dist.name}`: {score_wall:.3f} s, "
        f"of which scoring {scoring:.3f} s and start-up (interpreter, imports, image decoding, weights, "
        f"model to device) {score_wall - scoring:.3f} s "
        f"({100 * report['radn_score_startup_share']:.0f}%)",
    ]
    text = "\n".join(lines)
    if args.markdown:
        print(text)
    else:
        print(text, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
