"""Produce tests/golden/golden.json: RADN / WResNet outputs of the authors' reference code (IIGROUP/RADN
at commit be1ae49) with the deterministic weights of ``seeded.py`` on the PNG pairs in this folder.

Usage (from the repository root; the reference checkout is NOT part of this repository)::

    git -C <bare clone of IIGROUP/RADN> archive be1ae49 -- main.py model | tar -x -C /tmp/radn_ref
    .venv/bin/python tests/golden/make_golden.py /tmp/radn_ref            # writes tests/golden/golden.json
    .venv/bin/python tests/golden/make_golden.py /tmp/radn_ref --out /tmp/golden2.json

What is run, and what had to be substituted so that the 2021 code runs on a current PyTorch:

* ``model/Deform.py`` calls ``torch.ops.torchvision.deform_conv2d`` with the pre-0.9 torchvision
  signature (no mask).  Before importing ``model.RADN`` a stub module ``model.Deform`` is put into
  ``sys.modules`` whose ``DeformConv2d`` is ``torchvision.ops.DeformConv2d`` (same constructor
  arguments, same parameters ``weight`` [256, 256, 3, 3] and ``bias`` [256], same DCNv1 operation
  when no mask is given).  Nothing else of the model code is changed.
* ``model/BlurPooling.py`` and ``model/L2Pooling.py`` (unused with ``pooling=0``) import fine with
  numpy and are used as they are.
* ``main.py`` is imported as a module to use its own ``NonOverlappingCropPatches``.  Its top-level
  imports of packages that are not installed (pytorch-ignite, tensorboardX, h5py; whichever are
  missing) are satisfied by empty stub modules; none of them is used by that function.  The list of
  stubbed modules is recorded in golden.json.
* The files of the checkout are checked against their git blob ids at be1ae49 before anything runs.

Per architecture (``RADN(weighted_average=True, pooling=0)`` and ``WResNet(weighted_average=True,
pooling=0)``) and dtype (float64 and float32), the model is built, converted to the dtype *first*
(``model.double()``; converting after loading would round the weights to float32), loaded with
``seeded_state_dict({name: shape}, seed)`` using ``strict=True`` (float64 values, rounded to nearest
float32 by ``load_state_dict`` in the float32 run), put in eval mode (the only train/eval difference is
the two dropouts: there is no BatchNorm) and run under ``torch.no_grad()`` on
``(dist_patches[None], ref_patches[None])`` from ``NonOverlappingCropPatches(dist, ref)``:

* inputs are the reference's ``to_tensor`` output (float32 ``k / 255``); for the float64 run they are
  widened with ``.double()``, i.e. they are float32(k/255) exactly, not float64 k/255.
* ``patch_scores``: output of ``fc2_q`` (forward hook), one per patch, row-major.
* ``patch_weights``: ``F.relu(fc2_w output) + 0.000001`` computed in a forward hook with the same
  operations as the reference forward, one per patch.
* ``score``: the model output.  The reference allocates its output buffer with
  ``torch.ones((batch, 1))``, i.e. in the *default* dtype, so an unmodified float64 run returns the
  score rounded to float32.  To record the full-precision score the forward is run with
  ``torch.set_default_dtype(<run dtype>)``; the unmodified output (default dtype float32) is recorded
  as ``score_reference_output``.  The script asserts that ``score == sum(s * w) / sum(w)`` recomputed
  from the hooked tensors (bit-exact) and that ``float32(score) == score_reference_output``.
* ``grid``: [rows, cols]; the script asserts that the reference function returned exactly
  rows * cols patches equal to the row-major 32x32 tiles of the image.

Everything is single-threaded (``torch.set_num_threads(1)``) and the output has no timestamps, so a
rerun on the same machine gives a byte-identical file.  float32 results may differ in the last bits on
another CPU (different SIMD kernels); float64 results agree to ~1e-12 relative.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import math
import platform
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import seeded  # noqa: E402

REFERENCE_COMMIT = "be1ae49e62dad99d71b562b9f02db115b79c88c0"
# git blob ids of the reference files at be1ae49 (``git rev-parse be1ae49:<path>``).
REFERENCE_BLOBS = {
    "main.py": "56d695e89d5e2b8b8e67e2a64c6c865f984cf374",
    "model/RADN.py": "eaaa51d9852760b1acc75598d7301854f0326ad3",
    "model/WResNet.py": "7c120062f68011c514803b21b6fded2c85bd190e",
    "model/Nonlocal.py": "1647d4d1ca36a03b0c3de91ed051bf3f60b1816b",
    "model/Deform.py": "d103efc0e60d5127de06701450454e74cb440b74",
    "model/BlurPooling.py": "1ab93230662ba3496c78d6c4c4e44e0f63e96618",
    "model/L2Pooling.py": "232d3a4b481573c17ba5515f7a430fa367449cde",
}
# Modules that main.py imports at top level but NonOverlappingCropPatches does not use.
MAIN_STUBS = {
    "ignite": {},
    "ignite.engine": {"Events": None, "create_supervised_trainer": None, "create_supervised_evaluator": None},
    "ignite.metrics": {},
    "ignite.metrics.metric": {"Metric": object},
    "tensorboardX": {"SummaryWriter": None},
    "h5py": {},
    "scipy": {"stats": None},
}
# (name, distorted file, reference file, what it is)
PAIRS = [
    ("a_identical", "ref_a.png", "ref_a.png", "identical pair, 96x128"),
    ("a_jpeg23", "dist_a.png", "ref_a.png", "Pillow JPEG quality 23, 96x128"),
    ("b_identical", "ref_b.png", "ref_b.png", "identical pair, 100x140 (remainder dropped)"),
    ("b_noise005", "dist_b.png", "ref_b.png", "Gaussian noise sigma 0.05, 100x140 (remainder dropped)"),
]
DTYPES = {"float64": torch.float64, "float32": torch.float32}
PATCH = 32


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def check_reference(ref_dir: Path) -> None:
    for rel, blob in REFERENCE_BLOBS.items():
        got = git_blob_id((ref_dir / rel).read_bytes())
        if got != blob:
            raise SystemExit(f"{ref_dir / rel}: git blob {got}, expected {blob} (commit be1ae49)")


def load_reference(ref_dir: Path):
    """Import RADN, WResNet and NonOverlappingCropPatches from the checkout; return them and the stubs."""
    sys.path.insert(0, str(ref_dir))
    deform = types.ModuleType("model.Deform")
    deform.DeformConv2d = torchvision.ops.DeformConv2d
    deform.__all__ = ["DeformConv2d"]
    sys.modules["model.Deform"] = deform
    radn_cls = importlib.import_module("model.RADN").RADN
    wresnet_cls = importlib.import_module("model.WResNet").WResNet
    stubbed = []
    for name, attrs in MAIN_STUBS.items():
        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            for key, value in attrs.items():
                setattr(module, key, value)
            sys.modules[name] = module
            stubbed.append(name)
    main = importlib.import_module("main")
    return radn_cls, wresnet_cls, main.NonOverlappingCropPatches, stubbed


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def load_rgb(name: str) -> Image.Image:
    return Image.open(HERE / name).convert("RGB")


def cut(crop, dist_name: str, ref_name: str):
    """Patches from the reference's NonOverlappingCropPatches, checked against row-major tiling."""
    dist, ref = load_rgb(dist_name), load_rgb(ref_name)
    d, r = crop(dist, ref)
    width, height = dist.size
    rows, cols = height // PATCH, width // PATCH
    assert d.shape == r.shape == (rows * cols, 3, PATCH, PATCH), (d.shape, rows, cols)
    for img, patches in ((dist, d), (ref, r)):
        full = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255)
        tiles = full[:, : rows * PATCH, : cols * PATCH]
        tiles = tiles.unflatten(1, (rows, PATCH)).unflatten(3, (cols, PATCH))
        tiles = tiles.permute(1, 3, 0, 2, 4).reshape(rows * cols, 3, PATCH, PATCH)
        assert torch.equal(tiles, patches), "patches are not the row-major 32x32 tiles"
    return d, r, [rows, cols]


def build(cls, dtype: torch.dtype, seed: int):
    model = cls(weighted_average=True, pooling=0).to(dtype)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(seeded.seeded_state_dict(shapes, seed), strict=True)
    return model.eval()


class Recorder:
    """Forward hooks on fc2_q / fc2_w (and RADN's offset / attention statistics)."""

    def __init__(self, model):
        self.data: dict[str, object] = {}
        model.fc2_q.register_forward_hook(self._q)
        model.fc2_w.register_forward_hook(self._w)
        if hasattr(model, "conv_offset"):
            model.conv_offset.register_forward_hook(self._offset)
            model.Nonlocal1.register_forward_hook(self._attention("Nonlocal1"))
            model.Nonlocal2.register_forward_hook(self._attention("Nonlocal2"))

    def _q(self, module, inputs, output):
        self.data["s"] = output.detach().clone()

    def _w(self, module, inputs, output):
        self.data["w"] = F.relu(output) + 0.000001

    def _offset(self, module, inputs, output):
        self.data["offset_rms_px"] = output.pow(2).mean().sqrt().item()
        self.data["offset_max_abs_px"] = output.abs().max().item()

    def _attention(self, name):
        def hook(module, inputs, output):
            x = inputs[0]
            theta = module.theta(x).view(1, module.inter_channels, -1).permute(0, 2, 1)
            phi = module.phi(x).view(1, module.inter_channels, -1)
            f = F.softmax(torch.matmul(theta, phi), -1)[0]
            entropy = -(f * f.clamp_min(1e-300).log()).sum(-1) / math.log(f.shape[-1])
            self.data[name] = {
                "row_entropy_over_logN_mean": entropy.mean().item(),
                "row_entropy_over_logN_min": entropy.min().item(),
                "row_max_prob_mean": f.max(-1).values.mean().item(),
                "residual_rel_norm": ((output - x).norm() / x.norm()).item(),
            }

        return hook


def run_case(model, rec: Recorder, d, r, dtype: torch.dtype):
    x, x_ref = d.unsqueeze(0).to(dtype), r.unsqueeze(0).to(dtype)
    with torch.no_grad():
        raw = model((x, x_ref))  # unmodified: output buffer in the default dtype (float32)
        with default_dtype(dtype):
            rec.data.clear()
            out = model((x, x_ref))
    s, w = rec.data["s"], rec.data["w"]
    assert out.dtype == dtype and out.shape == (1, 1)
    assert torch.equal(out[0, 0], torch.sum(s * w) / torch.sum(w)), "score != sum(s w) / sum(w)"
    assert raw.dtype == torch.float32 and torch.equal(raw, out.float())
    return out.item(), raw.item(), s.flatten().tolist(), w.flatten().tolist(), dict(rec.data)


def tensor_sha256(t: torch.Tensor) -> str:
    data = t.detach().to(torch.float64).contiguous().numpy().astype("<f8").tobytes()
    return hashlib.sha256(data).hexdigest()


def tiling_probe(crop) -> list[dict[str, object]]:
    """How many patches the reference's NonOverlappingCropPatches cuts for a few sizes."""
    out = []
    for h, w in [(96, 128), (100, 140), (288, 288), (96, 140), (100, 128), (64, 100), (50, 32)]:
        img = Image.new("RGB", (w, h))
        try:
            n = int(crop(img, img)[0].shape[0])
        except RuntimeError as exc:  # torch.stack of an empty tuple
            n = f"error: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        out.append({"hw": [h, w], "reference_patches": n, "floor_grid": [h // PATCH, w // PATCH]})
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="exported IIGROUP/RADN checkout at be1ae49")
    parser.add_argument("--out", type=Path, default=HERE / "golden.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    ref_dir = args.reference.resolve()
    check_reference(ref_dir)
    radn_cls, wresnet_cls, crop, stubbed = load_reference(ref_dir)

    patches = {name: cut(crop, dist, ref) for name, dist, ref, _ in PAIRS}
    cases, stats, fingerprints = [], {}, {}
    models = {}
    for arch, cls in (("RADN", radn_cls), ("WResNet", wresnet_cls)):
        for dtype_name, dtype in DTYPES.items():
            model = build(cls, dtype, args.seed)
            models[arch, dtype_name] = model
            rec = Recorder(model)
            if dtype_name == "float64":
                fingerprints[arch] = {k: tensor_sha256(v) for k, v in model.state_dict().items()}
            for name, dist, ref, what in PAIRS:
                d, r, grid = patches[name]
                score, raw, s, w, data = run_case(model, rec, d, r, dtype)
                cases.append(
                    {
                        "arch": arch,
                        "dtype": dtype_name,
                        "name": name,
                        "description": what,
                        "ref": ref,
                        "dist": dist,
                        "grid": grid,
                        "score": score,
                        "score_reference_output": raw,
                        "patch_scores": s,
                        "patch_weights": w,
                    }
                )
                if dtype_name == "float64":
                    extra = {k: v for k, v in data.items() if k not in ("s", "w")}
                    stats[f"{arch}/{name}"] = {
                        "patch_score_min": min(s),
                        "patch_score_max": max(s),
                        "patch_weight_min": min(w),
                        "patch_weight_max": max(w),
                        "patches_with_clipped_weight": sum(1 for v in w if v == 0.000001),
                        **extra,
                    }

    by_key = {(c["arch"], c["dtype"], c["name"]): c["score"] for c in cases}
    gaps = {}
    for arch in ("RADN", "WResNet"):
        for dtype_name in DTYPES:
            gaps[f"{arch}/{dtype_name}"] = {
                "a_identical_minus_a_jpeg23": by_key[arch, dtype_name, "a_identical"]
                - by_key[arch, dtype_name, "a_jpeg23"],
                "b_identical_minus_b_noise005": by_key[arch, dtype_name, "b_identical"]
                - by_key[arch, dtype_name, "b_noise005"],
            }
        for name, *_ in PAIRS:
            gaps[f"{arch}/float32_minus_float64/{name}"] = (
                by_key[arch, "float32", name] - by_key[arch, "float64", name]
            )
    for arch, dtype_name in models:
        assert abs(gaps[f"{arch}/{dtype_name}"]["a_identical_minus_a_jpeg23"]) > 1e-3

    # Sensitivity: +1e-3 on every element of conv7.weight, and exact float64 k/255 inputs instead of
    # float32(k/255) widened, both on the JPEG pair in float64.
    sensitivity = {}
    d, r, _ = patches["a_jpeg23"]
    for arch in ("RADN", "WResNet"):
        model = models[arch, "float64"]
        base = by_key[arch, "float64", "a_jpeg23"]
        with torch.no_grad(), default_dtype(torch.float64):
            model.conv7.weight.add_(1e-3)
            bumped = model((d.unsqueeze(0).double(), r.unsqueeze(0).double())).item()
            model.conv7.weight.sub_(1e-3)
            model.load_state_dict(
                seeded.seeded_state_dict(
                    {k: tuple(v.shape) for k, v in model.state_dict().items()}, args.seed
                ),
                strict=True,
            )
            exact_d = torch.round(d.double() * 255) / 255
            exact_r = torch.round(r.double() * 255) / 255
            exact = model((exact_d.unsqueeze(0), exact_r.unsqueeze(0))).item()
        sensitivity[arch] = {
            "conv7_weight_plus_1e-3_score_change": bumped - base,
            "exact_float64_k_over_255_inputs_score_change": exact - base,
        }

    golden = {
        "format": "radn-golden/1",
        "reference": {
            "repository": "https://github.com/IIGROUP/RADN",
            "commit": REFERENCE_COMMIT,
            "commit_short": "be1ae49",
            "files_git_blobs": REFERENCE_BLOBS,
            "DeformConv2d": "model.Deform replaced by a stub module whose DeformConv2d is "
            "torchvision.ops.DeformConv2d",
            "main_py_stubbed_imports": stubbed,
            "constructor": "RADN(weighted_average=True, pooling=0), "
            "WResNet(weighted_average=True, pooling=0)",
            "mode": "model.to(dtype) before load_state_dict(strict=True); model.eval(); torch.no_grad()",
            "tiling": "main.NonOverlappingCropPatches(dist, ref) on PIL RGB images; patches row-major",
            "inputs": "to_tensor output (float32 k/255), .double() for float64 runs",
            "score": "model output with torch.set_default_dtype(run dtype); score_reference_output is "
            "the unmodified output whose buffer torch.ones((B, 1)) is float32",
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": np.__version__,
            "torch_num_threads": torch.get_num_threads(),
        },
        "seed": args.seed,
        "init": seeded.describe(),
        "state_dict_sha256_float64": fingerprints,
        "images": {
            p: {
                "sha256": hashlib.sha256((HERE / p).read_bytes()).hexdigest(),
                "hw": list(load_rgb(p).size[::-1]),
            }
            for p in ("ref_a.png", "dist_a.png", "ref_b.png", "dist_b.png")
        },
        "reference_tiling_probe": tiling_probe(crop),
        "gaps": gaps,
        "sensitivity": sensitivity,
        "init_statistics_float64": stats,
        "cases": cases,
    }
    args.out.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {args.out}: {len(cases)} cases")
    for c in cases:
        print(f"  {c['arch']:8s} {c['dtype']:8s} {c['name']:12s} grid {c['grid']} score {c['score']:+.10f}")
    print(json.dumps(gaps, indent=1))
    print(json.dumps(sensitivity, indent=1))


if __name__ == "__main__":
    main()
