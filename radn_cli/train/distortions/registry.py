"""The distortion table's record type and the ``@register`` decorator that builds it.

Every category module writes each type's row (:class:`DistortionType`: id, names, what the parameter
means, its five level values) as ``@register(...)`` directly above the function that implements it;
the package's ``__init__`` imports the category modules and assembles the rows, in id order, into
``DISTORTIONS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from torch import Generator, Tensor

Implementation = Callable[[Tensor, float, Generator | None], Tensor]
"""What every type's function looks like: ``f(x, value, generator)`` -> distorted ``x``."""


@dataclass(frozen=True)
class DistortionType:
    """One KADID-10k distortion type.

    ``id`` is 1..25, ``name`` a short identifier, ``label`` the name in KADID's label file
    (``dis_type`` column), ``parameter`` what the level values mean, ``levels`` the five values that
    ``imdist_generator.m`` passes for levels 1..5, ``random`` whether the type draws random numbers,
    ``codec`` whether it runs on the CPU through Pillow (one image at a time), and ``function`` the
    implementation: ``function(x, value, generator)`` on a min-max-stretched float32 batch
    ``[B, 3, H, W]`` with ``value`` one of ``levels``.
    """

    id: int
    name: str
    label: str
    parameter: str
    levels: tuple[float, float, float, float, float]
    random: bool = False
    codec: bool = False
    function: Implementation | None = field(default=None, repr=False, compare=False)

    def value(self, level: int) -> float:
        """The parameter for ``level`` (1..5)."""
        return self.levels[_check_level(level) - 1]


def _check_level(level: int) -> int:
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 1 <= int(level) <= 5:
        raise ValueError(f"level must be an integer 1..5, not {level!r}")
    return int(level)


_REGISTERED: dict[int, DistortionType] = {}


def register(
    type_id: int,
    name: str,
    label: str,
    *,
    parameter: str,
    levels: tuple[float, float, float, float, float],
    random: bool = False,
    codec: bool = False,
) -> Callable[[Implementation], Implementation]:
    """Decorator: the table row of KADID-10k type ``type_id``, written right above its implementation.

    The arguments are the fields of :class:`DistortionType`. The decorated function is recorded with
    its row (see :func:`table`) and returned unchanged.
    """

    def decorator(function: Implementation) -> Implementation:
        spec = DistortionType(
            type_id, name, label, parameter, tuple(levels), random=random, codec=codec, function=function
        )
        old = _REGISTERED.get(type_id)
        if old is not None and old.name != name:
            raise ValueError(f"distortion id {type_id} registered twice ({old.name!r}, {name!r})")
        _REGISTERED[type_id] = spec
        return function

    return decorator


def table() -> tuple[DistortionType, ...]:
    """The registered types in id order; the ids must run 1..N without gaps."""
    ids = sorted(_REGISTERED)
    if ids != list(range(1, len(ids) + 1)):
        raise RuntimeError(f"distortion ids must run 1..N without gaps, got {ids}")
    return tuple(_REGISTERED[i] for i in ids)
