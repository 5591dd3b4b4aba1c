"""Does a weights file score what people cannot see as undistorted? Checks on a rated database.

    python scripts/check_invariance.py DATABASE [--weights W] [--precision bf16] [--json out.json]
        [--folds N --fold K]

For every reference of a database that `radn eval` reads (the TID2013 dev set, say), scores against
the reference:

* ``identical``: the reference itself;
* ``shift1`` / ``shift2``: the reference moved 1 / 2 px right and down (edges repeated), which people
  do not notice (the paper's misalignment tolerance);
* ``rescale1``: the reference magnified by 1% about its centre; ``warp1``: moved by a smooth random
  displacement field of at most 1 px (``radn_cli.train.data.rescaled`` / ``warped``, bilinear, seeded
  per reference): geometric changes people do not see either;
* ``bright20``: 20% brighter (Pillow ``ImageEnhance.Brightness(1.2)``), ``saturated``: 50% more
  colourful (``ImageEnhance.Color(1.5)``): visible changes that must not beat ``identical``;
* the database's own distorted images of that reference.

Reports, over all references: how many distorted images score above ``identical`` and above
``shift1``, and how often ``bright20`` / ``saturated`` beat ``identical`` (goal of issue 10: none);
for each geometric probe (``shift1``, ``shift2``, ``rescale1``, ``warp1``) the largest distance from
``identical`` (goal of issue 24: within 0.05) and how many *visibly* distorted images score above it
(goal: none). Visibly distorted: rated at least ``--visible`` (default 1.0) below the best-rated
distorted image of the same reference, on the database's own scale. With ``--folds N --fold K`` only
the references that `radn train --folds N --fold K` held out (a model trained on the others says
nothing honest about those it saw; ``scripts/fold_estimate.py --invariance`` pools all folds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radn_cli import load_image, load_scorer  # noqa: E402
from radn_cli.evaluation.databases import load_database  # noqa: E402
from radn_cli.train.data import rescaled, shifted, warped  # noqa: E402
from radn_cli.train.features import reference_folds  # noqa: E402

GEOMETRIC = ("shift1", "shift2", "rescale1", "warp1")


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def probe_references(scorer, db, visible_gap: float = 1.0, only=None, log=print) -> list[dict]:
    """One row per reference of ``db`` (or of the references in ``only``): its probes' scores, its
    distorted images' and the counts above (module doc). Each reference keeps its probes (the warp's
    seed is its place among all the database's references) whichever subset is probed."""
    sign = 1.0 if scorer.info.higher_is_better else -1.0
    by_ref: dict[Path, list] = {}
    for pair in db.pairs:
        by_ref.setdefault(pair.ref, []).append(pair)
    rows = []
    for number, (ref_path, pairs) in enumerate(sorted(by_ref.items())):
        if only is not None and ref_path not in only:
            continue
        ref = load_image(ref_path).tensor
        pil = Image.fromarray((ref.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        encoded = scorer.encode_reference(ref)
        probes = {
            "identical": ref,
            "shift1": shifted(ref, 1, 1),
            "shift2": shifted(ref, 2, 2),
            "rescale1": rescaled(ref, 1.01),
            "warp1": warped(ref, torch.Generator().manual_seed(number), amplitude=1.0),
            "bright20": _tensor(ImageEnhance.Brightness(pil).enhance(1.2)),
            "saturated": _tensor(ImageEnhance.Color(pil).enhance(1.5)),
        }
        scores = {name: sign * scorer.score(encoded, t).score for name, t in probes.items()}
        dist = [sign * scorer.score(encoded, load_image(p.dist).tensor).score for p in pairs]
        rated = [p.mos if db.higher_is_better else -p.mos for p in pairs]
        visible = [d for d, m in zip(dist, rated) if m <= max(rated) - visible_gap]
        rows.append(
            {
                "ref": ref_path.name,
                "weights": scorer.info.weights_id,
                **{k: round(v, 4) for k, v in scores.items()},
                "distorted": len(dist),
                "distorted_max": round(max(dist), 4),
                "above_identical": sum(d > scores["identical"] for d in dist),
                "above_shift1": sum(d > scores["shift1"] for d in dist),
                "visible": len(visible),
                **{f"visible_above_{g}": sum(d > scores[g] for d in visible) for g in GEOMETRIC},
            }
        )
        log(json.dumps(rows[-1]))
    return rows


def summarise(rows: list[dict], weights: str, precision: str) -> dict:
    """The counts and largest distances over all probed references (module doc)."""
    return {
        "weights": weights,
        "precision": precision,
        "references": len(rows),
        "distorted": sum(r["distorted"] for r in rows),
        "distorted_above_identical": sum(r["above_identical"] for r in rows),
        "distorted_above_shift1": sum(r["above_shift1"] for r in rows),
        "shift1_below_identical_by": round(max(r["identical"] - r["shift1"] for r in rows), 4),
        "bright20_beats_identical": sum(r["bright20"] > r["identical"] for r in rows),
        "visible_distorted": sum(r["visible"] for r in rows),
        **{
            f"{g}_largest_distance": round(max(abs(r["identical"] - r[g]) for r in rows), 4)
            for g in GEOMETRIC
        },
        **{f"visible_above_{g}": sum(r[f"visible_above_{g}"] for r in rows) for g in GEOMETRIC},
        "saturated_beats_identical": sum(r["saturated"] > r["identical"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--visible", type=float, default=1.0, help="rating gap that counts as visible")
    parser.add_argument("--folds", type=int, default=0, help="with --fold: probe only the references ...")
    parser.add_argument(
        "--fold", type=int, default=0, help="... that `radn train --folds N --fold K` held out"
    )
    args = parser.parse_args()
    scorer = load_scorer(args.weights, device=args.device, precision=args.precision)
    db = load_database(args.database)
    only = None
    if args.folds:
        only = {ref for ref, fold in reference_folds(db, args.folds).items() if fold == args.fold}
    rows = probe_references(scorer, db, args.visible, only, log=lambda line: print(line, flush=True))
    summary = summarise(rows, scorer.info.weights_id, scorer.precision)
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "references": rows}, indent=1))


if __name__ == "__main__":
    main()
