"""Atomic file writes that never follow a symlink: temporary name in the same folder, fsync, rename.

A file under its final name is therefore always complete. The folder is opened once with
`O_DIRECTORY | O_NOFOLLOW` (a symlinked `.partial/` or `plots/` is refused, `UnsafePath`), the temporary
file is created in it with `O_CREAT | O_EXCL | O_NOFOLLOW`, the writer gets the open file (not a path
that could be swapped), and the rename is relative to the same folder descriptor; a symlink under the
final name is replaced, never written through.

Temporary names carry this process's token, `.NAME.<TOKEN>-XXXX.tmp`: a killed writer leaves at most such
a file, and a later run removes it only when the token is one its folder's manifest records
(`sim.checkpoints`), so a user's own hidden `.*.tmp` files are never touched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

# one token per process: names this process's temporary files, recorded in a folder's manifest
RUN_TOKEN = secrets.token_hex(8)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(OSError):
    """A path inside a results folder is a symlink or not what it should be: refused, never followed."""


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def open_dir(path: Path, create: bool = True) -> int:
    """A descriptor of folder `path`, made if missing (with its parents); its last component must be a real
    folder, not a symlink (the parents are the user's to choose: `--out` may lie under a symlinked home)."""
    path = Path(path)
    if create and not os.path.lexists(path):
        with contextlib.suppress(FileExistsError):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(path)
    try:
        return os.open(path, _DIR_FLAGS)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafePath(f"{path} is a symlink; capsim never writes or deletes through one") from None
        if os.path.lexists(path) and not os.path.isdir(path):
            raise UnsafePath(f"{path} exists and is not a folder") from None
        raise exc


@contextlib.contextmanager
def dir_fd(path: Path, create: bool = True) -> Iterator[int]:
    fd = open_dir(path, create)
    try:
        yield fd
    finally:
        os.close(fd)


def ensure_subdirs(root: Path, *parts: str) -> Path:
    """root/parts[0]/parts[1]/... made if missing, each component checked to be a real folder (no symlink)."""
    path = Path(root)
    os.close(open_dir(path))
    for part in parts:
        path = path / part
        os.close(open_dir(path))
    return path


def tmp_name(name: str) -> str:
    return f".{name}.{RUN_TOKEN}-{secrets.token_hex(4)}.tmp"


def is_tmp_of(name: str, token: str) -> bool:
    """Whether `name` is a temporary file made by the process whose token is `token`."""
    return name.startswith(".") and name.endswith(".tmp") and f".{token}-" in name


def make_tmp(path: Path) -> tuple[int, str, BinaryIO]:
    """(folder fd, temporary name, open binary file) for a new temporary file next to path."""
    dfd = open_dir(path.parent)
    try:
        while True:
            name = tmp_name(path.name)
            try:
                fd = os.open(name, _NEW_FILE_FLAGS, _umask_mode(), dir_fd=dfd)
                break
            except FileExistsError:
                continue
        return dfd, name, os.fdopen(fd, "wb")
    except BaseException:
        os.close(dfd)
        raise


def commit_tmp(dfd: int, tmp: str, fh: BinaryIO, final: str) -> None:
    """fsync and close fh, rename tmp to final in folder dfd (a symlink named final is replaced, not followed)."""
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()
    os.replace(tmp, final, src_dir_fd=dfd, dst_dir_fd=dfd)


def discard_tmp(dfd: int, tmp: str, fh: BinaryIO) -> None:
    with contextlib.suppress(OSError):
        fh.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dfd)


def write_atomic(path: Path, writer: Callable[[BinaryIO], None]) -> None:
    """Call writer(open binary file), then rename it to path; a crash never leaves a partial `path`."""
    path = Path(path)
    dfd, tmp, fh = make_tmp(path)
    try:
        try:
            writer(fh)
            commit_tmp(dfd, tmp, fh, path.name)
        except BaseException:
            discard_tmp(dfd, tmp, fh)
            raise
    finally:
        os.close(dfd)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    def writer(fh: BinaryIO) -> None:
        fh.write(data)

    write_atomic(path, writer)


def unlink_own(folder_fd: int, name: str) -> bool:
    """Remove the regular file `name` from the folder (never a folder; a symlink is removed as a link, never
    followed); False when it is not there."""
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder_fd)
    return True


def read_bytes_nofollow(folder_fd: int, name: str, limit: int | None = None) -> bytes:
    """The content of regular file `name` in the folder, refusing a symlink (UnsafePath)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink
            raise UnsafePath(f"{name} is a symlink; capsim never reads data through one") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise UnsafePath(f"{name} is not a regular file")
        return fh.read() if limit is None else fh.read(limit)
