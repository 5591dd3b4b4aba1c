"""atomic_write: the file is replaced whole or left as it was, and its temporary never stays behind."""

import os

import pytest

from radn_cli.atomic import atomic_write


def test_replaces_the_file_in_one_rename(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name == f".out.txt.{os.getpid()}.tmp"
        temporary.write_text("new")
        assert target.read_text() == "old"  # nothing changes until the block ends
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_an_error_leaves_the_file_as_it_was_and_no_temporary(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(error), atomic_write(target) as temporary:
        temporary.write_text("half")
        raise error()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_an_error_before_anything_was_written(tmp_path):
    with pytest.raises(ValueError), atomic_write(tmp_path / "out.txt"):
        raise ValueError
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names an fd's file through /proc")
def test_durable_syncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    synced = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        os,
        "fsync",
        lambda fd: (synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd)),
    )
    monkeypatch.setattr(os, "replace", lambda *args: (synced.append("rename"), real_replace(*args)))
    with atomic_write(target, durable=True) as temporary:
        temporary.write_text("rows")
    assert synced == [temporary.name, "rename", tmp_path.name]
    synced.clear()
    with atomic_write(target) as temporary:
        temporary.write_text("pictures")
    assert synced == ["rename"]
