"""The crash-safe, resumable results CSV: format, resume (exactly once), lock, and real kills."""

from __future__ import annotations

import csv
import errno
import fcntl
import math
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radn_cli.errors import RadnError, UsageError
from radn_cli.results import COLUMNS, HEADER_LINE, ResultsWriter, check_writable
from radn_cli.results import lock as lock_module
from radn_cli.results import writable as writable_module
from radn_cli.results import writer as writer_module

REPO = Path(__file__).resolve().parents[1]
KEYS = ("ref", "dist", "weights", "precision")


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames) == COLUMNS
        return list(reader)


def row(i: int, **extra: object) -> dict[str, object]:
    return {
        "ref": f"r{i}.png",
        "dist": f"d{i}.png",
        "score": i / 3,
        "weights": "w",
        "precision": "fp32",
        **extra,
    }


def lock_path(out: Path) -> Path:
    return Path(f"{out}.lock")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


# ------------------------------------------------------------------------------------------------------
# format


def test_header_and_rows(tmp_path):
    out = tmp_path / "out.csv"
    with ResultsWriter(out) as writer:
        assert writer.done_keys() == set()
        writer.write(row(1, patches=12, width=640, height=480))
        writer.write(
            {"ref": "r2.png", "dist": "d2.png", "weights": "w", "precision": "fp32", "error": "boom"}
        )
    text = out.read_text()
    assert text.startswith(HEADER_LINE)
    assert text.splitlines()[1] == "r1.png,d1.png,0.3333333333333333,12,640,480,w,fp32,,"
    rows = read_rows(out)
    assert rows[1] == dict.fromkeys(COLUMNS, "") | {
        "ref": "r2.png",
        "dist": "d2.png",
        "weights": "w",
        "precision": "fp32",
        "error": "boom",
    }


def test_numbers_round_trip_exactly(tmp_path):
    values = [0.1, 1 / 3, 1e-300, -0.0, 2.0**0.5 * 1e17, float("inf"), np.float64(2 / 3), np.float32(0.1)]
    out = tmp_path / "out.csv"
    with ResultsWriter(out) as writer:
        for i, value in enumerate(values):
            writer.write(row(i, score=value, patches=np.int64(7), width=3, height=True and 4))
        writer.write(row(99, score=float("nan")))
        writer.write(row(100, score=np.array(0.25), patches=np.array(3)))  # 0-d arrays / tensors
    text = out.read_text()
    assert "np." not in text and "float" not in text
    rows = read_rows(out)
    for value, written in zip(values, rows, strict=False):
        assert float(written["score"]) == float(value)
        assert math.copysign(1, float(written["score"])) == math.copysign(1, float(value))
        assert written["patches"] == "7"
    assert rows[2]["score"] == "1e-300" and rows[0]["score"] == "0.1"
    assert math.isnan(float(rows[-2]["score"]))
    assert (rows[-1]["score"], rows[-1]["patches"]) == ("0.25", "3")


PATHLIKE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cells=st.lists(
        st.tuples(PATHLIKE, PATHLIKE, st.text(max_size=40), st.floats(allow_nan=False)),
        min_size=1,
        max_size=8,
        unique_by=lambda cell: (cell[0], cell[1]),
    )
)
def test_quoting_round_trips(tmp_path_factory, cells):
    """Commas, quotes, spaces, newlines, carriage returns, non-ASCII: all read back unchanged."""
    out = tmp_path_factory.mktemp("q") / "out.csv"
    with ResultsWriter(out) as writer:
        for ref, dist, error, score in cells:
            writer.write({"ref": ref, "dist": dist, "score": score, "error": error.replace("\x00", "")})
    rows = read_rows(out)
    assert [(r["ref"], r["dist"], r["error"], float(r["score"])) for r in rows] == [
        (ref, dist, error.replace("\x00", ""), score) for ref, dist, error, score in cells
    ]
    # and a resume reads the same keys back
    with ResultsWriter(out, resume=True) as writer:
        done = writer.done_keys()
    assert done == {
        (ref, dist, "", "", "native") for ref, dist, error, _ in cells if not error.replace("\x00", "")
    }


def test_special_names_and_messages(tmp_path):
    odd_name = os.fsdecode(b"caf\xe9 not utf8.png")  # a Linux file name that is not UTF-8
    specials = [
        ('a, "quoted" name.png', "d 1.png", "line one\nline two"),
        ("ünïcødé 图像.png", "tab\there.png", "carriage\rreturn"),
        (odd_name, "x.png", "nul\x00inside"),
    ]
    out = tmp_path / "out.csv"
    with ResultsWriter(out) as writer:
        for ref, dist, error in specials:
            writer.write({"ref": ref, "dist": dist, "error": error})
    rows = read_rows(out)
    assert [(r["ref"], r["dist"]) for r in rows] == [(ref, dist) for ref, dist, _ in specials]
    assert [r["error"] for r in rows] == ["line one\nline two", "carriage\rreturn", "nul\ufffdinside"]
    assert os.fsencode(rows[2]["ref"]) == b"caf\xe9 not utf8.png"


def test_write_validation(tmp_path):
    writer = ResultsWriter(tmp_path / "out.csv")
    with pytest.raises(ValueError, match="unknown result columns: colour"):
        writer.write(row(1, colour="red"))
    with pytest.raises(ValueError, match="needs 'ref' and 'dist'"):
        writer.write({"ref": "a.png"})
    writer.write(row(1))
    with pytest.raises(ValueError, match="already hold a row"):
        writer.write(row(1, score=2.0))
    writer.write(row(1, precision="bf16"))  # another key
    writer.close()
    writer.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        writer.write(row(2))


# ------------------------------------------------------------------------------------------------------
# how rows reach the disk


def test_each_row_is_one_os_write_on_an_append_only_file(tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    writer = ResultsWriter(out)
    assert fcntl.fcntl(writer._fd, fcntl.F_GETFL) & os.O_APPEND
    calls: list[bytes] = []
    real_write = os.write

    def spy(fd, data):
        if fd == writer._fd:
            calls.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    rows = [row(1, error="multi\nline, error"), row(2), row(3, dist="d, 3.png")]
    for r in rows:
        writer.write(r)
        assert out.read_bytes().endswith(calls[-1])  # in the file at once, no user-space buffer
    writer.close()
    assert len(calls) == 3
    assert b"".join(calls) == out.read_bytes()[len(HEADER_LINE) :]
    assert all(call.endswith(b"\n") for call in calls)


def test_fsync_at_most_every_interval_and_on_close(tmp_path, monkeypatch):
    clock = {"now": 1000.0}

    class FakeTime:
        monotonic = staticmethod(lambda: clock["now"])
        sleep = staticmethod(time.sleep)

    monkeypatch.setattr(writer_module, "time", FakeTime)
    writer = ResultsWriter(tmp_path / "out.csv", fsync_interval=2.0)
    writer_fd = writer._fd
    synced: list[float] = []
    real_fsync = os.fsync

    def spy(fd):
        if fd == writer_fd:
            synced.append(clock["now"])
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    for i, now in enumerate([1000.5, 1001.9, 1002.0, 1003.0, 1003.9, 1004.5, 1004.6]):
        clock["now"] = now
        writer.write(row(i))
    clock["now"] = 1005.0
    writer.close()
    assert synced == [1002.0, 1004.5, 1005.0]


def test_fsync_interval_zero_syncs_every_row(tmp_path, monkeypatch):
    writer = ResultsWriter(tmp_path / "out.csv", fsync_interval=0)
    count = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (count.append(fd), real_fsync(fd)))
    for i in range(3):
        writer.write(row(i))
    assert len(count) == 3
    writer.close()


def test_failed_write_leaves_no_partial_row(tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    writer = ResultsWriter(out)
    writer.write(row(1))
    before = out.read_bytes()
    real_write = os.write
    state = {"calls": 0}

    def half_then_full_disk(fd, data):
        if fd != writer._fd:
            return real_write(fd, data)
        state["calls"] += 1
        if state["calls"] == 1:
            return real_write(fd, bytes(data)[: len(data) // 2])  # a short write...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(os, "write", half_then_full_disk)
    with pytest.raises(RadnError) as info:
        writer.write(row(2, error="x" * 100))
    assert str(info.value) == f"{out}: cannot write results (No space left on device)"
    assert out.read_bytes() == before
    monkeypatch.setattr(os, "write", real_write)
    writer.write(row(2))  # the key was not recorded as written
    writer.close()
    assert [r["ref"] for r in read_rows(out)] == ["r1.png", "r2.png"]


# ------------------------------------------------------------------------------------------------------
# existing files


def test_existing_file_is_refused_without_resume_or_overwrite(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    with pytest.raises(RadnError) as info:
        ResultsWriter(out)
    assert str(info.value) == f"{out}: exists; use --resume to continue it or --overwrite to replace it"
    assert out.read_text() == "precious\n"
    assert not lock_path(out).exists()
    with ResultsWriter(out, overwrite=True) as writer:
        writer.write(row(1))
    assert len(read_rows(out)) == 1


def test_empty_existing_file_is_fine(tmp_path):
    out = tmp_path / "out.csv"
    out.touch()
    with ResultsWriter(out) as writer:
        writer.write(row(1))
    assert out.read_text().startswith(HEADER_LINE)


def test_resume_and_overwrite_together(tmp_path):
    with pytest.raises(UsageError):
        ResultsWriter(tmp_path / "out.csv", resume=True, overwrite=True)


def test_resume_without_file_starts_fresh(tmp_path):
    out = tmp_path / "out.csv"
    with ResultsWriter(out, resume=True) as writer:
        assert writer.done_keys() == set()
        writer.write(row(1))
    assert len(read_rows(out)) == 1


def test_resume_refuses_a_foreign_header(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("ref,dist,score\na,b,1\n")
    with pytest.raises(RadnError) as info:
        ResultsWriter(out, resume=True)
    message = str(info.value)
    assert message.startswith(f"{out}: line 1: not a radn results file") and "--overwrite" in message
    assert out.read_text() == "ref,dist,score\na,b,1\n"
    assert not lock_path(out).exists()


def write_run(out: Path, rows: list[dict[str, object]]) -> None:
    with ResultsWriter(out, overwrite=True) as writer:
        for r in rows:
            writer.write(r)


@pytest.mark.parametrize(
    "torn",
    [
        b"r9.png,d9.png,0.5",  # no line end
        b'r9.png,d9.png,,,,,w,fp32,"error line\n',  # inside a quoted cell
        b"r9.png,d9.png,0.5,1,2\n",  # too few cells (a foreign writer's partial line)
        b"r9.png,d9\x00\x00\x00\x00\x00\x00",  # power loss: zeros
    ],
)
def test_resume_truncates_a_torn_last_row(tmp_path, torn):
    out = tmp_path / "out.csv"
    write_run(out, [row(1), row(2)])
    clean = out.read_bytes()
    with open(out, "ab") as file:
        file.write(torn)
    with ResultsWriter(out, resume=True) as writer:
        assert out.read_bytes() == clean  # cut before anything is appended
        assert writer.done_keys() == {
            ("r1.png", "d1.png", "w", "fp32", "native"),
            ("r2.png", "d2.png", "w", "fp32", "native"),
        }
        assert writer.resume_report.dropped_tail_bytes == len(torn)
        writer.write(row(9))
    assert [r["ref"] for r in read_rows(out)] == ["r1.png", "r2.png", "r9.png"]


def test_resume_torn_header_starts_over(tmp_path):
    out = tmp_path / "out.csv"
    out.write_bytes(HEADER_LINE[:7].encode())
    with ResultsWriter(out, resume=True) as writer:
        writer.write(row(1))
    assert out.read_text() == HEADER_LINE + "r1.png,d1.png,0.3333333333333333,,,,w,fp32,,\n"


def test_resume_retries_errors_and_keeps_each_key_once(tmp_path):
    out = tmp_path / "out.csv"
    write_run(out, [row(1), row(2, score=None, error="out of memory"), row(3), row(4, error="bad\nfile")])
    kept_lines = [
        line for line in out.read_text().splitlines(keepends=True)[1:] if line.startswith(("r1", "r3"))
    ]
    with ResultsWriter(out, resume=True) as writer:
        done = writer.done_keys()
        assert done == {
            ("r1.png", "d1.png", "w", "fp32", "native"),
            ("r3.png", "d3.png", "w", "fp32", "native"),
        }
        report = writer.resume_report
        assert (report.kept_rows, report.dropped_error_rows, report.rewritten) == (2, 2, True)
        # the failed rows are gone already: a crash right now still leaves every key at most once
        assert out.read_text() == HEADER_LINE + "".join(kept_lines)  # kept rows byte for byte
        for i in (1, 2, 3, 4):
            key = (f"r{i}.png", f"d{i}.png", "w", "fp32", "native")
            if key not in done:
                writer.write(row(i))
        with pytest.raises(ValueError, match="already hold"):
            writer.write(row(1))
    rows = read_rows(out)
    assert sorted(r["ref"] for r in rows) == ["r1.png", "r2.png", "r3.png", "r4.png"]
    assert all(r["error"] == "" and float(r["score"]) == int(r["ref"][1]) / 3 for r in rows)


def test_resume_removes_duplicates_and_invalid_rows(tmp_path):
    out = tmp_path / "out.csv"
    body = (
        HEADER_LINE
        + "r1.png,d1.png,1.0,,,,w,fp32,,\r\n"  # CRLF (edited by hand): normalized
        + "garbage line\n"
        + "\n"
        + "r1.png,d1.png,2.0,,,,w,fp32,,native\n"  # later row of the same key ("" is native) wins
        + "r2.png,d2.png,,,,,w,fp32,failed,\n"
        + "r2.png,d2.png,5.0,,,,w,fp32,,\n"
    )
    out.write_text(body)
    with ResultsWriter(out, resume=True) as writer:
        report = writer.resume_report
    assert (report.kept_rows, report.dropped_duplicate_rows, report.dropped_invalid_rows) == (2, 1, 1)
    assert report.dropped_error_rows == 1 and report.dropped_tail_bytes == 0
    assert (
        out.read_text()
        == HEADER_LINE + "r1.png,d1.png,2.0,,,,w,fp32,,native\nr2.png,d2.png,5.0,,,,w,fp32,,\n"
    )


def test_clean_resume_does_not_rewrite(tmp_path):
    out = tmp_path / "out.csv"
    write_run(out, [row(1), row(2)])
    out.chmod(0o640)
    inode = out.stat().st_ino
    with ResultsWriter(out, resume=True) as writer:
        assert writer.resume_report.rewritten is False
        writer.write(row(3))
    assert out.stat().st_ino == inode
    assert len(read_rows(out)) == 3


def test_rewrite_keeps_mode_and_symlink(tmp_path):
    real = tmp_path / "real.csv"
    write_run(real, [row(1), row(2, error="x")])
    real.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with ResultsWriter(link, resume=True) as writer:
        assert writer.resume_report.rewritten
        writer.write(row(2))
    assert link.is_symlink()
    assert real.stat().st_mode & 0o777 == 0o640
    assert [r["ref"] for r in read_rows(real)] == ["r1.png", "r2.png"]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.lock"))


# ------------------------------------------------------------------------------------------------------
# check_writable


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new.csv")
    (tmp_path / "file.csv").write_text("x")
    check_writable(tmp_path / "file.csv")
    with pytest.raises(RadnError, match="is a folder"):
        check_writable(tmp_path)
    with pytest.raises(RadnError) as info:
        check_writable(tmp_path / "missing" / "out.csv")
    assert str(info.value) == f"{tmp_path / 'missing'}: folder does not exist"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(RadnError, match="not a regular file"):
        check_writable(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "x.csv")
    with pytest.raises(RadnError, match="broken symbolic link"):
        check_writable(tmp_path / "dangling")
    with pytest.raises(RadnError, match="is a folder"):
        ResultsWriter(tmp_path)
    assert not list(tmp_path.glob(".radn-write-test-*"))


def test_check_writable_read_only_folder(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(writable_module.tempfile, "mkstemp", refuse)  # as on a read-only mount, even for root
    with pytest.raises(RadnError) as info:
        check_writable(tmp_path / "out.csv")
    assert str(info.value) == f"{tmp_path}: cannot create files in this folder (Permission denied)"


# ------------------------------------------------------------------------------------------------------
# lock


def test_lock_file_holds_pid_and_host_and_goes_away(tmp_path):
    out = tmp_path / "out.csv"
    with ResultsWriter(out):
        assert lock_path(out).read_text() == f"{os.getpid()}\n{socket.gethostname()}\n"
        with pytest.raises(RadnError) as info:
            ResultsWriter(out, resume=True)
        assert str(info.value).startswith(
            f"{out} is being written by another radn process (pid {os.getpid()}); "
        )
    assert not lock_path(out).exists()


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_lock_released_on_exceptions(tmp_path, error):
    out = tmp_path / "out.csv"
    with pytest.raises(error), ResultsWriter(out) as writer:
        writer.write(row(1))
        raise error()
    assert not lock_path(out).exists()
    with ResultsWriter(out, resume=True) as writer:
        assert len(writer.done_keys()) == 1


def test_forgotten_close_releases_the_lock(tmp_path):
    out = tmp_path / "out.csv"
    writer = ResultsWriter(out)
    del writer
    assert not lock_path(out).exists()


def test_forked_child_does_not_remove_the_parents_lock(tmp_path):
    out = tmp_path / "out.csv"
    with ResultsWriter(out) as writer:
        child = os.fork()
        if child == 0:  # e.g. a worker forked by the batch, which exits normally
            try:
                writer.close()
            finally:
                os._exit(0)
        os.waitpid(child, 0)
        assert lock_path(out).exists()
        with pytest.raises(RadnError, match="being written"):
            ResultsWriter(out, resume=True)
        writer.write(row(1))
    assert not lock_path(out).exists()
    assert len(read_rows(out)) == 1


def test_stale_lock_file_is_taken_over(tmp_path):
    out = tmp_path / "out.csv"
    lock_path(out).write_text(f"{dead_pid()}\n{socket.gethostname()}\n")
    with ResultsWriter(out):
        assert lock_path(out).read_text().startswith(f"{os.getpid()}\n")
    assert not lock_path(out).exists()


def test_lock_of_another_host_is_not_taken_over(tmp_path):
    out = tmp_path / "out.csv"
    lock_path(out).write_text("4242\nsome-other-host\n")
    with pytest.raises(RadnError) as info:
        ResultsWriter(out)
    message = str(info.value)
    assert "host some-other-host (pid 4242)" in message and f"delete {lock_path(out)}" in message
    assert lock_path(out).exists()


def test_lock_without_flock_uses_pids(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_module, "fcntl", None)  # e.g. Windows, or a file system without flock
    out = tmp_path / "out.csv"
    with ResultsWriter(out):
        with pytest.raises(RadnError, match=f"another radn process \\(pid {os.getpid()}\\)"):
            ResultsWriter(out, resume=True)
    assert not lock_path(out).exists()
    lock_path(out).write_text(f"{dead_pid()}\n{socket.gethostname()}\n")  # stale: taken over
    with ResultsWriter(out, resume=True):
        assert lock_path(out).read_text().startswith(f"{os.getpid()}\n")
    lock_path(out).write_text(f"{os.getppid()}\n{socket.gethostname()}\n")  # alive: refused
    with pytest.raises(RadnError, match=f"pid {os.getppid()}"):
        ResultsWriter(out, resume=True)


HOLDER = textwrap.dedent(
    """
    import sys
    from radn_cli.results import ResultsWriter
    writer = ResultsWriter(sys.argv[1], overwrite=True)
    print("ready", flush=True)
    sys.stdin.readline()
    writer.close()
    """
)


def test_two_processes(tmp_path):
    """A second process is refused while the first writes; after kill -9 its lock file is taken over."""
    out = tmp_path / "out.csv"
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    with subprocess.Popen(
        [sys.executable, str(script), str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
    ) as holder:
        try:
            assert holder.stdout.readline() == b"ready\n"
            with pytest.raises(RadnError) as info:
                ResultsWriter(out, resume=True)
            assert str(info.value).startswith(
                f"{out} is being written by another radn process (pid {holder.pid}); "
            )
        finally:
            holder.kill()  # kill -9: no clean-up in the holder
            holder.wait(timeout=10)
    assert lock_path(out).read_text().startswith(f"{holder.pid}\n")  # left behind by kill -9 ...
    with ResultsWriter(out, resume=True) as writer:  # ... and taken over: the kernel dropped its flock
        writer.write(row(1))
    assert not lock_path(out).exists()


# ------------------------------------------------------------------------------------------------------
# real interruptions

WORKER = textwrap.dedent(
    """
    import math, sys, time
    from radn_cli.results import ResultsWriter

    out, attempt, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with ResultsWriter(out, resume=True, fsync_interval=0.01) as writer:
        done = writer.done_keys()
        print("ready", flush=True)
        for i in range(count):
            key = (f"refs/r{i // 4}, x.png", f'dists/"{i}" é.png', "radn-v1", "fp32", "native")
            if key in done:
                continue
            row = dict(zip(("ref", "dist", "weights", "precision"), key[:4]))  # no scale: native
            if i % 7 == 0 and attempt < 6:  # fails until the last attempt, as a flaky file would
                row["error"] = f"cannot decode\\nattempt {attempt}"
            else:
                row.update(score=math.sin(i) / 7 + i, patches=3 * i, width=64 + i, height=48)
            writer.write(row)
            time.sleep(0.001)
    """
)
COUNT = 300


def expected_rows() -> list[dict[str, str]]:
    rows = []
    for i in range(COUNT):
        values = (f"refs/r{i // 4}, x.png", f'dists/"{i}" é.png', repr(math.sin(i) / 7 + i), str(3 * i))
        rows.append(dict(zip(COLUMNS, (*values, str(64 + i), "48", "radn-v1", "fp32", "", ""), strict=True)))
    return sorted(rows, key=lambda r: r["dist"])


def assert_whole_rows(out: Path) -> None:
    data = out.read_bytes()
    assert data.endswith(b"\n")
    with open(out, newline="", encoding="utf-8") as file:
        assert all(len(cells) == len(COLUMNS) for cells in csv.reader(file, strict=True))


def run_worker(script: Path, out: Path, attempt: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), str(out), str(attempt), str(COUNT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=child_env(),
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.heavy  # a kill loop
def test_interrupted_and_resumed_run_holds_every_pair_exactly_once(tmp_path, sig):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "out.csv"
    rng = random.Random(sig)
    interrupted = 0
    for attempt in range(6):
        with run_worker(script, out, attempt) as worker:
            assert worker.stdout.readline() == b"ready\n"
            time.sleep(rng.uniform(0.0, 0.06))
            worker.send_signal(sig)
            returncode = worker.wait(timeout=20)
        if returncode == 0:
            continue  # finished before the signal
        interrupted += 1
        assert_whole_rows(out)  # never a half row
        if sig == signal.SIGKILL:
            assert lock_path(out).exists()  # stale, taken over by the next attempt
        else:
            assert returncode in (-signal.SIGINT, 130)
            assert not lock_path(out).exists()  # released by the context manager
        if attempt == 3:
            with open(out, "ab") as file:  # and a torn row, as after a power loss
                file.write(b'refs/r0, x.png,"dists/torn')
    assert interrupted >= 3
    partial = read_rows(out)
    assert 0 < len(partial) < COUNT
    assert any(r["error"] for r in partial)  # failed rows, to be retried by the last attempt

    with run_worker(script, out, attempt=6) as final:
        assert final.wait(timeout=60) == 0
    baseline = tmp_path / "baseline.csv"
    with run_worker(script, baseline, attempt=6) as uninterrupted:
        assert uninterrupted.wait(timeout=60) == 0

    rows = read_rows(out)
    keys = [tuple(r[k] for k in KEYS) for r in rows]
    assert len(keys) == len(set(keys)) == COUNT
    assert sorted(rows, key=lambda r: r["dist"]) == expected_rows()
    assert sorted(rows, key=lambda r: r["dist"]) == sorted(read_rows(baseline), key=lambda r: r["dist"])
    assert not lock_path(out).exists()
