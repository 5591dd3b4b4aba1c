"""`radn weights list | info | convert | install`: see, check and install model weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import RadnError
from .console import error, load_torch
from .inputs import check_inputs, check_outputs
from .options import VerboseOpt


def weights_list(verbose: VerboseOpt = False) -> None:
    """Every weights file radn can see, in lookup order (the first is used)."""
    load_torch()
    from ..weights import list_weights, read_info

    found = list_weights()
    if not found:
        raise RadnError("no RADN weights are installed; see `radn weights --help`")
    for source, path in found:
        try:
            info = read_info(path)
            sys.stdout.write(f"{info.weights_id}\t{info.config.arch}\t{source}\t{path}\n")
        except RadnError as exc:
            sys.stdout.write(f"(unreadable)\t-\t{source}\t{path}\n")
            error(str(exc), verbose)


def weights_info(
    path: Annotated[
        Optional[Path], typer.Argument(help="Weights file (default: the one in use).", show_default=False)
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Metadata of a weights file as JSON: model, training data and recipe, score scale and direction,
    metrics. The checksum is verified."""
    if path is not None:
        check_inputs(path)
    load_torch()
    from ..weights import info_document, load_weights, resolve_weights

    if path is None:
        resolved = resolve_weights(None)
        path, found_by = resolved.path, resolved.source
    else:  # read as named (resolve_weights would call a missing file "given with --weights")
        found_by = "argument"
    info = load_weights(path).info  # verifies the checksum
    sys.stdout.write(json.dumps(info_document(info, found_by=found_by), indent=2) + "\n")


def weights_convert(
    checkpoint: Annotated[
        Path, typer.Argument(help="Authors' checkpoint (torch.save state dict).", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="safetensors file to write.", dir_okay=False, show_default=False),
    ],
    name: Annotated[
        Optional[str],
        typer.Option("--name", help="Weights name. Default: the file name.", show_default=False),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Convert a reference-code checkpoint (RADN or WResNet, legacy format, `module.` prefix) to radn weights.

    Loads with torch.load(weights_only=True): no arbitrary code from the file is run.
    """
    check_inputs(checkpoint)
    check_outputs(output)
    load_torch()
    from ..weights import convert_checkpoint

    info = convert_checkpoint(checkpoint, output, name=name)
    sys.stdout.write(f"{info.weights_id}\t{info.config.arch}\t{output}\n")


def weights_install(
    path: Annotated[
        Path, typer.Argument(help="radn weights file to make the user's default.", show_default=False)
    ],
    verbose: VerboseOpt = False,
) -> None:
    """Verify a weights file and copy it to the user data dir, where it becomes the default."""
    check_inputs(path)
    load_torch()
    from ..weights import install_weights

    sys.stdout.write(f"{install_weights(path)}\n")
