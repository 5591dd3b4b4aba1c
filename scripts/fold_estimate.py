"""The fold estimate of a recipe trained on human labels (`radn train --db DB --folds N --fold K`).

A model that trained on some references of a rated database says nothing honest about those
references. With one run per fold (the same settings, ``--fold 0 .. N-1``), each run scores only the
references its fold held out (never trained on), with the real scorer (`radn eval`'s code path, the
exported weights); the held-out scores of all folds are pooled for one SROCC, KRCC, PLCC and per-type
table over every pair of the database, beside each fold's own SROCC (mean and spread).

    python scripts/fold_estimate.py runs/lite/G0 runs/lite/G1 ... [--weights last] [--json out.json]
        [--scores pooled.csv] [--invariance]

Each run folder holds ``config.json`` (its ``db``, ``folds`` and ``fold``) and ``last.safetensors``
(``--weights best``: ``best.safetensors``, chosen on the synthetic held-out set, never on the fold).
Folds follow ``radn_cli.train.features.reference_folds``; every fold must be given exactly once.
Pooling mixes N models' score scales: the pooled SROCC is the usual cross-validation figure, the
per-fold values say how much it moves with the references held out. ``--invariance`` also runs
``scripts/check_invariance.py``'s probes on each fold's held-out references with that fold's weights
and pools them the same way (largest distances and counts over all references).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from radn_cli import load_scorer
from radn_cli.evaluation.databases import load_database
from radn_cli.evaluation.runner import evaluate
from radn_cli.evaluation.stats import correlation_report, srocc
from radn_cli.train.features import reference_folds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_invariance import probe_references, summarise  # noqa: E402


def run_settings(folder: Path) -> dict:
    config = json.loads((folder / "config.json").read_text())
    if not config.get("db") or not config.get("folds"):
        raise SystemExit(
            f"{folder}: not a --db --folds run (config.json has db={config.get('db')!r}, "
            f"folds={config.get('folds')!r})"
        )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="one run folder per fold")
    parser.add_argument("--weights", choices=("last", "best"), default="last")
    parser.add_argument("--db", default=None, help="the database (default: each run's --db)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--scores", default=None, help="the pooled held-out scores as CSV")
    parser.add_argument(
        "--invariance",
        action="store_true",
        help="also the invariance probes, per fold on its held-out references",
    )
    args = parser.parse_args()

    settings = [run_settings(folder) for folder in args.runs]
    dbs = {args.db or s["db"] for s in settings}
    folds = {s["folds"] for s in settings}
    if len(dbs) != 1 or len(folds) != 1:
        raise SystemExit(f"the runs differ in database or fold count: {sorted(dbs)}, {sorted(folds)}")
    (db,), (count,) = dbs, folds
    given = sorted(s["fold"] for s in settings)
    if given != list(range(count)):
        raise SystemExit(f"need each of folds 0..{count - 1} exactly once, got {given}")

    database = load_database(Path(db))
    fold_of = reference_folds(database, count)
    pairs, predictions, per_fold, probed = [], [], [], []
    for folder, s in sorted(zip(args.runs, settings), key=lambda item: item[1]["fold"]):
        held = [p for p in database.pairs if fold_of[p.ref] == s["fold"]]
        subset = dataclasses.replace(database, pairs=held)
        scorer = load_scorer(str(folder / f"{args.weights}.safetensors"), device="cpu")
        start = time.perf_counter()
        result = evaluate(subset, ("radn",), scorer=scorer)
        if result.errors:
            raise SystemExit(f"{folder}: {len(result.errors)} pairs failed, first: {result.errors[0][1]}")
        scores = result.predictions["radn"]
        value = srocc(scores, result.human)
        refs = sorted({p.ref.name for p in held})
        per_fold.append(
            {
                "fold": s["fold"],
                "run": str(folder),
                "weights": scorer.info.weights_id,
                "references": refs,
                "pairs": len(held),
                "srocc": value,
            }
        )
        print(
            f"fold {s['fold']} ({', '.join(refs)}; {len(held)} pairs, {scorer.info.weights_id}): "
            f"SROCC {value:.4f} ({time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        pairs += held
        predictions.append(scores)
        if args.invariance:
            probed += probe_references(
                scorer, database, only={p.ref for p in held}, log=lambda line: print(line, file=sys.stderr)
            )

    pooled = np.concatenate(predictions)
    human = np.array([p.mos for p in pairs]) * (1.0 if database.higher_is_better else -1.0)
    report = correlation_report(pooled, human, [p.dist_type for p in pairs])
    values = np.array([f["srocc"] for f in per_fold])
    document = {
        "database": str(db),
        "pairs": len(pairs),
        "folds": count,
        "weights": args.weights,
        "pooled": report,
        "per_fold": per_fold,
        "fold_srocc_mean": float(values.mean()),
        "fold_srocc_sd": float(values.std(ddof=1)),
    }
    if args.invariance:
        document["invariance"] = summarise(probed, "one per fold", "fp32")
        document["invariance_references"] = probed
    types = "  ".join(f"{t} {v['srocc']:.3f}" for t, v in report["per_type"].items())
    print(
        f"pooled over {count} folds ({len(pairs)} pairs): SROCC {report['srocc']:.4f}, KRCC "
        f"{report['krcc']:.4f}, PLCC {report['plcc']:.4f}; per fold {values.mean():.4f} +- "
        f"{values.std(ddof=1):.4f} (min {values.min():.4f}, max {values.max():.4f})"
    )
    print(f"per type: {types}")
    if args.invariance:
        print("invariance (each reference probed by the fold that held it out):")
        print(json.dumps(document["invariance"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    if args.scores:
        with open(args.scores, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["ref", "dist", "mos", "type", "fold", "radn"])
            for pair, score in zip(pairs, pooled):
                writer.writerow([pair.ref, pair.dist, pair.mos, pair.dist_type, fold_of[pair.ref], score])


if __name__ == "__main__":
    main()
