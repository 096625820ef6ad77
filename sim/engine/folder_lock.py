"""An exclusive lock on a results folder for as long as a command writes it.

`<folder>/.capsim.lock` is created without following symlinks, locked with `fcntl.flock(LOCK_EX | LOCK_NB)`
and holds the holder's PID; a second command on the same folder is refused at once (`FolderLocked`, exit 2,
naming that PID) instead of mixing its files with the first's. The kernel drops the lock when the holder
dies, even by `kill -9`; a lock file left behind then is simply taken over. The holder removes the file
when it is done (after checking it is still the file it locked, so a waiting process never locks a file
that is no longer there).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from sim.core.atomic import dir_fd

LOCK_NAME = ".capsim.lock"


class FolderLocked(Exception):
    """Another process holds the folder's lock."""


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return f"PID {text}"
    return "PID unknown"


@contextlib.contextmanager
def lock_folder(folder: Path) -> Iterator[None]:
    """Hold the folder's lock for the block (the folder is made if missing; a symlinked folder is refused)."""
    folder = Path(folder)
    with dir_fd(folder) as dfd:
        for _ in range(100):  # only loops when a holder removed the file between our open and our lock
            fd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise FolderLocked(
                    f"{folder} is being written by another capsim run ({holder}); wait for it to finish "
                    "or use another --out"
                ) from None
            try:
                same = os.stat(LOCK_NAME, dir_fd=dfd, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        else:  # pragma: no cover - a lock file recreated and removed 100 times in a row
            raise FolderLocked(f"{folder}: its lock file keeps changing; try again")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            os.fsync(fd)
            yield
        finally:
            with contextlib.suppress(OSError):
                if os.stat(LOCK_NAME, dir_fd=dfd, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                    os.unlink(LOCK_NAME, dir_fd=dfd)
            os.close(fd)
