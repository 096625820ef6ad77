"""Atomic file writes: write to a temporary name in the same folder, fsync, rename.

A file under its final name is therefore always complete; a killed writer leaves at most a hidden
`.NAME.XXXX.tmp`, which `sim.checkpoints.remove_stale_tmp` clears on resume.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def make_tmp(path: Path) -> Path:
    """A new empty temporary file next to path, with the permissions a plain open() would give."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _umask_mode())  # mkstemp makes 0600 files; results are meant to be shared
    return Path(tmp)


def commit_tmp(tmp_path: Path, path: Path) -> None:
    """fsync tmp_path and rename it to path."""
    with open(tmp_path, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp_path, path)


def write_atomic(path: Path, writer: Callable[[Path], None]) -> None:
    """Call writer(tmp_path), then rename tmp_path to path; a crash never leaves a partial `path`."""
    tmp_path = make_tmp(path)
    try:
        writer(tmp_path)
        commit_tmp(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    def writer(p: Path) -> None:
        p.write_text(text, encoding="utf-8")

    write_atomic(path, writer)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    def writer(p: Path) -> None:
        p.write_bytes(data)

    write_atomic(path, writer)
