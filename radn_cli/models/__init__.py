"""The networks radn scores with, one module each:

* :mod:`.radn`: RADN and its WResNet baseline exactly as the authors' code defines them (their
  checkpoints load as they are), on 32x32 patches;
* :mod:`.lite`: RADN-Lite, RADN's deformable step, patch attention, heads and weighted pooling on
  the features of a pretrained trunk (:mod:`.efficientnet_lite`) run over the whole image.

A weights file names its architecture (``config`` metadata, ``arch``); :func:`config_from_json` and
:func:`build` turn it into a model.
"""

from __future__ import annotations

import json

from torch import nn

from .lite import ARCH as LITE
from .lite import RADNLite, RADNLiteConfig
from .radn import ARCHITECTURES as PATCH_ARCHITECTURES
from .radn import RADN, RADNConfig, RADNOutput

ARCHITECTURES = (*PATCH_ARCHITECTURES, LITE)
ModelConfig = RADNConfig | RADNLiteConfig

__all__ = [
    "ARCHITECTURES",
    "RADN",
    "RADNConfig",
    "RADNLite",
    "RADNLiteConfig",
    "RADNOutput",
    "build",
    "config_from_json",
]


def config_from_json(text: str) -> ModelConfig:
    """The model config stored in a weights file; ValueError/TypeError when it is not one."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the model config is not a JSON object")
    if data.get("arch") == LITE:
        return RADNLiteConfig(**data)
    return RADNConfig(**data)


def build(config: ModelConfig) -> nn.Module:
    return RADNLite(config) if isinstance(config, RADNLiteConfig) else RADN(config)


def is_whole_image(model_or_config) -> bool:
    """True for architectures that run on whole images (RADN-Lite), False for RADN's patches."""
    config = getattr(model_or_config, "config", model_or_config)
    return isinstance(config, RADNLiteConfig)
