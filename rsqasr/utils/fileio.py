"""Safe file writes: atomic replacement for regular files, write-through for everything else.

A regular file (or a path that does not exist yet) is written to a temporary name beside it and
renamed onto it, so a killed process leaves either the old file or the new one, never half a file.
Anything else that already exists at the path (a device node such as ``/dev/null`` or
``/dev/stdout``, a FIFO, a symlink) is opened and written through instead: renaming over it would
replace the node itself (as root, a rename onto ``/dev/null`` turns it into a regular file for the
whole machine) or cut a symlink loose from its target.

New files get the usual mode, 0666 less the process umask (the temporary file is created with
``os.open(..., 0o666)``, which applies the umask), not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import IO, Iterator


def replaceable(path: str | os.PathLike) -> bool:
    """True when ``path`` may be replaced by a rename: it does not exist, or it is a regular file
    (not a symlink, device, FIFO or socket). ``lstat`` does not follow symlinks."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    return stat.S_ISREG(st.st_mode)


def _create_temp(path: Path) -> tuple[int, Path]:
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: could not create a temporary file beside it")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open ``path`` for writing a whole file.

    A regular file or a new path: a temporary file next to ``path``, fsynced and renamed onto
    ``path`` on a clean exit; on an exception it is removed and ``path`` is left untouched.
    Anything else (device, FIFO, symlink): ``path`` itself, opened for writing (see the module
    docstring).
    """
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"atomic_open only writes whole files, got mode {mode!r}")
    if "b" in mode:
        encoding = None
    path = Path(path)
    if not replaceable(path):
        with open(path, mode, encoding=encoding) as f:
            yield f
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if not replaceable(path):   # something else appeared at path meanwhile: never rename over it
            raise FileExistsError(f"{path}: became a non-regular file while being written; not replaced")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_dead_temps(path: str | os.PathLike) -> list[Path]:
    """Remove ``.<name>.<pid>.tmp`` files beside ``path`` whose writer (pid) is no longer alive:
    what a SIGKILLed writer leaves behind. Returns what was removed."""
    path = Path(path)
    removed = []
    prefix = f".{path.name}."
    if not path.parent.is_dir():
        return removed
    for p in path.parent.iterdir():
        if not (p.name.startswith(prefix) and p.name.endswith(".tmp")):
            continue
        pid = p.name[len(prefix):-len(".tmp")]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue                      # its writer is still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue                      # alive, another user's
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)
