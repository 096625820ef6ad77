"""Keyed checkpoints: one file per finished unit of work, so an interrupted run resumes where it stopped.

A `CheckpointStore` is a folder (a results folder's `.partial/`) of `<key>.pkl` files, each written to a
temporary name and renamed (sim.atomic), so a file under a final name is always complete: after Ctrl-C
or `kill -9` the store holds exactly the units that finished. Resuming is: list the keys, run what is
missing, save each as it finishes, then assemble the final files by streaming the store in key order
(one unit in memory at a time) and clear it.

Keys are built with `checkpoint_key(*parts)`: integers are zero-padded so keys sort numerically, e.g.
`checkpoint_key("rep", 12) == "rep-000012"`; a sweep or a plan keys each point,
`checkpoint_key("servers", 6, "rep", 3) == "servers-000006-rep-000003"` (see docs/resume.md).
"""

from __future__ import annotations

import contextlib
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sim.atomic import write_bytes_atomic

SUFFIX = ".pkl"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+]+")


def checkpoint_key(*parts: str | int | float) -> str:
    """A file-name-safe key; ints are zero-padded to 6 digits so that keys sort in numeric order."""
    out = []
    for p in parts:
        if isinstance(p, bool):
            p = str(p).lower()
        if isinstance(p, int):
            out.append(f"{p:06d}" if p >= 0 else f"m{-p:06d}")
        else:
            out.append(_UNSAFE.sub("_", str(p)) or "_")
    return "-".join(out)


def remove_stale_tmp(folder: Path) -> int:
    """Delete temporary files (`.NAME.XXXX.tmp`) that a killed writer left in folder; returns how many."""
    n = 0
    if folder.is_dir():
        for f in folder.glob(".*.tmp"):
            f.unlink(missing_ok=True)
            n += 1
    return n


class CheckpointStore:
    def __init__(self, folder: Path):
        self.dir = Path(folder)

    def path(self, key: str) -> Path:
        return self.dir / f"{key}{SUFFIX}"

    def save(self, key: str, obj: Any) -> None:
        write_bytes_atomic(self.path(key), pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def keys(self, prefix: str = "") -> list[str]:
        """Finished keys (sorted); temporary files are never listed."""
        if not self.dir.is_dir():
            return []
        return sorted(f.name[: -len(SUFFIX)] for f in self.dir.glob(f"{prefix}*{SUFFIX}") if not f.name.startswith("."))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.path(key).is_file()

    def __len__(self) -> int:
        return len(self.keys())

    def load(self, key: str) -> Any:
        """The object saved under key; a damaged file is deleted and KeyError raised (the unit reruns)."""
        path = self.path(key)
        try:
            return pickle.loads(path.read_bytes())
        except FileNotFoundError:
            raise KeyError(key) from None
        except Exception:  # noqa: BLE001 - unreadable (disk trouble, another version): rerun it
            path.unlink(missing_ok=True)
            raise KeyError(key) from None

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """(key, object) in key order, loading one at a time; damaged files are skipped (and deleted)."""
        for key in self.keys(prefix):
            try:
                yield key, self.load(key)
            except KeyError:
                continue

    def remove_stale_tmp(self) -> int:
        return remove_stale_tmp(self.dir)

    def clear(self) -> None:
        if self.dir.is_dir():
            for f in self.dir.iterdir():
                if f.is_file():
                    f.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # something else lives there; leave it
                self.dir.rmdir()
