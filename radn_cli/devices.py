"""Devices, precisions and process memory settings: shared by scoring, evaluation and training.

Owns: resolving ``--device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``), validating ``--precision``
against the device and the job (fp16 is for CUDA; training runs in fp32 or bf16), whether this CPU
has bf16 kernels, the default patches per forward pass, real fp32 on CUDA, and the allocator
setting the CLI uses. The precision names themselves live in ``constants`` (no torch there), so the
CLI can offer them before PyTorch loads.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

import torch

from .constants import PRECISION_NAMES
from .errors import DeviceError


def keep_freed_memory() -> bool:
    """Let this process reuse freed memory instead of returning it to the OS (Linux, glibc only).

    Scoring allocates and frees activations of tens of MiB per layer. By default glibc serves each
    with a fresh mmap and unmaps it on free, so every layer page-faults its output in again:
    measured on 2 CPU cores, a 288x288 pair in fp32 takes 0.60 s with the default and 0.51 s with
    this. The price is that the resident size stays near its peak until the process exits, which
    suits a command-line run; the CLI calls this, the library never does by itself. Returns whether
    the C library accepted the settings.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter is linked with
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    m_trim_threshold, m_mmap_threshold, limit = -1, -3, 1 << 30
    return bool(mallopt(m_mmap_threshold, limit)) and bool(mallopt(m_trim_threshold, limit))


PRECISIONS: dict[str, torch.dtype] = dict(
    zip(PRECISION_NAMES, (torch.float32, torch.bfloat16, torch.float16), strict=True)
)
# patches per forward pass when none is given: the CPU gains nothing past a few hundred (and memory
# grows with it); a GPU needs thousands to be kept busy (about 2 GiB of activations in bf16)
DEFAULT_BATCH_SIZE = {"cpu": 256, "cuda": 2048}


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that memory ran out: ``MemoryError``, PyTorch's ``OutOfMemoryError`` (a
    GPU), or the ``RuntimeError`` of its CPU allocator ("DefaultCPUAllocator: can't allocate memory").
    Any other ``RuntimeError`` (a wrong shape, say) is a bug, not a lack of memory."""
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def default_batch_size(device: torch.device) -> int:
    return DEFAULT_BATCH_SIZE.get(device.type, DEFAULT_BATCH_SIZE["cpu"])


def cpu_has_bf16_kernels() -> bool:
    """Whether oneDNN has real bf16 kernels on this CPU (AVX-512 or AMX, or Arm's bf16).

    Without them PyTorch falls back to reference code: measured on an AVX2-only 2-core AMD EPYC, a
    64-channel 3x3 convolution took 4.9 s in bf16 against 0.15 s in fp32 (32x slower).
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without the check: judge by the vector ISA
        return torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX")


def precision_warning(precision: str, device: torch.device) -> str | None:
    """A one-line warning when the precision asked for is much slower than fp32 on this device."""
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16_kernels():
        return (
            "this CPU has no bf16 kernels (they need AVX-512 or AMX), so bf16 runs many times slower "
            "than fp32 here; use --precision fp32"
        )
    return None


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'; DeviceError otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} requested but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return device


def check_precision(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of a precision name on this device; DeviceError naming what to use instead when the
    combination is not available. (Which precisions training offers: ``train.config``.)"""
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise DeviceError("fp16 is for CUDA devices; use bf16 or fp32 on the CPU")
    return PRECISIONS[precision]


@contextlib.contextmanager
def exact_fp32(device: torch.device, dtype: torch.dtype):
    """fp32 means fp32 on CUDA too: cuDNN's TF32 convolutions (PyTorch's default, 10-bit mantissa
    products) are turned off while scoring in fp32, and the setting is restored afterwards. bf16 and
    fp16 are what to ask for when speed matters more."""
    if device.type != "cuda" or dtype != torch.float32:
        yield
        return
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous
