"""What `radn score` hands out besides the scores themselves: the JSON records and document of
`radn score --json`, a score as printed on stdout, and the file each image's heatmap goes to.
Plain data, no Typer, no Rich."""

from __future__ import annotations

import math
import os
from pathlib import Path

from .scoring import PairScore
from .weights import WeightsInfo

SCHEMA_VERSION = 1


def model_record(info: WeightsInfo, *, device: str, precision: str) -> dict:
    meta = info.metadata
    return {
        "weights": info.weights_id,
        "name": info.name,
        "sha256": info.sha256,
        "architecture": info.config.arch,
        "path": str(info.path),
        "score_direction": meta.get("score_direction", "higher_is_better"),
        "score_scale": meta.get("score_scale", "unknown"),
        "device": device,
        "precision": precision,
    }


def score_record(dist: str | Path, result: PairScore) -> dict:
    return {
        "dist": str(dist),
        "score": result.score,
        "width": result.width,
        "height": result.height,
        "grid": list(result.grid),
        "patches": result.patches,
        "patch_scores": result.patch_scores.tolist(),
        "patch_weights": result.patch_weights.tolist(),
        "error": None,
    }


def error_record(dist: str | Path, message: str) -> dict:
    return {"dist": str(dist), "score": None, "error": message}


def summary_record(records: list[dict], *, higher_is_better: bool) -> dict:
    scored = [r for r in records if r.get("error") is None and r.get("score") is not None]
    summary: dict = {"count": len(records), "scored": len(scored), "failed": len(records) - len(scored)}
    if scored:
        ranked = sorted(scored, key=lambda r: r["score"], reverse=higher_is_better)
        summary.update(
            mean=math.fsum(r["score"] for r in scored) / len(scored),
            best=ranked[0]["dist"],
            worst=ranked[-1]["dist"],
            ranking=[r["dist"] for r in ranked],
        )
    return summary


def score_document(
    reference: str | Path, scorer, records: list[dict], summary: dict, *, scale: str = "native"
) -> dict:
    """The JSON document of `radn score --json`: the reference, the model, the viewing scale
    (``--scale``: ``native``, a long side in pixels or a factor; a record's width, height and grid are
    those of the image as scored), one record per image."""
    return {
        "schema": SCHEMA_VERSION,
        "reference": str(reference),
        "model": model_record(scorer.info, device=str(scorer.device), precision=scorer.precision),
        "scale": scale,
        "results": records,
        "summary": summary,
    }


def format_score(score: float) -> str:
    """Score as printed on stdout: fixed 6 decimals (JSON and CSV keep full precision)."""
    return f"{score:.6f}"


def heatmap_paths(template: Path, dists: list[Path]) -> dict[Path, Path]:
    """Where the heatmap of each distorted image goes, none overwriting another.

    One image: the template itself. Several: the template with each image's name (``map.png`` ->
    ``map_<name>.png``, or ``{name}`` in the template replaced). Images that share a name (``a/x.png``
    and ``b/x.png``, or ``x.png`` and ``x.jpg``) get the folders, and if need be the extension, that
    tell them apart: ``map_a_x.png``, ``map_b_x.png``.
    """
    distinct = list(dict.fromkeys(dists))
    labels = {d: d.stem for d in distinct}
    stems: dict[str, list[Path]] = {}
    for d in distinct:
        stems.setdefault(d.stem, []).append(d)
    for same in (group for group in stems.values() if len(group) > 1):
        resolved = [d.resolve() for d in same]
        common = Path(os.path.commonpath([str(r.parent) for r in resolved]))
        relative = [r.relative_to(common) for r in resolved]
        candidates = ["_".join(rel.with_suffix("").parts) for rel in relative]
        if len(set(candidates)) < len(candidates):
            candidates = ["_".join(rel.parts).replace(".", "_") for rel in relative]
        labels.update(zip(same, candidates))
    several = len(distinct) > 1
    out = {}
    for d in distinct:
        if "{name}" in template.name:
            out[d] = template.with_name(template.name.replace("{name}", labels[d]))
        elif several:
            out[d] = template.with_name(f"{template.stem}_{labels[d]}{template.suffix}")
        else:
            out[d] = template
    return out
