"""Training data made on the fly: clean photos, KADID-10k distortions, human targets per (type, level).

A batch holds P photos, each with K distorted versions: a random crop of the photo (flipped/rotated
the same way for all versions), K distortion cells (type, level), and N random 32x32 patch positions
shared by the reference and its K versions, so the reference branch runs once per photo. For the
contrastive stage the K cells of a photo come from one KADID category, so every pair within the
photo is a valid preference pair.

Invariance (regression stage): with probability ``clean`` a version is the clean photo itself, as is
or shifted by 1-2 px, with the best KADID cell as its target (cell (0, 0)): people do not see a
1-pixel misalignment, and the paper's deformable step is there to tolerate it. With probability
``shift`` a distorted version is cut 1-2 px off the reference's position (target unchanged).

Distortion window (``window``): KADID-10k distorted whole 512x384 images, and several of its
distortions depend on the image, not the pixel: the generator's min-max stretches before and after
(nearly a no-op on a whole photo, up to a 9x stretch on a flat crop), and the number of patches or
blocks of types 20 and 23 (about 5x too dense on a 192 crop). With ``window`` > 0 each version is made
by distorting a KADID-shaped region of the photo (``window`` x 3/4 ``window``, oriented like the
photo, cut to it) that holds the crop, and the crop is then cut out of it; 0 distorts the crop alone.

Focus (``focus``, ``focus_weight``): in the regression stage the cells of the named KADID types are
drawn with ``focus_weight`` times the others' weight, to spend more of a run on the types the model
ranks worst (K distinct cells per photo, drawn without replacement, so a little less than that
ratio; the cross-type pairs remain).
"""

from __future__ import annotations

import hashlib
import signal
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..images import SUPPORTED_SUFFIXES, load_image
from ..tiling import PATCH
from .config import TrainConfig
from .distortions import distort
from .labels import BEST_CELL, CATEGORIES, CELLS, target

CLEAN = (0, 0)  # the cell of an identical or shifted clean copy
MAX_SHIFT = 2  # pixels


def find_photos(root: str | Path) -> list[Path]:
    """Every image under root, sorted; hidden files skipped."""
    root = Path(root)
    photos = [
        p
        for p in root.rglob("*")
        if p.suffix.lower() in SUPPORTED_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(photos)


def split_photos(
    photos: list[Path], val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """Split by photo, deterministically (a hash of seed and file name), at least one photo held out."""

    def key(p: Path) -> str:
        return hashlib.sha256(f"{seed}:{p.name}".encode()).hexdigest()

    ordered = sorted(photos, key=key)
    n_val = max(1, round(len(ordered) * val_fraction)) if len(ordered) > 1 else 0
    return sorted(ordered[n_val:]), sorted(ordered[:n_val])


class PhotoBank:
    """Decoded photos as uint8 [3, H, W] tensors, decoded once and kept in memory."""

    def __init__(self, photos: list[Path], min_side: int) -> None:
        self.photos = list(photos)
        self.min_side = min_side
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.photos)

    def get(self, index: int) -> torch.Tensor:
        if index not in self._cache:
            image = load_image(self.photos[index]).tensor
            self._cache[index] = image.mul(255).round().to(torch.uint8)
        return self._cache[index]


@dataclass
class Batch:
    ref: torch.Tensor  # (P, N, 3, 32, 32)
    dist: torch.Tensor  # (P, K, N, 3, 32, 32)
    mean: torch.Tensor  # (P, K) KADID DMOS mean of each version's (type, level)
    sd: torch.Tensor  # (P, K)
    cells: torch.Tensor  # (P, K, 2) type id, level

    def to(self, device: torch.device) -> Batch:
        if self.ref.device == device:
            return self
        move = {"non_blocking": True}
        return Batch(
            self.ref.to(device, **move),
            self.dist.to(device, **move),
            self.mean.to(device, **move),
            self.sd.to(device, **move),
            self.cells,
        )

    def pin_memory(self) -> Batch:  # DataLoader(pin_memory=True) calls this on custom batch types
        return Batch(
            self.ref.pin_memory(),
            self.dist.pin_memory(),
            self.mean.pin_memory(),
            self.sd.pin_memory(),
            self.cells,
        )


def _augment(crop: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    if torch.rand((), generator=g) < 0.5:
        crop = crop.flip(-1)
    return torch.rot90(crop, int(torch.randint(0, 4, (), generator=g)), dims=(-2, -1))


def choose_cells(
    k: int, contrastive: bool, g: torch.Generator, focus: tuple[int, ...] = (), focus_weight: float = 1.0
) -> list[tuple[int, int]]:
    """K distinct (type, level) cells; in the regression stage the cells of the ``focus`` types get
    ``focus_weight`` times the others' weight in the draw (without replacement; module doc)."""
    if contrastive:
        names = sorted(CATEGORIES)
        category = CATEGORIES[names[int(torch.randint(len(names), (), generator=g))]]
        pool = [(t, level) for t in category for level in range(1, 6)]
    else:
        pool = list(CELLS)
        if focus and focus_weight != 1.0:
            weights = torch.tensor(
                [focus_weight if t in focus else 1.0 for t, _ in pool], dtype=torch.float64
            )
            picks = torch.multinomial(weights, k, replacement=False, generator=g)
            return [pool[int(i)] for i in picks]
    picks = torch.randperm(len(pool), generator=g)[:k]
    return [pool[int(i)] for i in picks]


def window_shape(height: int, width: int, window: int) -> tuple[int, int]:
    """The distorted region of a photo: ``window`` x 3/4 ``window`` (KADID's 4:3), oriented like the
    photo and cut to it."""
    long_side, short_side = window, window * 3 // 4
    shape = (short_side, long_side) if width >= height else (long_side, short_side)
    return min(shape[0], height), min(shape[1], width)


def _square(image: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    return image[:, top : top + size, left : left + size]


def _draw_invariance(g: torch.Generator, clean: float, shift: float) -> tuple[bool, int, int]:
    """Whether a version is a clean copy (probability ``clean``), and its offset: -2..2 px for a clean
    copy or, with probability ``shift``, a distorted version; else none (module doc)."""
    is_clean = bool(torch.rand((), generator=g) < clean)
    if is_clean or bool(torch.rand((), generator=g) < shift):
        dy, dx = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (2,), generator=g).tolist()
        return is_clean, dy, dx
    return is_clean, 0, 0


def make_batch(
    bank: PhotoBank, g: torch.Generator, settings: TrainConfig, *, contrastive: bool, device: torch.device
) -> Batch:
    """P photos x K versions (``photos_per_batch`` x ``per_photo`` of the settings); ``clean`` and
    ``shift`` are the invariance probabilities, ``window`` the side of the distorted region, ``focus``
    / ``focus_weight`` the oversampled types (module doc)."""
    window = settings.window
    invariance = not contrastive and (settings.clean > 0 or settings.shift > 0)
    margin = MAX_SHIFT if invariance else 0
    refs, dists, means, sds, cells = [], [], [], [], []
    for _ in range(settings.photos_per_batch):
        photo = bank.get(int(torch.randint(len(bank), (), generator=g)))
        _, height, width = photo.shape
        rh, rw = window_shape(height, width, window) if window else (height, width)
        size = min(settings.crop, rh - 2 * margin, rw - 2 * margin)
        if not window:  # the region is the crop and its shift margin
            rh = rw = size + 2 * margin
        top = int(torch.randint(0, height - rh + 1, (), generator=g))
        left = int(torch.randint(0, width - rw + 1, (), generator=g))
        region = photo[:, top : top + rh, left : left + rw]
        region = _augment(region, g).to(device).float().div_(255)
        cy = cx = margin  # the reference crop's corner in the (rotated) region
        if window:
            cy += int(torch.randint(0, region.shape[1] - size - 2 * margin + 1, (), generator=g))
            cx += int(torch.randint(0, region.shape[2] - size - 2 * margin + 1, (), generator=g))
        ref = _square(region, cy, cx, size)
        chosen = choose_cells(settings.per_photo, contrastive, g, settings.focus, settings.focus_weight)
        seed = int(torch.randint(0, 2**62, (), generator=g))
        versions = []
        for i, (type_id, level) in enumerate(chosen):
            is_clean, dy, dx = (
                _draw_invariance(g, settings.clean, settings.shift) if invariance else (False, 0, 0)
            )
            if is_clean:
                chosen[i] = CLEAN
                versions.append(_square(region, cy + dy, cx + dx, size))
                continue
            dg = torch.Generator(device=device).manual_seed(seed + i)
            if window:
                distorted = distort(region[None], type_id, level, generator=dg)[0]
                versions.append(_square(distorted, cy + dy, cx + dx, size))
            else:
                source = _square(region, cy + dy, cx + dx, size)
                versions.append(distort(source[None], type_id, level, generator=dg)[0])
        ys = torch.randint(0, size - PATCH + 1, (settings.patches,), generator=g).tolist()
        xs = torch.randint(0, size - PATCH + 1, (settings.patches,), generator=g).tolist()
        stack = torch.stack([ref, *versions])  # (1 + K, 3, size, size)
        cut = torch.stack([stack[:, :, y : y + PATCH, x : x + PATCH] for y, x in zip(ys, xs)], dim=1)
        refs.append(cut[0])
        dists.append(cut[1:])
        targets = [BEST_CELL if cell == CLEAN else target(*cell) for cell in chosen]
        means.append([m for m, _ in targets])
        sds.append([sd for _, sd in targets])
        cells.append(chosen)
    return Batch(
        ref=torch.stack(refs),
        dist=torch.stack(dists),
        mean=torch.tensor(means, device=device),
        sd=torch.tensor(sds, device=device),
        cells=torch.tensor(cells),
    )


class SyntheticStream(torch.utils.data.IterableDataset):
    """Training batches made in DataLoader worker processes (``radn train --data-workers N``).

    The batch of step ``i`` comes from a generator seeded by (seed, i), whichever worker makes it:
    worker w of W makes steps start + w, start + w + W, ..., which the DataLoader hands out in step
    order. So the batches depend on the seed and the step only, not on the number of workers, and a
    resumed run (``start`` = its step) sees the batches it would have seen. They differ from the
    in-process stream (``--data-workers 0``), whose one generator is also checkpointed. Under
    torchrun, rank r of ``world`` makes batch ``i * world + r`` at step i (:meth:`generator`), in its
    workers or in-process.
    """

    def __init__(
        self, photos: list[Path], settings: TrainConfig, *, start: int = 0, rank: int = 0, world: int = 1
    ) -> None:
        super().__init__()
        self.photos, self.settings = list(photos), settings
        self.start, self.rank, self.world = start, rank, world

    def generator(self, step: int) -> torch.Generator:
        """The generator of this rank's batch at ``step``: batch ``step * world + rank`` of the seed's
        stream (with one rank, batch ``step``)."""
        return torch.Generator().manual_seed(self.settings.seed * 1_000_003 + step * self.world + self.rank)

    def batch(
        self,
        bank: PhotoBank,
        step: int,
        device: torch.device | None = None,
        generator: torch.Generator | None = None,
    ) -> Batch:
        """This rank's batch at ``step``, made on ``device`` (default: the CPU, as in the workers);
        ``generator`` draws it instead of the step's own (one process's checkpointed generator)."""
        return make_batch(
            bank,
            generator or self.generator(step),
            self.settings,
            contrastive=step < self.settings.pretrain_steps,
            device=device or torch.device("cpu"),
        )

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:  # Ctrl-C or a group's SIGTERM reaches the workers too: the trainer decides
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        torch.set_num_threads(1)  # one core per worker: the workers are the parallelism
        bank = PhotoBank(self.photos, self.settings.crop)  # each worker decodes the photos it uses, once
        for step in range(self.start + worker, self.settings.total_steps, workers):
            yield self.batch(bank, step)


def stream_loader(stream: SyntheticStream, workers: int, device: torch.device):
    """An iterator over the stream's batches, made by ``workers`` processes ahead of the training."""
    loader = torch.utils.data.DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        prefetch_factor=4,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(
            stream.settings.seed
        ),  # not the global one: dropout draws from it
        multiprocessing_context="fork" if "fork" in torch.multiprocessing.get_all_start_methods() else None,
    )
    return iter(loader)


class RatedPairs:
    """Training pairs from a human-rated database (any layout ``radn eval`` reads).

    Targets are the database's own scores turned higher-is-better (DMOS negated), so the trained
    weights score on that database's scale. Pairs are decoded once and kept as uint8.
    """

    def __init__(self, database) -> None:
        self.database = database
        self.sign = 1.0 if database.higher_is_better else -1.0
        self._cache: dict[Path, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.database.pairs)

    def _image(self, path: Path) -> torch.Tensor:
        if path not in self._cache:
            self._cache[path] = load_image(path).tensor.mul(255).round().to(torch.uint8)
        return self._cache[path]

    def batch(self, g: torch.Generator, *, pairs: int, patches: int, device: torch.device) -> Batch:
        refs, dists, means = [], [], []
        for _ in range(pairs):
            pair = self.database.pairs[int(torch.randint(len(self), (), generator=g))]
            stack = torch.stack([self._image(pair.ref), self._image(pair.dist)])  # (2, 3, H, W)
            if torch.rand((), generator=g) < 0.5:
                stack = stack.flip(-1)
            _, _, height, width = stack.shape
            ys = torch.randint(0, height - PATCH + 1, (patches,), generator=g).tolist()
            xs = torch.randint(0, width - PATCH + 1, (patches,), generator=g).tolist()
            cut = torch.stack([stack[:, :, y : y + PATCH, x : x + PATCH] for y, x in zip(ys, xs)], dim=1)
            cut = cut.to(device).float().div_(255)
            refs.append(cut[0])
            dists.append(cut[1:])
            means.append([self.sign * pair.mos])
        mean = torch.tensor(means, device=device)
        return Batch(
            ref=torch.stack(refs),
            dist=torch.stack(dists),
            mean=mean,
            sd=torch.ones_like(mean),
            cells=torch.zeros(pairs, 1, 2, dtype=torch.long),
        )


@dataclass
class ValidationSet:
    """Fixed distorted crops of held-out photos, scored with all their non-overlapping patches."""

    ref: torch.Tensor  # (V, 3, S, S) one per held-out photo
    dist: torch.Tensor  # (V, K, 3, S, S)
    mean: torch.Tensor  # (V, K)
    cells: torch.Tensor  # (V, K, 2)


def centre_crop(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The middle ``height`` x ``width`` of an image ``(..., H, W)``."""
    top, left = (image.shape[-2] - height) // 2, (image.shape[-1] - width) // 2
    return image[..., top : top + height, left : left + width]


def make_validation_set(bank: PhotoBank, settings: TrainConfig, device: torch.device) -> ValidationSet:
    """``val_photos`` x ``val_per_photo`` versions of held-out photos (``bank``): centre crops of side
    ``val_crop``; with ``window``, each version is the centre of its distorted centre region."""
    seed, window, crop = settings.held_out_seed, settings.window, settings.val_crop
    g = torch.Generator().manual_seed(seed)
    refs, dists, means, cells = [], [], [], []
    for index in range(min(settings.val_photos, len(bank))):
        photo = bank.get(index)
        _, height, width = photo.shape
        region = centre_crop(photo, *window_shape(height, width, window)) if window else photo
        size = min(crop, *region.shape[1:]) // PATCH * PATCH
        if not window:
            region = centre_crop(photo, size, size)
        region = region.to(device).float().div_(255)
        ref = centre_crop(region, size, size)
        chosen = choose_cells(settings.val_per_photo, False, g)
        versions = [
            centre_crop(
                distort(
                    region[None],
                    t,
                    lv,
                    generator=torch.Generator(device=device).manual_seed(seed + 31 * index + i),
                )[0],
                size,
                size,
            )
            for i, (t, lv) in enumerate(chosen)
        ]
        refs.append(ref)
        dists.append(torch.stack(versions))
        means.append([target(t, lv)[0] for t, lv in chosen])
        cells.append(chosen)
    sizes = {r.shape for r in refs}
    if len(sizes) != 1:  # photos smaller than the crop: use the smallest common size
        side = min(min(s[1], s[2]) for s in sizes)
        refs = [r[:, :side, :side] for r in refs]
        dists = [d[:, :, :side, :side] for d in dists]
    return ValidationSet(torch.stack(refs), torch.stack(dists), torch.tensor(means), torch.tensor(cells))


# ---- whole regions (RADN-Lite: the trunk sees the whole distorted region) ---------------------------

WARP_AMPLITUDE = 1.0  # pixels: the largest displacement of a warped clean copy
RESCALE = 0.01  # relative: the scale change of a rescaled clean copy


@dataclass
class Versions:
    """One photo's reference region and its K versions, whole (for RADN-Lite)."""

    ref: torch.Tensor  # (3, h, w) in [0, 1]
    dist: torch.Tensor  # (K, 3, h, w)
    mean: torch.Tensor  # (K,) KADID DMOS mean of each version's (type, level)
    sd: torch.Tensor  # (K,)
    cells: torch.Tensor  # (K, 2) type id, level; (0, 0) for a clean copy


def _identity_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.linspace(-1, 1, height, dtype=torch.float64)
    xs = torch.linspace(-1, 1, width, dtype=torch.float64)
    return torch.meshgrid(ys, xs, indexing="ij")


def _sample(image: torch.Tensor, grid_x: torch.Tensor, grid_y: torch.Tensor) -> torch.Tensor:
    grid = torch.stack([grid_x, grid_y], -1)[None]
    out = F.grid_sample(
        image[None].double(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return out[0].to(image.dtype)


def rescaled(image: torch.Tensor, scale: float) -> torch.Tensor:
    """(3, H, W) magnified by ``scale`` about its centre, same size (bilinear, borders replicated)."""
    grid_y, grid_x = _identity_grid(*image.shape[1:])
    return _sample(image, grid_x / scale, grid_y / scale)


def warped(image: torch.Tensor, g: torch.Generator, amplitude: float | None = None) -> torch.Tensor:
    """(3, H, W) moved by a smooth random displacement field whose largest displacement is
    ``amplitude`` pixels (three low-frequency plane waves per axis; bilinear, borders replicated);
    ``None`` draws it, after the field, uniformly up to ``WARP_AMPLITUDE``."""
    _, height, width = image.shape
    grid_y, grid_x = _identity_grid(height, width)
    field = torch.zeros(2, height, width, dtype=torch.float64)
    for axis in range(2):
        for _ in range(3):
            fy, fx = (torch.rand(2, generator=g, dtype=torch.float64) * 2 * torch.pi).tolist()
            phase = float(torch.rand((), generator=g, dtype=torch.float64)) * 2 * torch.pi
            field[axis] += torch.sin(fy * grid_y + fx * grid_x + phase)
    if amplitude is None:
        amplitude = WARP_AMPLITUDE * float(torch.rand((), generator=g))
    field *= amplitude / field.abs().amax().clamp_min(1e-9)  # pixels
    return _sample(image, grid_x + field[1] * 2 / (width - 1), grid_y + field[0] * 2 / (height - 1))


def resample(image: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A clean copy that people cannot tell apart: rescaled by up to +-1% about the centre, or warped
    by a smooth random displacement field of up to 1 pixel."""
    if torch.rand((), generator=g) < 0.5:
        return rescaled(image, 1 + RESCALE * (2 * float(torch.rand((), generator=g)) - 1))
    return warped(image, g)


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """(3, H, W) moved ``dy`` px down and ``dx`` px right (negative: up, left), same size; the
    uncovered edge repeats the image's border."""
    pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))
    padded = F.pad(image[None], pad, mode="replicate")[0]
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[:, top : top + image.shape[1], left : left + image.shape[2]]


def geometric_copy(image: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A clean copy of a whole image that people cannot tell apart: moved by 1-2 px (edges repeated),
    or resampled (:func:`resample`: rescaled by up to 1% or warped by up to 1 px), half and half."""
    if torch.rand((), generator=g) < 0.5:
        dy, dx = 0, 0
        while (dy, dx) == (0, 0):
            dy, dx = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (2,), generator=g).tolist()
        return shifted(image, dy, dx)
    return resample(image, g)


def make_versions(
    bank: PhotoBank,
    g: torch.Generator,
    *,
    per_photo: int,
    window: int,
    contrastive: bool = False,
    clean: float = 0.0,
    shift: float = 0.0,
    warp: float = 0.0,
    focus: tuple[int, ...] = (),
    focus_weight: float = 1.0,
    index: int | None = None,
    centre: bool = False,
) -> Versions:
    """A photo (random, or ``index``) cut to a KADID-shaped region of long side ``window`` (flipped
    and rotated at random unless ``centre``), and K versions of the whole region: distorted (KADID cells),
    or with probability ``clean`` a clean copy shifted by 0-2 px (a ``warp`` share of those rescaled or
    warped instead, :func:`resample`); with probability ``shift`` a distorted version is cut 1-2 px off."""
    invariance = not contrastive and (clean > 0 or shift > 0)
    margin = MAX_SHIFT if invariance else 0
    photo = bank.get(int(torch.randint(len(bank), (), generator=g)) if index is None else index)
    _, height, width = photo.shape
    rh, rw = window_shape(height - 2 * margin, width - 2 * margin, window)
    rh, rw = rh // PATCH * PATCH, rw // PATCH * PATCH
    if centre:
        top, left = (height - rh) // 2 - margin, (width - rw) // 2 - margin
    else:
        top = int(torch.randint(0, height - rh - 2 * margin + 1, (), generator=g))
        left = int(torch.randint(0, width - rw - 2 * margin + 1, (), generator=g))
    region = photo[:, top : top + rh + 2 * margin, left : left + rw + 2 * margin].float().div(255)
    if not centre:
        region = _augment(region, g)
    size = region.shape[1] - 2 * margin, region.shape[2] - 2 * margin

    def cut(image: torch.Tensor, dy: int = 0, dx: int = 0) -> torch.Tensor:
        return image[:, margin + dy : margin + dy + size[0], margin + dx : margin + dx + size[1]]

    chosen = choose_cells(per_photo, contrastive, g, focus, focus_weight)
    seed = int(torch.randint(0, 2**62, (), generator=g))
    versions = []
    for i, (type_id, level) in enumerate(chosen):
        is_clean, dy, dx = _draw_invariance(g, clean, shift) if invariance else (False, 0, 0)
        if is_clean:
            chosen[i] = CLEAN
            copy = cut(region, dy, dx)
            if warp and bool(torch.rand((), generator=g) < warp):
                copy = resample(cut(region), g)
            versions.append(copy)
            continue
        dg = torch.Generator().manual_seed(seed + i)
        versions.append(cut(distort(region[None], type_id, level, generator=dg)[0], dy, dx))
    targets = [BEST_CELL if cell == CLEAN else target(*cell) for cell in chosen]
    return Versions(
        ref=cut(region),
        dist=torch.stack(versions),
        mean=torch.tensor([m for m, _ in targets]),
        sd=torch.tensor([sd for _, sd in targets]),
        cells=torch.tensor(chosen),
    )
