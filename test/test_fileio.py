"""rsqasr.utils.fileio: atomic replacement of regular files, write-through for device nodes, FIFOs
and symlinks (never renamed over), and the umask honoured for new files."""

from __future__ import annotations

import os
import stat
import subprocess
import threading

import pytest

from rsqasr.utils.fileio import atomic_open, atomic_write_bytes, atomic_write_text, replaceable


def null_device(path) -> None:
    """A character device with /dev/null's numbers (1, 3) at ``path``: writes to it vanish.
    Needs root (CAP_MKNOD); skips otherwise, and on a filesystem mounted nodev."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        with open(path, "w") as f:
            f.write("probe")
    except PermissionError as e:
        pytest.skip(f"cannot make or open a device node here: {e}")


def test_regular_file_replaced_atomically_with_umask_mode(tmp_path):
    p = tmp_path / "a.txt"
    old = os.umask(0o027)
    try:
        atomic_write_text(p, "one\n")
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    finally:
        os.umask(old)
    atomic_write_text(p, "two\n")
    assert p.read_text() == "two\n"
    with pytest.raises(RuntimeError):
        with atomic_open(p) as f:
            f.write("half")
            raise RuntimeError("killed")
    assert p.read_text() == "two\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.txt"]


def test_device_node_is_written_through_not_replaced(tmp_path):
    dev = tmp_path / "null"
    null_device(dev)
    assert not replaceable(dev)
    atomic_write_text(dev, "hello\n")
    atomic_write_bytes(dev, b"\0" * 10)
    st = os.lstat(dev)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["null"]


def test_symlink_is_kept_and_its_target_written(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write_text(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"


def test_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    atomic_write_text(fifo, "through the pipe\n")
    reader.join(10)
    assert got == ["through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dead_writers_temps_are_removed(tmp_path):
    from rsqasr.utils.fileio import remove_dead_temps

    out = tmp_path / "raw_fbank.1.ark"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".raw_fbank.1.ark.{dead.pid}.tmp"
    live = tmp_path / f".raw_fbank.1.ark.{os.getppid()}.tmp"
    other = tmp_path / f".raw_fbank.2.ark.{dead.pid}.tmp"
    for p in (stale, live, other):
        p.write_text("x")
    assert remove_dead_temps(out) == [stale]
    assert not stale.exists() and live.exists() and other.exists()
