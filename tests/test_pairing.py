"""Pairing distorted images with references: folders (path / prefix / auto) and explicit CSV lists."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radn_cli.errors import PairingError, UsageError
from radn_cli.pairing import (
    IMAGE_SUFFIXES,
    Pair,
    Pairing,
    _match_prefix,
    name_prefixes,
    pair_folders,
    read_pairs_csv,
)


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not really an image")


def as_names(pairing: Pairing, ref_dir: Path, dist_dir: Path) -> list[tuple[str, str]]:
    return [
        (pair.ref.relative_to(ref_dir).as_posix(), pair.dist.relative_to(dist_dir).as_posix())
        for pair in pairing.pairs
    ]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    ref, dist = tmp_path / "ref", tmp_path / "dist"
    ref.mkdir()
    dist.mkdir()
    return ref, dist


# ------------------------------------------------------------------------------------------------------
# mode "path"


def test_path_mode_pairs_identical_relative_paths(dirs):
    ref, dist = dirs
    touch(ref, "a/b.png", "a/c.png", "d.png", "only_ref.png")
    touch(dist, "a/c.png", "a/b.png", "d.png", "only_dist.png", "a/zz.png")
    pairing = pair_folders(ref, dist, mode="path")
    assert pairing.mode == "path"
    assert as_names(pairing, ref, dist) == [
        ("a/b.png", "a/b.png"),
        ("a/c.png", "a/c.png"),
        ("d.png", "d.png"),
    ]
    assert pairing.unmatched_dist == [dist / "a/zz.png", dist / "only_dist.png"]
    assert pairing.unused_refs == [ref / "only_ref.png"]
    # the paths keep the folders as given (not resolved)
    assert pairing.pairs[0] == Pair(ref=ref / "a" / "b.png", dist=dist / "a" / "b.png")


def test_path_mode_accepts_another_suffix_when_unique(dirs):
    ref, dist = dirs
    touch(ref, "x.bmp", "sub/y.TIF", "amb.bmp", "amb.png")
    touch(dist, "x.png", "sub/y.webp", "amb.jpg", "amb.png")
    pairing = pair_folders(ref, dist, mode="path")
    assert as_names(pairing, ref, dist) == [
        ("amb.png", "amb.png"),  # exact path first
        ("sub/y.TIF", "sub/y.webp"),
        ("x.bmp", "x.png"),
    ]
    assert pairing.unmatched_dist == [dist / "amb.jpg"]  # two candidates: not guessed


def test_path_mode_does_not_pair_across_folders(dirs):
    ref, dist = dirs
    touch(ref, "a/x.png")
    touch(dist, "b/x.png")
    with pytest.raises(PairingError):
        pair_folders(ref, dist, mode="path")


# ------------------------------------------------------------------------------------------------------
# mode "prefix"


def test_prefix_mode_database_naming_schemes(dirs):
    ref, dist = dirs
    touch(ref, "A0001.bmp", "A0002.bmp", "I01.png", "I02.png", "I03.BMP")
    touch(
        dist,
        "pipal/A0001_00_00.bmp",
        "pipal/A0001_10_03.bmp",
        "pipal/A0002_00_01.bmp",
        "kadid/I01_01_01.png",
        "kadid/I02_25_05.png",
        "tid/i03_01_1.bmp",
        "tid/i03_24_5.BMP",
    )
    pairing = pair_folders(ref, dist, mode="prefix")
    assert pairing.mode == "prefix"
    assert as_names(pairing, ref, dist) == [
        ("A0001.bmp", "pipal/A0001_00_00.bmp"),
        ("A0001.bmp", "pipal/A0001_10_03.bmp"),
        ("A0002.bmp", "pipal/A0002_00_01.bmp"),
        ("I01.png", "kadid/I01_01_01.png"),
        ("I02.png", "kadid/I02_25_05.png"),
        ("I03.BMP", "tid/i03_01_1.bmp"),
        ("I03.BMP", "tid/i03_24_5.BMP"),
    ]
    assert pairing.unmatched_dist == [] and pairing.unused_refs == []


def test_prefix_longest_reference_stem_wins_and_prefix_ends_at_separator(dirs):
    ref, dist = dirs
    touch(ref, "a.png", "a_b.png", "I1.png", "c.d.png", "c.png")
    touch(dist, "a_b_c.png", "a_c.png", "a-x.png", "a.e.png", "I10_01.png", "c.d.q.png", "a.png")
    pairing = pair_folders(ref, dist, mode="prefix")
    assert as_names(pairing, ref, dist) == [
        ("a.png", "a-x.png"),
        ("a.png", "a.e.png"),
        ("a.png", "a.png"),  # the whole stem counts
        ("a.png", "a_c.png"),
        ("a_b.png", "a_b_c.png"),
        ("c.d.png", "c.d.q.png"),
    ]
    assert pairing.unmatched_dist == [dist / "I10_01.png"]  # "I1" is not followed by a separator
    assert pairing.unused_refs == [ref / "I1.png", ref / "c.png"]


def test_prefix_same_stem_in_two_folders_prefers_same_folder_else_unmatched(dirs):
    ref, dist = dirs
    touch(ref, "set1/I01.png", "set2/I01.png", "I02.png", "I02.bmp")
    touch(dist, "set1/I01_1.png", "other/I01_2.png", "I02_3.png")
    pairing = pair_folders(ref, dist, mode="prefix")
    assert as_names(pairing, ref, dist) == [("set1/I01.png", "set1/I01_1.png")]
    assert pairing.unmatched_dist == [dist / "I02_3.png", dist / "other/I01_2.png"]


def test_name_prefixes():
    assert name_prefixes("A0001_00_00") == ["A0001_00_00", "A0001_00", "A0001"]
    assert name_prefixes("a-b.c") == ["a-b.c", "a-b", "a"]
    assert name_prefixes("plain") == ["plain"]
    assert name_prefixes("_x") == ["_x"]  # no empty prefix


SEP = st.sampled_from("_-.")
TOKEN = st.text(alphabet="abcXYZ019", min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    refs=st.lists(TOKEN, min_size=1, max_size=6, unique_by=str.casefold),
    choices=st.lists(st.tuples(st.integers(0, 5), SEP, st.lists(TOKEN, max_size=3), st.booleans())),
)
def test_prefix_property_each_dist_goes_to_its_reference(refs, choices):
    """Reference stems without separators: the distorted stem's first token names its reference."""
    ref_map = {f"{stem}.png": Path(f"/r/{stem}.png") for stem in refs}
    dist_map, expected = {}, {}
    for index, sep, tail, upper in choices:
        stem = refs[index % len(refs)]
        name = stem + "".join(sep + token for token in tail)
        name = name.upper() if upper else name
        rel = f"{len(dist_map)}/{name}.png"
        dist_map[rel] = Path("/d") / rel
        expected[rel] = f"{stem}.png"
    assert _match_prefix(ref_map, dist_map) == expected


# ------------------------------------------------------------------------------------------------------
# mode "auto"


def test_auto_prefers_path_when_it_matches_everything(dirs):
    ref, dist = dirs
    touch(ref, "x.png", "x_1.png", "y.png")
    touch(dist, "x_1.png", "y.png")
    pairing = pair_folders(ref, dist)
    assert pairing.mode == "path"
    assert as_names(pairing, ref, dist) == [("x_1.png", "x_1.png"), ("y.png", "y.png")]


def test_auto_uses_prefix_for_database_layout(dirs):
    ref, dist = dirs
    touch(ref, "I01.png", "I02.png")
    touch(dist, "I01_01_01.png", "I01_02_01.png", "I02_01_01.png")
    pairing = pair_folders(ref, dist)
    assert pairing.mode == "prefix"
    assert len(pairing.pairs) == 3


def test_auto_uses_prefix_when_path_matches_only_some(dirs):
    ref, dist = dirs
    touch(ref, "I01.png", "I02.png")
    touch(dist, "I01.png", "I01_jpeg.png", "I02_blur.png")
    pairing = pair_folders(ref, dist)
    assert pairing.mode == "prefix"
    assert as_names(pairing, ref, dist) == [
        ("I01.png", "I01.png"),
        ("I01.png", "I01_jpeg.png"),
        ("I02.png", "I02_blur.png"),
    ]


def test_auto_per_method_subfolders(dirs):
    """dist/<method>/<name> with ref/<name>: the relative paths differ, the names do not."""
    ref, dist = dirs
    touch(ref, "cat.png", "dog.png")
    touch(dist, "jpeg/cat.png", "jpeg/dog.png", "blur/cat.png")
    pairing = pair_folders(ref, dist)
    assert pairing.mode == "prefix"
    assert as_names(pairing, ref, dist) == [
        ("cat.png", "blur/cat.png"),
        ("cat.png", "jpeg/cat.png"),
        ("dog.png", "jpeg/dog.png"),
    ]


def test_pairs_are_grouped_by_reference_then_sorted_by_dist(dirs):
    ref, dist = dirs
    touch(ref, "b.png", "a.png")
    touch(dist, "b_2.png", "a_9.png", "b_1.png", "a_1.png", "z/a_0.png")
    pairs = pair_folders(ref, dist).pairs
    refs = [p.ref.name for p in pairs]
    assert refs == ["a.png"] * 3 + ["b.png"] * 2
    assert [p.dist for p in pairs[:3]] == sorted(p.dist for p in pairs[:3])


def test_never_pairs_by_position(dirs):
    ref, dist = dirs
    touch(ref, "a.png", "b.png")
    touch(dist, "x.png", "y.png")
    with pytest.raises(PairingError) as info:
        pair_folders(ref, dist)
    message = str(info.value)
    assert "\n" not in message
    assert str(dist) in message and str(ref) in message
    assert "none of the 2 distorted images" in message


# ------------------------------------------------------------------------------------------------------
# scanning


def test_suffixes_hidden_files_and_case(dirs):
    ref, dist = dirs
    assert ".jpg" in IMAGE_SUFFIXES
    touch(ref, "a.PNG", "b.JpEg", "c.txt", ".hidden.png", ".git/d.png", "e.tiff", "f.webp", "g")
    touch(dist, "a.PNG", "b.JpEg", "c.txt", ".hidden.png", ".git/d.png", "._a.PNG", "e.tiff", "f.webp", "g")
    pairing = pair_folders(ref, dist, mode="path")
    assert sorted(p.dist.name for p in pairing.pairs) == ["a.PNG", "b.JpEg", "e.tiff", "f.webp"]
    assert pairing.unmatched_dist == [] and pairing.unused_refs == []


def test_symlinks_followed_without_loops(dirs, tmp_path):
    ref, dist = dirs
    touch(ref, "s/a.png", "b.png")
    outside = tmp_path / "outside"
    touch(outside, "c.png")
    touch(dist, "s/a.png")
    (dist / "s" / "loop").symlink_to(dist, target_is_directory=True)  # dist/s/loop -> dist
    (ref / "s" / "up").symlink_to(ref / "s", target_is_directory=True)  # ref/s/up -> ref/s
    (dist / "linked").symlink_to(outside, target_is_directory=True)
    (ref / "linked").symlink_to(outside, target_is_directory=True)
    (dist / "b.png").symlink_to(ref / "b.png")  # a linked file
    (dist / "broken.png").symlink_to(tmp_path / "nowhere.png")
    pairing = pair_folders(ref, dist, mode="path")
    assert as_names(pairing, ref, dist) == [
        ("b.png", "b.png"),
        ("linked/c.png", "linked/c.png"),
        ("s/a.png", "s/a.png"),
    ]
    assert pairing.unmatched_dist == [] and pairing.unused_refs == []


def test_nested_folders_do_not_mix(tmp_path):
    db = tmp_path / "db"
    touch(db, "I01.png", "I02.png", "distorted/I01_1.png", "distorted/I02_1.png")
    pairing = pair_folders(db, db / "distorted")
    assert pairing.mode == "prefix"
    assert [p.ref.name for p in pairing.pairs] == ["I01.png", "I02.png"]
    assert pairing.unused_refs == []  # the distorted files are not taken for references


def test_unreadable_subfolder_is_an_error(dirs, monkeypatch):
    """A folder that cannot be listed must not silently drop its files from the pairing."""
    ref, dist = dirs
    touch(ref, "a.png")
    touch(dist, "a.png", "locked/b.png")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # os.walk lists folders with os.scandir
    with pytest.raises(PairingError) as info:
        pair_folders(ref, dist)
    assert str(info.value) == f"{dist / 'locked'}: cannot read distorted folder (Permission denied)"


# ------------------------------------------------------------------------------------------------------
# folder errors


def test_missing_folder(dirs, tmp_path):
    ref, dist = dirs
    touch(ref, "a.png")
    with pytest.raises(PairingError) as info:
        pair_folders(ref, tmp_path / "nope")
    assert str(info.value) == f"{tmp_path / 'nope'}: distorted folder not found"
    with pytest.raises(PairingError, match="reference folder not found"):
        pair_folders(tmp_path / "nope", dist)


def test_file_instead_of_folder(dirs):
    ref, dist = dirs
    touch(ref, "a.png")
    with pytest.raises(PairingError, match="not a folder"):
        pair_folders(ref, ref / "a.png")


def test_empty_folders(dirs):
    ref, dist = dirs
    touch(dist, "a.png")
    touch(ref, "notes.txt")
    with pytest.raises(PairingError) as info:
        pair_folders(ref, dist)
    assert str(info.value).startswith(f"{ref}: no image files")
    touch(ref, "a.png")
    (dist / "a.png").unlink()
    with pytest.raises(PairingError) as info:
        pair_folders(ref, dist)
    assert str(info.value).startswith(f"{dist}: no image files")


def test_same_folder_twice(dirs):
    ref, _ = dirs
    touch(ref, "a.png")
    with pytest.raises(PairingError, match="same folder"):
        pair_folders(ref, ref / ".")


def test_unknown_mode(dirs):
    ref, dist = dirs
    with pytest.raises(UsageError, match="unknown pairing mode 'sorted'"):
        pair_folders(ref, dist, mode="sorted")


def test_zero_pairs_in_explicit_modes(dirs):
    ref, dist = dirs
    touch(ref, "I01.png")
    touch(dist, "sub/I01.png")
    with pytest.raises(PairingError, match="by relative path"):
        pair_folders(ref, dist, mode="path")
    touch(dist, "X01_1.png")
    assert pair_folders(ref, dist, mode="prefix").unmatched_dist == [dist / "X01_1.png"]


# ------------------------------------------------------------------------------------------------------
# read_pairs_csv


def write_csv(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_csv_basic_relative_absolute_extra_columns_order(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    csv_path = write_csv(
        lists / "pairs.csv",
        "\ufeffnote, Dist ,REF\n"
        "x,d/b.png,r/one.png\n"
        "\n"
        f'y,"d/with, comma.png",{tmp_path / "abs.png"}\n'
        "   ,  ,  \n"
        "z,d/a.png,r/one.png\n"
        "again,d/a.png,r/one.png\n",
    )
    pairing = read_pairs_csv(csv_path)
    assert pairing.mode == "csv"
    assert pairing.pairs == [
        Pair(tmp_path / "abs.png", lists / "d/with, comma.png"),
        Pair(lists / "r/one.png", lists / "d/a.png"),
        Pair(lists / "r/one.png", lists / "d/b.png"),
    ]
    assert pairing.unmatched_dist == [] and pairing.unused_refs == []


def test_csv_missing_files_are_not_an_error(tmp_path):
    pairing = read_pairs_csv(write_csv(tmp_path / "p.csv", "ref,dist\nnope.png,gone.png\n"))
    assert pairing.pairs == [Pair(tmp_path / "nope.png", tmp_path / "gone.png")]


def test_csv_crlf_and_non_ascii(tmp_path):
    pairing = read_pairs_csv(write_csv(tmp_path / "p.csv", 'ref,dist\r\nréf ü.png,"dist ""q"".png"\r\n'))
    assert pairing.pairs == [Pair(tmp_path / "réf ü.png", tmp_path / 'dist "q".png')]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "line 1: empty file"),
        (b"\n\n", "line 1: empty file"),
        (b"a.png,b.png\nc.png,d.png\n", "line 1: expected a header naming the columns 'ref' and 'dist'"),
        (b"\nref,distorted\na,b\n", "line 2: expected a header"),
        (b"ref,dist,ref\na,b,c\n", "line 1: the header names the column 'ref' twice"),
        (b"ref,dist\n", "line 1: no pairs listed"),
        (b"ref,dist\na.png,b.png\nc.png\n", "line 3: no 'dist' value"),
        (b"dist,x,ref\na.png,b.png,\n", "line 2: no 'ref' value"),
        (b"ref,dist\na.png,b.png\n\xff\xfe.png,c.png\n", "line 3: not UTF-8 text (byte 0xff)"),
        (b"ref,dist\na.png,b.png\nc.png,d\x00.png\n", "line 3: contains NUL bytes"),
        (b'ref,dist\na.png,b.png\n"c.png"x,d.png\n', "line 3: malformed CSV"),
        (b'ref,dist\na.png,"b.png\n', "line 2: malformed CSV"),
    ],
)
def test_csv_malformed(tmp_path, content, expected):
    path = write_csv(tmp_path / "p.csv", content)
    with pytest.raises(PairingError) as info:
        read_pairs_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message


def test_csv_file_errors(tmp_path):
    with pytest.raises(PairingError, match="pairs list not found"):
        read_pairs_csv(tmp_path / "nope.csv")
    with pytest.raises(PairingError, match="is a folder"):
        read_pairs_csv(tmp_path)
