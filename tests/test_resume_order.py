"""Issue 26: a resumed `radn batch` ends with its CSV in the input order (the same file as a run that
never failed), rewritten atomically once it completes; a crash during that rewrite loses no row; and a
results file written before the ``scale`` column resumes as scored at native size.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from test_cli import distorted, picture, run, save
from test_results import row

from radn_cli.results import HEADER_LINE, LEGACY_COLUMNS, ResultsWriter

torch.set_num_threads(1)


def key(i: int, scale: str = "native") -> tuple[str, ...]:
    return f"r{i}.png", f"d{i}.png", "w", "fp32", scale


def refs(path: Path, column: str = "ref") -> list[str]:
    with open(path, newline="") as handle:
        return [r[column] for r in csv.DictReader(handle)]


def test_put_in_order_rewrites_only_when_out_of_order(tmp_path):
    out = tmp_path / "out.csv"
    with ResultsWriter(out) as writer:
        for i in (1, 2, 3):
            writer.write(row(i))
        inode = out.stat().st_ino
        assert writer.put_in_order([key(1), key(2), key(3)]) is False  # a run that never stopped
    assert out.stat().st_ino == inode
    with ResultsWriter(out, overwrite=True) as writer:
        for i in (1, 3, 2, 4):  # 2 and 4 retried or new: appended last
            writer.write(row(i))
        assert writer.put_in_order([key(i) for i in (1, 2, 3, 4)]) is True
        writer.write(row(5))  # the writer goes on appending to the rewritten file
    assert refs(out) == ["r1.png", "r2.png", "r3.png", "r4.png", "r5.png"]
    assert out.read_text().startswith(HEADER_LINE)


def test_rows_of_other_keys_go_first_in_their_order(tmp_path):
    out = tmp_path / "out.csv"
    with ResultsWriter(out) as writer:
        writer.write(row(9, weights="other"))
        writer.write(row(2))
        writer.write(row(8, scale="0.5"))
        writer.write(row(1))
        writer.put_in_order([key(1), key(2), key(7)])  # 7 has no row: nothing to place
    assert refs(out) == ["r9.png", "r8.png", "r1.png", "r2.png"]


def test_an_interrupted_rewrite_leaves_every_row(tmp_path, monkeypatch):
    import radn_cli.atomic

    out = tmp_path / "out.csv"
    with ResultsWriter(out) as writer:
        for i in (2, 1):
            writer.write(row(i))
        before = out.read_bytes()

        def replace(source, target):
            raise KeyboardInterrupt  # Ctrl-C (or a crash) just before the rename

        monkeypatch.setattr(radn_cli.atomic.os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            writer.put_in_order([key(1), key(2)])
        monkeypatch.undo()
    assert out.read_bytes() == before  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary, no lock left


def test_a_file_from_before_the_scale_column_resumes_as_native(tmp_path):
    out = tmp_path / "old.csv"
    out.write_text(
        ",".join(LEGACY_COLUMNS) + "\nr1.png,d1.png,0.5,6,96,64,w,fp32,\nr2.png,d2.png,,,,,w,fp32,bad\n"
    )
    with ResultsWriter(out, resume=True) as writer:
        assert writer.done_keys() == {key(1)}
        assert writer.resume_report.rewritten and writer.resume_report.dropped_error_rows == 1
        assert out.read_text() == HEADER_LINE + "r1.png,d1.png,0.5,6,96,64,w,fp32,,native\n"


@pytest.fixture
def study(tmp_path):
    """Four pairs of 64x96 images; the second pair's distorted file is missing at first."""
    image = picture(4)
    ref = save(tmp_path / "ref.png", image)
    dists = [tmp_path / f"d{i}.png" for i in range(4)]
    for i, path in enumerate(dists):
        if i != 1:
            save(path, distorted(image, i, 10.0 + 5 * i))
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("ref,dist\n" + "".join(f"{ref},{d}\n" for d in dists))
    return pairs, image, dists


def test_a_resumed_batch_writes_the_csv_of_a_run_that_never_failed(study, weights_file, tmp_path):
    pairs, image, dists = study
    resumed, straight = tmp_path / "resumed.csv", tmp_path / "straight.csv"
    first = run("batch", "--pairs", pairs, "-o", resumed, "--weights", weights_file)
    assert first.exit_code == 1 and "radn: 3 scored, 1 failed" in first.stderr  # d1 is missing
    save(dists[1], distorted(image, 1, 15.0))
    again = run("batch", "--pairs", pairs, "-o", resumed, "--weights", weights_file, "--resume")
    assert again.exit_code == 0 and "1 scored, 0 failed, 3 already done" in again.stderr, again.output
    assert run("batch", "--pairs", pairs, "-o", straight, "--weights", weights_file).exit_code == 0
    assert refs(resumed, "dist") == refs(straight, "dist") == [str(d) for d in dists]
    assert resumed.read_bytes() == straight.read_bytes()  # same rows, same order, same numbers
