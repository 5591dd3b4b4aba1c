"""Issue 26, what a new user sees of `radn score` and `radn heatmap`: progress while scoring, the
score scale on the terminal, the default heatmap and its colour range, the raw values, and --help.

Images are small (64x96: a 2x3 patch grid) and the seeded test weights are loaded once.
"""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def scorer(weights_file):
    from radn_cli import load_scorer

    return load_scorer(weights_file, device="cpu", batch_size=4)


def _image(seed: int, height: int = 64, width: int = 96) -> torch.Tensor:
    return torch.rand(3, height, width, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------
# The scorer's progress hook


def test_progress_hook_counts_patches_after_each_chunk(scorer):
    ref, dist = _image(0), _image(1)
    calls: list[tuple[int, int]] = []
    encoded = scorer.encode_reference(ref, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 6), (6, 6)]  # 6 patches in chunks of batch_size 4
    calls.clear()
    scored = scorer.score(encoded, dist, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 6), (6, 6)]
    calls.clear()
    many = scorer.score_many([(encoded, dist), (encoded, ref)], progress=lambda *a: calls.append(a))
    assert calls == [(4, 12), (8, 12), (12, 12)]  # a chunk spans both images
    calls.clear()
    pair = scorer.score_pair(ref, dist, progress=lambda *a: calls.append(a))
    assert calls == [(4, 12), (6, 12), (10, 12), (12, 12)]  # both images' patches
    # the hook changes nothing in the scores
    assert scored.score == pair.score == scorer.score_pair(ref, dist).score
    assert many[0].score == pytest.approx(scored.score, abs=1e-5)  # other batches: float rounding
