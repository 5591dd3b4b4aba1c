"""Human scores of the KADID-10k distortions: the training targets.

KADID_DMOS[type][level - 1] = (mean, sd) of the KADID-10k DMOS (1 very annoying .. 5 imperceptible,
higher is better) over its 81 reference images, computed from ../shared/data/labels/kadid10k.csv
(ratings by Lin, Hosu and Saupe, QoMEX 2019); ``table_from_csv`` recomputes it from such a file.
A synthetic distorted image's target is the mean of its (type, level); the standard deviations give
the probability that people prefer one image over another (Thurstone case V).
"""

from __future__ import annotations

import csv
import math
import re
import statistics
from pathlib import Path

import torch

Cell = tuple[float, float]  # (mean, sd)

KADID_DMOS: dict[int, tuple[Cell, Cell, Cell, Cell, Cell]] = {
    1: ((4.6122, 0.1304), (4.3817, 0.2205), (2.9111, 0.4279), (1.8730, 0.2744), (1.3027, 0.1394)),
    2: ((3.8625, 0.3614), (2.6536, 0.4063), (1.7558, 0.2475), (1.4419, 0.1704), (1.2991, 0.1463)),
    3: ((4.6041, 0.1291), (4.0952, 0.3428), (2.8479, 0.4342), (2.1751, 0.3512), (1.6679, 0.2613)),
    4: ((4.4951, 0.1822), (2.6020, 0.4277), (1.7559, 0.3693), (1.6052, 0.3645), (1.3938, 0.2961)),
    5: ((4.2267, 0.3964), (2.5454, 0.5225), (1.9163, 0.4021), (1.8537, 0.4528), (1.8638, 0.5018)),
    6: ((4.1081, 0.3107), (3.9733, 0.3481), (3.7186, 0.3969), (3.2028, 0.4110), (2.4249, 0.4042)),
    7: ((2.7463, 0.3188), (2.3346, 0.2732), (2.2620, 0.3152), (2.2435, 0.2611), (2.0274, 0.3077)),
    8: ((4.5798, 0.1365), (3.3305, 0.3682), (2.6484, 0.4415), (1.8156, 0.3833), (1.5249, 0.3115)),
    9: ((4.5531, 0.1647), (4.2047, 0.4511), (3.8733, 0.6107), (2.4448, 0.6840), (1.3938, 0.2549)),
    10: ((4.3380, 0.2223), (4.2456, 0.2295), (3.8658, 0.3077), (1.9454, 0.3245), (1.3502, 0.1822)),
    11: ((3.8932, 0.3651), (3.3904, 0.4153), (3.0451, 0.3656), (2.7096, 0.3175), (2.3007, 0.2698)),
    12: ((4.4684, 0.1967), (3.6825, 0.4067), (3.1700, 0.4166), (2.6872, 0.3221), (2.3799, 0.2913)),
    13: ((3.5838, 0.3842), (2.9304, 0.3168), (2.6126, 0.2390), (2.3123, 0.2027), (2.1319, 0.1820)),
    14: ((4.4044, 0.2652), (3.5815, 0.4935), (3.0842, 0.4955), (2.6394, 0.4309), (2.1173, 0.3458)),
    15: ((3.6677, 0.3284), (2.7272, 0.3882), (2.2027, 0.3517), (1.6549, 0.2377), (1.4665, 0.1756)),
    16: ((4.5057, 0.1584), (4.2875, 0.2294), (3.6323, 0.3350), (2.7009, 0.4670), (1.8093, 0.3780)),
    17: ((4.6004, 0.1299), (4.5275, 0.1424), (4.2309, 0.2252), (3.5349, 0.2930), (2.2210, 0.4066)),
    18: ((4.2180, 0.2969), (4.5188, 0.1777), (4.6030, 0.1364), (4.3695, 0.1939), (3.9033, 0.2959)),
    19: ((4.4194, 0.2007), (4.0864, 0.2907), (3.2352, 0.4550), (1.8485, 0.3229), (1.3386, 0.1677)),
    20: ((4.3333, 0.3119), (3.9379, 0.4994), (3.7726, 0.5519), (3.4644, 0.6435), (3.2612, 0.6548)),
    21: ((3.8891, 0.4520), (3.0983, 0.4786), (2.8998, 0.4476), (2.7943, 0.4955), (1.4957, 0.2601)),
    22: ((4.1685, 0.4538), (3.9335, 0.5898), (3.6859, 0.5851), (3.3728, 0.6405), (2.7990, 0.6789)),
    23: ((2.6870, 0.3904), (2.3590, 0.2973), (2.2995, 0.2564), (2.1262, 0.2336), (2.0352, 0.2292)),
    24: ((3.5790, 0.4109), (2.6359, 0.4365), (2.1364, 0.3664), (1.6133, 0.2481), (1.3359, 0.1595)),
    25: ((3.4194, 0.3441), (3.8584, 0.2764), (4.2901, 0.2494), (4.1415, 0.2747), (3.3238, 0.3761)),
}

SCORE_SCALE = "KADID-10k DMOS: 1 (very annoying) .. 5 (imperceptible), higher is better"

# KADID-10k's distortion categories (Lin et al. 2019): contrastive pairs come from one category.
CATEGORIES: dict[str, tuple[int, ...]] = {
    "blur": (1, 2, 3),
    "color": (4, 5, 6, 7, 8),
    "compression": (9, 10),
    "noise": (11, 12, 13, 14, 15),
    "brightness": (16, 17, 18),
    "spatial": (19, 20, 21, 22, 23),
    "sharpness_contrast": (24, 25),
}

CELLS: tuple[tuple[int, int], ...] = tuple((t, level) for t in KADID_DMOS for level in range(1, 6))


# The target of an identical (or 1-2 px shifted) copy of the reference: the best-rated KADID cell.
BEST_CELL: Cell = max((cell for cells in KADID_DMOS.values() for cell in cells), key=lambda c: c[0])


def target(type_id: int, level: int) -> Cell:
    return KADID_DMOS[type_id][level - 1]


def preference_probability(
    mean_i: torch.Tensor, sd_i: torch.Tensor, mean_j: torch.Tensor, sd_j: torch.Tensor
) -> torch.Tensor:
    """P(people prefer i over j) = Phi((m_i - m_j) / sqrt(s_i^2 + s_j^2))."""
    z = (mean_i - mean_j) / torch.sqrt(sd_i**2 + sd_j**2)
    return 0.5 * (1 + torch.erf(z / math.sqrt(2)))


def table_from_csv(path: str | Path) -> dict[int, tuple[Cell, ...]]:
    """Recompute KADID_DMOS from a KADID-style label file (names I01_TT_LL.png, a score column)."""
    cells: dict[tuple[int, int], list[float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            name = row.get("dis_img_path") or row.get("dist_img") or row.get("dis_img") or ""
            score = row.get("score") or row.get("dmos")
            match = re.search(r"I\d+_(\d+)_(\d+)\.\w+$", name)
            if match and score:
                cells.setdefault((int(match[1]), int(match[2])), []).append(float(score))
    return {
        t: tuple((statistics.mean(cells[t, lv]), statistics.stdev(cells[t, lv])) for lv in range(1, 6))
        for t in sorted({t for t, _ in cells})
    }
