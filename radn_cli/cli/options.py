"""Options that several commands share: weights, device, precision, batch size, workers, verbosity,
the viewing scale, and the heatmap's map and colour range.

Each is defined once, with its help text and default, so that every command offers it the same way.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..constants import PRECISION_NAMES
from ..errors import UsageError

WeightsOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--weights",
        "-w",
        help="Weights file. Default: $RADN_WEIGHTS, else the one installed in the user data dir, "
        "else the shipped weights.",
        dir_okay=False,
        show_default=False,
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA when available), cpu, cuda or cuda:N.")]
BatchOpt = Annotated[
    Optional[int],
    typer.Option(
        "--batch-size",
        "-b",
        min=1,
        help="Patches per forward pass (RADN) or per trunk tile (RADN-Lite): bounds memory, does not "
        "change the score (RADN-Lite: within 1e-4). Default: 256 on the CPU, 2048 on CUDA (RADN-Lite: "
        "4096, 16384).",
        show_default=False,
    ),
]

Precision = Enum("Precision", {name: name for name in PRECISION_NAMES}, type=str)
Precision.__doc__ = "--precision values; a choice, so that a typo is a usage error (exit 2) listing them."

PrecisionOpt = Annotated[
    Precision,
    typer.Option(
        "--precision",
        "-p",
        help="fp32; bf16 (fast on GPUs and on CPUs with AVX-512 or AMX); fp16 (GPU only).",
        case_sensitive=False,
    ),
]
TrainPrecisionOpt = Annotated[
    Optional[Precision],
    typer.Option(
        "--precision",
        "-p",
        help="fp32 or bf16 (fp16 is not offered for training). Default: fp32, or the --config file's.",
        case_sensitive=False,
        show_default=False,
    ),
]
WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers", min=0, help="Threads decoding images ahead (0: 2 on the CPU, up to 8 on CUDA)."
    ),
]
PairsPerStepOpt = Annotated[
    int,
    typer.Option(
        "--pairs-per-step",
        min=0,
        help="Pairs scored together (0: 1 on the CPU, on CUDA enough to fill --batch-size, up to 64).",
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks and details.")]


def precision_name(precision: Precision | str | None) -> str | None:
    return precision.value if isinstance(precision, Enum) else precision


MapOpt = Annotated[
    str,
    typer.Option(
        "--map",
        metavar="<scores|weights|product>",
        help="Map drawn: scores (per-patch quality: where it is lost), weights (how much each patch "
        "counts: where the model looks, not where it sees damage) or product (w_i * s_i / sum w: what "
        "each patch adds to the score; 'contribution' is its former name).",
    ),
]
RangeOpt = Annotated[
    str,
    typer.Option(
        "--range",
        metavar="<fixed|auto|LO,HI>",
        help="Colours of the map: fixed (scores on the weights' scale, e.g. 1..5, the same for every "
        "image, so that maps compare; weights and product have no fixed scale and span their own "
        "min..max), auto (each map's own min..max) or LO,HI.",
    ),
]


def check_map_options(kind: str, value_range: str) -> tuple[str, str | tuple[float, float]]:
    """--map and --range as the heatmap package names them (a usage error, exit 2, if unknown)."""
    from ..heatmap.choices import MAPS, canonical_map, parse_range

    try:
        kind = canonical_map(kind)
    except ValueError:
        raise UsageError(f"--map must be one of {', '.join(MAPS)}, not {kind!r}") from None
    try:
        return kind, parse_range(value_range)
    except ValueError as exc:
        raise UsageError(f"--range {exc}") from None


ScaleOpt = Annotated[
    str,
    typer.Option(
        "--scale",
        metavar="<native|PIXELS|FACTOR>",
        help="Size the pairs are scored at: native (as they are), the long side in pixels (a whole "
        "number, e.g. 1024: a photo seen whole on a screen; much faster for large images) or a factor "
        "(e.g. 0.5). Both images are resized alike (antialiased), never enlarged; the scale is recorded "
        "with the scores.",
    ),
]


def check_scale(text: str):
    """--scale as a ``viewing.Scale`` (a usage error, exit 2, when it is not one)."""
    from ..viewing import parse_scale

    try:
        return parse_scale(text)
    except ValueError as exc:
        raise UsageError(f"--scale {exc}") from None
