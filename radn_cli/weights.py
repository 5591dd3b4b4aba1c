"""Weights: where they are found, how they are loaded and checked, saved, and converted.

Our format is a safetensors file holding the reference code's state-dict names, plus string metadata:
format and version, architecture and model config, training data, score scale and direction,
measured metrics, and the sha256 of the tensors (checked at every load).

Lookup order: ``--weights PATH``, then ``$RADN_WEIGHTS``, then ``default.safetensors`` in the user
data folder (``$RADN_DATA_DIR`` or platformdirs' user data dir for "radn", subfolder ``weights``),
then the default shipped inside the package.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .atomic import atomic_write
from .errors import WeightsError, first_line
from .models import ModelConfig, RADNConfig, build, config_from_json
from .models.radn import RADN

FORMAT = "radn-weights"
FORMAT_VERSION = "1"
DEFAULT_FILENAME = "default.safetensors"
ENV_WEIGHTS = "RADN_WEIGHTS"
ENV_DATA_DIR = "RADN_DATA_DIR"
REQUIRED_METADATA = ("format", "format_version", "name", "architecture", "config", "sha256")


def user_data_dir() -> Path:
    """The user's radn folder: $RADN_DATA_DIR if set, else the platform's user data dir."""
    override = os.environ.get(ENV_DATA_DIR)
    if override:
        return Path(override)
    import platformdirs  # needed only without $RADN_DATA_DIR (benchmarks set it): its import is spared

    return platformdirs.user_data_path("radn", appauthor=False)


def user_weights_dir() -> Path:
    return user_data_dir() / "weights"


def shipped_weights_path() -> Path:
    return Path(str(resources.files("radn_cli.shipped") / DEFAULT_FILENAME))


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    source: str  # "--weights", "$RADN_WEIGHTS", "user data dir" or "shipped default"


def resolve_weights(explicit: str | Path | None = None) -> ResolvedWeights:
    """The weights file to use; WeightsError naming every searched place when there is none."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError("weights file not found (given with --weights)", path)
        return ResolvedWeights(path, "--weights")
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file not found (named by ${ENV_WEIGHTS})", path)
        return ResolvedWeights(path, f"${ENV_WEIGHTS}")
    candidates = [
        (user_weights_dir() / DEFAULT_FILENAME, "user data dir"),
        (shipped_weights_path(), "shipped default"),
    ]
    for path, source in candidates:
        if path.is_file():
            return ResolvedWeights(path, source)
    searched = "; ".join(str(path) for path, _ in candidates)
    raise WeightsError(
        "no RADN weights are installed (searched --weights, $RADN_WEIGHTS, "
        f"{searched}); pass --weights FILE, or make weights with `radn train` or `radn weights convert`"
    )


# ---- checksums and metadata -----------------------------------------------------------------------


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes of the tensors, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{str(tensor.dtype)}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.flatten().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsInfo:
    path: Path
    metadata: dict[str, str]
    config: ModelConfig

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def sha256(self) -> str:
        return self.metadata["sha256"]

    @property
    def weights_id(self) -> str:
        """Short identity written next to every score: name@first 12 hex digits of the sha256."""
        return f"{self.name}@{self.sha256[:12]}"

    @property
    def higher_is_better(self) -> bool:
        return self.metadata.get("score_direction", "higher_is_better") == "higher_is_better"

    @property
    def metrics(self) -> dict:
        try:
            return json.loads(self.metadata.get("metrics", "{}"))
        except json.JSONDecodeError:
            return {}

    @property
    def rated_training_sets(self) -> tuple[str, ...]:
        """The human-rated databases whose ratings trained these weights (``radn train --db``
        records them in ``training_data``: :func:`rated_training_note`)."""
        return tuple(_RATED.findall(self.metadata.get("training_data", "")))

    def trained_on(self, *names: str) -> str | None:
        """The rated training database that is one of ``names`` (a database folder, file or name)
        up to its variant ("tid2013_dev", "TID2013" and "tid2013-full" are one database), or None."""
        wanted = {key for key in map(_database_key, names) if key}  # '' (a name like '_x') names nothing
        return next((rated for rated in self.rated_training_sets if _database_key(rated) in wanted), None)


_RATED_PHRASE = "human ratings of"  # how training_data names a rated database (rated_training_note)
_RATED = re.compile(_RATED_PHRASE + r" ([^\s;,()]+)")


def rated_training_note(database: str, how: str) -> str:
    """The part of a weights file's ``training_data`` that names a human-rated training database
    (``radn train --db``), as :attr:`WeightsInfo.rated_training_sets` reads it back."""
    return f"{_RATED_PHRASE} {database} ({how})"


def _database_key(name: str) -> str:
    """A database's name without its variant: 'tid2013_dev', 'TID2013', 'tid2013-full' -> 'tid2013'."""
    return re.split(r"[^0-9a-z]", name.strip().lower(), maxsplit=1)[0]


_JSON_FIELDS = ("config", "metrics", "recipe")  # metadata values that hold JSON documents
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


def info_document(info: WeightsInfo, *, found_by: str) -> dict:
    """A weights file's metadata as one JSON-ready document (`radn weights info`): safetensors keeps
    every value as text, so JSON documents come back as objects and numbers as numbers."""
    document: dict = {"weights": info.weights_id, "path": str(info.path), "found_by": found_by}
    document["checksum"] = "ok"
    for key, value in info.metadata.items():
        if key in _JSON_FIELDS:
            try:
                document[key] = json.loads(value)
                continue
            except json.JSONDecodeError:
                pass
        if _NUMBER.match(value) and key not in ("sha256", "name"):
            document[key] = float(value) if any(c in value for c in ".eE") else int(value)
        else:
            document[key] = value
    document.setdefault("metrics", {})
    return document


def read_info(path: str | Path) -> WeightsInfo:
    """Metadata of a weights file, read from its header only (no tensors are loaded)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError("weights file not found", path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = first_line(exc) or type(exc).__name__
        message = f"not a readable safetensors file (truncated or corrupt?): {reason}"
        raise WeightsError(message, path) from exc
    if metadata.get("format") != FORMAT:
        raise WeightsError(
            "not radn weights (no radn metadata); convert a reference checkpoint with `radn weights convert`",
            path,
        )
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise WeightsError(f"weights metadata lacks {', '.join(missing)}", path)
    if metadata["format_version"] != FORMAT_VERSION:
        raise WeightsError(
            f"weights format version {metadata['format_version']} is not supported "
            f"(this radn reads {FORMAT_VERSION})",
            path,
        )
    try:
        config = config_from_json(metadata["config"])
    except (ValueError, TypeError) as exc:
        reason = first_line(exc) or type(exc).__name__
        raise WeightsError(f"invalid model config in metadata: {reason}", path) from exc
    return WeightsInfo(path, metadata, config)


@dataclass
class LoadedWeights:
    info: WeightsInfo
    model: torch.nn.Module = field(repr=False)  # RADN or RADNLite


def load_weights(path: str | Path, *, verify: bool = True) -> LoadedWeights:
    """A ready model (eval mode, fp32, CPU) from a radn weights file, checksum verified."""
    info = read_info(path)
    try:
        with safe_open(str(info.path), framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(
            f"cannot read tensors (truncated or corrupt?): {first_line(exc) or type(exc).__name__}", info.path
        ) from exc
    if verify and tensors_sha256(tensors) != info.sha256:
        raise WeightsError(
            "sha256 of the tensors does not match the metadata: the file is corrupt or altered", info.path
        )
    with torch.device("meta"):  # no random initialisation, no second copy of the weights
        model = build(info.config)
    load_state_dict_checked(model, tensors, info.path, assign=True)
    return LoadedWeights(info, model.float().eval())


def load_state_dict_checked(
    model: torch.nn.Module, tensors: dict[str, torch.Tensor], path: str | Path, *, assign: bool = False
) -> None:
    """Strict load that names the offending keys in one line instead of PyTorch's multi-line error."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = [
        f"{k} {tuple(tensors[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in sorted(set(expected) & set(tensors))
        if tensors[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_few(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shapes: {_few(wrong_shape)}")
    if problems:
        raise WeightsError(f"weights do not fit a {model.config.arch} model; " + "; ".join(problems), path)
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=True, assign=assign)


def save_weights(
    model_or_state: torch.nn.Module | dict[str, torch.Tensor],
    path: str | Path,
    *,
    config: ModelConfig | None = None,
    name: str,
    dtype: torch.dtype = torch.float32,
    training_data: str = "unknown",
    score_scale: str = "unknown",
    score_direction: str = "higher_is_better",
    metrics: dict | None = None,
    extra: dict[str, str] | None = None,
) -> WeightsInfo:
    """Write a radn weights file (tensors in ``dtype``) with full metadata; returns its info."""
    if isinstance(model_or_state, torch.nn.Module):
        config = model_or_state.config
        state = model_or_state.state_dict()
    else:
        state = model_or_state
    if config is None:
        raise ValueError("config is required when saving a bare state dict")
    if score_direction not in ("higher_is_better", "lower_is_better"):
        raise ValueError(f"invalid score direction {score_direction!r}")
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state.items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "architecture": config.arch,
        "config": config.to_json(),
        **_architecture_metadata(config),
        "dtype": str(dtype).removeprefix("torch."),
        "training_data": training_data,
        "score_scale": score_scale,
        "score_direction": score_direction,
        "metrics": json.dumps(metrics or {}, sort_keys=True),
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sha256": tensors_sha256(tensors),
        **(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, durable=True) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return read_info(path)


def _architecture_metadata(config: ModelConfig) -> dict[str, str]:
    """What a whole-image architecture adds to the metadata: its trunk and input normalisation."""
    if isinstance(config, RADNConfig):
        return {}
    return {"trunk": config.trunk, "input_norm": config.input_norm}


# metadata keys that save_weights writes from its arguments (the rest travels as ``extra``)
_WRITTEN = {
    "format",
    "format_version",
    "name",
    "architecture",
    "config",
    "trunk",
    "input_norm",
    "dtype",
    "created",
    "sha256",
}
_GIVEN = {"training_data", "score_scale", "score_direction", "metrics"}


def save_with_metadata(
    state: dict[str, torch.Tensor],
    path: str | Path,
    metadata: dict[str, str],
    *,
    dtype: torch.dtype,
    metrics: dict | None = None,
    extra: dict[str, str] | None = None,
) -> WeightsInfo:
    """Write ``state`` as a radn weights file that keeps another file's ``metadata`` (name, scale,
    recipe and the rest); identity fields (sha256, dtype, created) are made anew, ``metrics`` (when
    given) replaces the old ones and ``extra`` adds or replaces keys."""
    kept = {k: v for k, v in metadata.items() if k not in _WRITTEN | _GIVEN}
    return save_weights(
        state,
        path,
        config=config_from_json(metadata["config"]),
        name=metadata["name"],
        dtype=dtype,
        training_data=metadata.get("training_data", "unknown"),
        score_scale=metadata.get("score_scale", "unknown"),
        score_direction=metadata.get("score_direction", "higher_is_better"),
        metrics=json.loads(metadata.get("metrics", "{}")) if metrics is None else metrics,
        extra={**kept, **(extra or {})},
    )


# ---- conversion of the authors' checkpoints -------------------------------------------------------


def clean_state_dict(obj: object, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint: unwrap {"state_dict": ...}, strip DataParallel's ``module.``."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError("checkpoint is not a state dict of tensors", path)
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}


def detect_config(tensors: dict[str, torch.Tensor], path: str | Path) -> RADNConfig:
    """RADN (with or without deformable step / attention) or WResNet, recognised from the keys."""
    if "conv21.weight" in tensors:
        return RADNConfig(
            arch="radn",
            deformable="conv_offset.weight" in tensors,
            attention="Nonlocal1.theta.weight" in tensors,
        )
    if "conv20.weight" in tensors and "fc1_q.weight" in tensors:
        return RADNConfig.wresnet()
    raise WeightsError("checkpoint is neither RADN nor WResNet (no conv21 / conv20 and fc1_q keys)", path)


def convert_checkpoint(
    src: str | Path, dst: str | Path, *, name: str | None = None, dtype: torch.dtype = torch.float32
) -> WeightsInfo:
    """Convert an authors' checkpoint (legacy or zip ``torch.save`` of a state dict) to radn weights."""
    src = Path(src)
    if not src.is_file():
        raise WeightsError("checkpoint not found", src)
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types here (UnpicklingError, RuntimeError, EOFError, ...)
        raise WeightsError(
            f"cannot load checkpoint safely (weights_only=True): {first_line(exc) or type(exc).__name__}", src
        ) from exc
    tensors = clean_state_dict(obj, src)
    config = detect_config(tensors, src)
    model = RADN(config)
    load_state_dict_checked(model, tensors, src)
    return save_weights(
        model,
        dst,
        name=name or src.stem,
        dtype=dtype,
        training_data=f"unknown: converted from the checkpoint {src.name}",
        score_scale="as trained by the checkpoint's authors (the reference code regresses MOS / max MOS)",
        score_direction="higher_is_better",
        extra={"source": f"converted from {src.name} by radn weights convert"},
    )


def install_weights(src: str | Path) -> Path:
    """Verify a weights file and copy it to the user data dir as the default."""
    load_weights(src)
    target = user_weights_dir() / DEFAULT_FILENAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, durable=True) as temporary:
        shutil.copyfile(src, temporary)
    return target


def list_weights() -> list[tuple[str, Path]]:
    """Every weights file radn can see, with where it was found, in lookup order."""
    found: list[tuple[str, Path]] = []
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        found.append((f"${ENV_WEIGHTS}", Path(env)))
    user = user_weights_dir()
    if user.is_dir():
        found.extend(("user data dir", p) for p in sorted(user.glob("*.safetensors")))
    shipped = shipped_weights_path()
    if shipped.is_file():
        found.append(("shipped default", shipped))
    return found


def _few(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")
