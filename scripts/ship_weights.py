"""Turn a training run's weights into the shipped default: float16, with the TID2013 dev numbers.

    python scripts/ship_weights.py RUN/best.safetensors [EVAL.json] [--init TEXT] [--source TEXT]
        [--fold-estimate FOLDS.json] [--name NAME] [-o weights/default.safetensors]

Two passes: first without EVAL.json (only the float16 conversion), then `radn eval` that float16
file in fp32, then again with the file and EVAL.json (float16 in, float16 out: same tensors, same
identity), so that the numbers in the file are the shipped file's own.

EVAL.json is `radn eval tid2013_dev --json` (fp32) of those weights, metrics radn, psnr, ssim and
ms-ssim; its correlations go into the file's metrics as ``tid2013_dev_fp32`` (what the model card
and tests/test_shipped.py read), next to the held-out synthetic numbers of training. The tensors are
stored in float16 (half the size; the scores agree with the float32 file to rounding) with a fresh
sha256; the name (unless ``--name`` gives the shipped one), recipe and the rest of the metadata are
kept.

Weights that trained on the TID2013 dev labels have no honest TID2013 dev figure of their own: give
no EVAL.json but ``--fold-estimate FOLDS.json`` (``scripts/fold_estimate.py --json``, the same recipe
in folds by reference); it goes into the metrics as ``tid2013_dev_fold_estimate`` (pooled SROCC,
KRCC, PLCC, per type, each fold's SROCC, mean and sd).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radn_cli.weights import load_weights, save_with_metadata  # noqa: E402

_KEPT = ("srocc", "krcc", "plcc", "plcc_logistic", "rmse_logistic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("evaluation", type=Path, nargs="?")
    parser.add_argument("--init", default="")
    parser.add_argument("--source", default="radn train on CPU (see weights/README.md)")
    parser.add_argument("--fold-estimate", type=Path, help="scripts/fold_estimate.py --json of the recipe")
    parser.add_argument("--name", help="the shipped weights' name (default: the run's)")
    parser.add_argument("-o", "--output", type=Path, default=Path("weights/default.safetensors"))
    args = parser.parse_args()
    loaded = load_weights(args.weights)
    meta = dict(loaded.info.metadata)
    if args.name:
        meta["name"] = args.name
    metrics = dict(loaded.info.metrics)
    if args.evaluation is not None:
        report = json.loads(args.evaluation.read_text())
        if report["model"]["weights"] != loaded.info.weights_id or report["model"]["precision"] != "fp32":
            raise SystemExit(f"{args.evaluation} is not an fp32 evaluation of {loaded.info.weights_id}")
        metrics["tid2013_dev_fp32"] = {
            name: {k: round(values[k], 4) for k in _KEPT} for name, values in report["metrics"].items()
        }
        metrics["tid2013_dev_fp32_per_type"] = {
            name: {t: round(v["srocc"], 4) for t, v in values["per_type"].items()}
            for name, values in report["metrics"].items()
        }
    if args.fold_estimate is not None:
        if args.evaluation is not None:
            raise SystemExit("weights trained on the TID2013 dev labels have a fold estimate, not EVAL.json")
        folds = json.loads(args.fold_estimate.read_text())
        pooled = folds["pooled"]
        metrics["tid2013_dev_fold_estimate"] = {
            **{k: round(pooled[k], 4) for k in ("srocc", "krcc", "plcc")},
            "per_type": {t: round(v["srocc"], 4) for t, v in pooled["per_type"].items()},
            "folds": folds["folds"],
            "fold_srocc": [round(f["srocc"], 4) for f in folds["per_fold"]],
            "fold_srocc_mean": round(folds["fold_srocc_mean"], 4),
            "fold_srocc_sd": round(folds["fold_srocc_sd"], 4),
        }
    extra = {"source": args.source, **({"init": args.init} if args.init else {})}
    info = save_with_metadata(
        loaded.model.state_dict(), args.output, meta, dtype=torch.float16, metrics=metrics, extra=extra
    )
    print(f"{info.weights_id}\t{args.output}")


if __name__ == "__main__":
    main()
