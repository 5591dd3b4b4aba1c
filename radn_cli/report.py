"""Plain data records for scores: what `radn score --json` and `radn batch` write. No Typer, no Rich."""

from __future__ import annotations

import math
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


def format_score(score: float) -> str:
    """Score as printed on stdout: fixed 6 decimals (JSON and CSV keep full precision)."""
    return f"{score:.6f}"


def heatmap_path(template: Path, dist: Path, several: bool) -> Path:
    """Where the heatmap of one distorted image goes: the template itself, or with the image's name."""
    if "{name}" in template.name:
        return template.with_name(template.name.replace("{name}", dist.stem))
    if several:
        return template.with_name(f"{template.stem}_{dist.stem}{template.suffix}")
    return template
