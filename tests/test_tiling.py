import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from radn_cli.tiling import PATCH, grid_shape, patches_at, tile, untile


def test_288_square_has_81_patches():
    patches, grid = tile(torch.zeros(1, 3, 288, 288))
    assert grid == (9, 9)
    assert patches.shape == (1, 81, 3, 32, 32)


def test_remainder_is_dropped():
    assert grid_shape(300, 288) == (9, 9)
    assert grid_shape(31, 64) == (0, 2)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(32, 200), w=st.integers(32, 200), b=st.integers(1, 2))
def test_tiles_are_row_major_crops(h, w, b):
    images = torch.arange(b * 3 * h * w, dtype=torch.float32).reshape(b, 3, h, w)
    patches, (rows, cols) = tile(images)
    assert (rows, cols) == (h // PATCH, w // PATCH)
    assert patches.shape == (b, rows * cols, 3, PATCH, PATCH)
    for n in {0, rows * cols - 1, (rows * cols) // 2}:
        r, c = divmod(n, cols)
        expected = images[:, :, r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH]
        assert torch.equal(patches[:, n], expected)


@settings(max_examples=30, deadline=None)
@given(h=st.integers(32, 160), w=st.integers(32, 160), data=st.data())
def test_patches_at_matches_tile(h, w, data):
    image = torch.rand(3, h, w)
    patches, (rows, cols) = tile(image[None])
    n = rows * cols
    start = data.draw(st.integers(0, n - 1))
    stop = data.draw(st.integers(start + 1, n))
    assert torch.equal(patches_at(image, start, stop), patches[0, start:stop])


def test_untile_inverts_flattening():
    values = torch.arange(12.0)[None]
    grid = untile(values, (3, 4))
    assert grid.shape == (1, 3, 4)
    assert grid[0, 1, 0] == 4
