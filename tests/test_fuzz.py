"""Hostile input: random and corrupted bytes through image loading and pair-list reading.

The default run keeps the example counts small; `pytest -m slow tests/test_fuzz.py` runs the long version.
"""

import io

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from radn_cli.errors import ImageError, PairingError
from radn_cli.images import load_image
from radn_cli.pairing import read_pairs_csv

FORMATS = ["PNG", "JPEG", "WEBP", "TIFF", "BMP", "TIFF16", "TIFF16LA"]
# 16-bit TIFFs read by tifffile: RGB (Pillow reads the header) and grey + alpha (tifffile alone)
TIFF16 = {
    "TIFF16": (3, dict(photometric="rgb", compression="deflate", predictor=2, rowsperstrip=8)),
    "TIFF16LA": (2, dict(photometric="minisblack", extrasamples=["unassalpha"], tile=(16, 16))),
}


def _valid(fmt: str) -> bytes:
    rng = np.random.default_rng(len(fmt))
    buffer = io.BytesIO()
    if fmt in TIFF16:
        channels, options = TIFF16[fmt]
        tifffile.imwrite(buffer, rng.integers(0, 65536, (40, 48, channels), dtype=np.uint16), **options)
        return buffer.getvalue()
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


VALID = {fmt: _valid(fmt) for fmt in FORMATS}
PROFILE = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _mutations():
    return st.tuples(
        st.sampled_from(FORMATS),
        st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
        st.one_of(st.none(), st.integers(0, 10**6)),
    )


def _mutate(fmt, edits, cut):
    data = bytearray(VALID[fmt])
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data[: cut % (len(data) + 1)] if cut is not None else data)


def _load_or_image_error(path, caplog):
    try:
        image = load_image(path)
    except ImageError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert image.tensor.shape[0] == 3 and 0 <= float(image.tensor.min()) <= float(image.tensor.max()) <= 1
    # tifffile's log records become notes or errors: none reaches logging (or, without a handler, stderr)
    assert not [record for record in caplog.records if record.name.startswith("tifffile")]
    caplog.clear()


@settings(max_examples=60, **PROFILE)
@given(case=_mutations())
def test_corrupted_images_load_or_fail_cleanly(tmp_path, caplog, case):
    path = tmp_path / "x.img"
    path.write_bytes(_mutate(*case))
    _load_or_image_error(path, caplog)


@settings(max_examples=40, **PROFILE)
@given(data=st.binary(max_size=2048))
def test_random_bytes_as_pairs_csv(tmp_path, data):
    path = tmp_path / "pairs.csv"
    path.write_bytes(data)
    try:
        pairing = read_pairs_csv(path)
    except PairingError as exc:
        assert "\n" not in str(exc)
    else:
        assert pairing.pairs


@settings(max_examples=40, **PROFILE)
@given(rows=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=20)), max_size=6))
def test_arbitrary_text_rows_as_pairs_csv(tmp_path, rows):
    import csv

    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "dist"])
        writer.writerows(rows)
    try:
        read_pairs_csv(path)
    except PairingError as exc:
        assert "\n" not in str(exc)


@pytest.mark.slow
@settings(max_examples=3000, **PROFILE)
@given(case=_mutations())
def test_corrupted_images_long_run(tmp_path, caplog, case):
    path = tmp_path / "x.img"
    path.write_bytes(_mutate(*case))
    _load_or_image_error(path, caplog)
