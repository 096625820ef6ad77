"""Keyed checkpoints: one file per finished unit of work, so an interrupted run resumes where it stopped.

A `CheckpointStore` is a folder (a results folder's `.partial/`) of `<key>.npz` files, each written to a
temporary name and renamed (sim.atomic), so a file under a final name is always complete: after Ctrl-C
or `kill -9` the store holds exactly the units that finished. Resuming is: list the keys, run what is
missing, save each as it finishes, then assemble the final files by streaming the store in key order
(one unit in memory at a time) and clear it.

A checkpoint is data that cannot execute: a NumPy `.npz` read with `allow_pickle=False`, holding a JSON
header and plain numeric arrays. The header names the format, the key, and the run it belongs to (the
hash of its resolved config and its seed, `identity`); numbers are JSON (exact round trip), NumPy arrays
and NumPy scalars are arrays of the npz (exact dtype), and the only objects rebuilt are the dataclasses
registered with `register` (by field name, checked against the class). A file that is corrupt, of
another format, of another run or under another key raises `CheckpointRefused`: the caller stops with
a message (exit 2) and runs nothing.

`manifest.json` in the store records the run's identity and the tokens of the processes that wrote there
(sim.atomic.RUN_TOKEN): only temporary files carrying one of those tokens are ever removed as stale, and
`clear()` removes only the checkpoints this process saved or validated, so a user's files survive.

Keys are built with `checkpoint_key(*parts)`: integers are zero-padded so keys sort numerically, e.g.
`checkpoint_key("rep", 12) == "rep-000012"`; a sweep or a plan keys each point,
`checkpoint_key("servers", 6, "rep", 3) == "servers-000006-rep-000003"` (see docs/resume.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from sim.core.atomic import (
    RUN_TOKEN,
    UnsafePath,
    dir_fd,
    is_tmp_of,
    read_bytes_nofollow,
    unlink_own,
    write_atomic,
    write_text_atomic,
)

SUFFIX = ".npz"
LEGACY_SUFFIX = ".pkl"  # capsim < 0.x pickled checkpoints: never read (they could execute code)
MANIFEST = "manifest.json"
FORMAT = "capsim-checkpoint/1"
HEADER = "__header__"
MAX_CHECKPOINT_BYTES = 1 << 31
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+]+")
_KEY = re.compile(r"^[A-Za-z0-9_.=+-]+$")
_REGISTRY: dict[str, type] = {}


class CheckpointRefused(Exception):
    """A checkpoint that is corrupt, foreign (another run or format) or unsafe: never used."""


def register(cls: type) -> type:
    """Allow dataclass `cls` in checkpoints (rebuilt from its fields by name, nothing else)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    _REGISTRY[cls.__name__] = cls
    return cls


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


# -- encoding ------------------------------------------------------------------------------------
def _encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.ndarray | np.generic):
        arr = np.asarray(obj)
        if arr.dtype.hasobject:
            raise TypeError("object arrays cannot be checkpointed")
        name = f"a{len(arrays)}"
        arrays[name] = arr
        return {"__array__": name, "scalar": isinstance(obj, np.generic)}
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("checkpointed dicts need str keys")
        return {"__dict__": {k: _encode(v, arrays) for k, v in obj.items()}}
    if isinstance(obj, list | tuple):
        return {"__list__": [_encode(v, arrays) for v in obj], "tuple": isinstance(obj, tuple)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if _REGISTRY.get(name) is not type(obj):
            raise TypeError(f"{name} is not registered for checkpoints (sim.checkpoints.register)")
        fields = {f.name: _encode(getattr(obj, f.name), arrays) for f in dataclasses.fields(obj)}
        return {"__dataclass__": name, "fields": fields}
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}")


def _decode(doc: Any, arrays: Any) -> Any:
    if doc is None or isinstance(doc, (bool, str, int, float)):
        return doc
    if not isinstance(doc, dict):
        raise ValueError("unexpected value in the header")
    if "__array__" in doc:
        name = doc["__array__"]
        if not isinstance(name, str) or name not in arrays.files:
            raise ValueError(f"array {name!r} is missing")
        arr = arrays[name]  # allow_pickle=False: an object array raises ValueError
        return arr[()] if doc.get("scalar") is True else arr
    if "__dict__" in doc and isinstance(doc["__dict__"], dict):
        return {str(k): _decode(v, arrays) for k, v in doc["__dict__"].items()}
    if "__list__" in doc and isinstance(doc["__list__"], list):
        items = [_decode(v, arrays) for v in doc["__list__"]]
        return tuple(items) if doc.get("tuple") is True else items
    if "__dataclass__" in doc:
        cls = _REGISTRY.get(str(doc["__dataclass__"]))
        fields = doc.get("fields")
        if cls is None or not isinstance(fields, dict):
            raise ValueError(f"unknown record type {doc['__dataclass__']!r}")
        expected = {f.name for f in dataclasses.fields(cls)}
        if set(fields) != expected:
            raise ValueError(f"{cls.__name__} fields differ: {sorted(set(fields) ^ expected)}")
        return cls(**{k: _decode(v, arrays) for k, v in fields.items()})
    raise ValueError("unexpected object in the header")


def encode(key: str, obj: Any, identity: dict[str, Any]) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    body = _encode(obj, arrays)
    header = {"format": FORMAT, "key": key, "identity": identity, "body": body}
    text = json.dumps(header, allow_nan=True, separators=(",", ":"))
    buf = io.BytesIO()
    members: dict[str, Any] = {HEADER: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    np.savez(buf, allow_pickle=False, **members)
    return buf.getvalue()


def decode(key: str, data: bytes, identity: dict[str, Any]) -> Any:
    """The object in checkpoint bytes `data`; CheckpointRefused unless it is a well-formed checkpoint of
    this key and this run."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if HEADER not in arrays.files:
                raise ValueError("no header")
            header = json.loads(arrays[HEADER].tobytes().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            if header.get("key") != key:
                raise CheckpointRefused(f"holds the unit {header.get('key')!r}, not {key!r}")
            if header.get("identity") != identity:
                raise CheckpointRefused(f"belongs to another run ({_describe(header.get('identity'))})")
            return _decode(header.get("body"), arrays)
    except CheckpointRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes a parser raise, it is refused
        raise CheckpointRefused(
            f"is not a readable capsim checkpoint ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None


def _describe(identity: Any) -> str:
    if not isinstance(identity, dict):
        return "no run identity"
    return f"config {str(identity.get('config_sha256'))[:12]}, seed {identity.get('seed')}"


# -- the store -----------------------------------------------------------------------------------
class CheckpointStore:
    def __init__(self, folder: Path, identity: dict[str, Any] | None = None):
        self.dir = Path(folder)
        self.identity = dict(identity or {})
        self._own: set[str] = set()  # checkpoint files this process saved or validated
        self._recorded = False  # this process's token is in the manifest

    def path(self, key: str) -> Path:
        return self.dir / f"{key}{SUFFIX}"

    def _check_key(self, key: str) -> None:
        if not _KEY.match(key):
            raise ValueError(f"bad checkpoint key {key!r}")

    def save(self, key: str, obj: Any) -> None:
        self._check_key(key)
        data = encode(key, obj, self.identity)

        def writer(fh: BinaryIO) -> None:
            fh.write(data)

        if not self._recorded:
            self.record_writer()
        write_atomic(self.path(key), writer)
        self._own.add(self.path(key).name)

    def keys(self, prefix: str = "") -> list[str]:
        """Finished keys (sorted); temporary files are never listed."""
        return sorted(n[: -len(SUFFIX)] for n in self._names() if n.startswith(prefix) and n.endswith(SUFFIX))

    def legacy_files(self) -> list[str]:
        """Pickled checkpoints of an older capsim: never read."""
        return sorted(n for n in self._names() if n.endswith(LEGACY_SUFFIX))

    def _names(self) -> list[str]:
        if not os.path.lexists(self.dir):
            return []
        with dir_fd(self.dir, create=False) as fd:
            return [n for n in os.listdir(fd) if not n.startswith(".")]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.keys()

    def __len__(self) -> int:
        return len(self.keys())

    def load(self, key: str) -> Any:
        """The object saved under key; KeyError when absent, CheckpointRefused when it is not a valid
        checkpoint of this run (the file is left as it is: the user decides)."""
        self._check_key(key)
        name = f"{key}{SUFFIX}"
        try:
            with dir_fd(self.dir, create=False) as fd:
                data = read_bytes_nofollow(fd, name, MAX_CHECKPOINT_BYTES + 1)
        except FileNotFoundError:
            raise KeyError(key) from None
        except UnsafePath as exc:
            raise CheckpointRefused(f"{self.dir / name}: {exc}") from None
        if len(data) > MAX_CHECKPOINT_BYTES:
            raise CheckpointRefused(f"{self.dir / name}: larger than any checkpoint capsim writes")
        try:
            obj = decode(key, data, self.identity)
        except CheckpointRefused as exc:
            raise CheckpointRefused(f"{self.dir / name} {exc}") from None
        self._own.add(name)
        return obj

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """(key, object) in key order, loading one at a time (CheckpointRefused on a bad one)."""
        for key in self.keys(prefix):
            yield key, self.load(key)

    # -- manifest and cleaning -----------------------------------------------------------------------
    def _manifest(self) -> dict[str, Any]:
        try:
            with dir_fd(self.dir, create=False) as fd:
                doc = json.loads(read_bytes_nofollow(fd, MANIFEST, 1 << 20).decode("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CheckpointRefused(f"{self.dir / MANIFEST} is not a capsim manifest ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CheckpointRefused(f"{self.dir / MANIFEST} is not a capsim manifest")
        return doc

    def check_manifest(self) -> None:
        """CheckpointRefused when the store's manifest names another run."""
        doc = self._manifest()
        if doc and doc.get("identity") != self.identity:
            raise CheckpointRefused(
                f"{self.dir} holds checkpoints of another run ({_describe(doc.get('identity'))}); "
                f"this run is {_describe(self.identity)}"
            )

    def record_writer(self) -> None:
        """Add this process's token to the manifest, before it writes anything in the store."""
        doc = self._manifest()
        writers = [w for w in doc.get("writers", []) if isinstance(w, str)]
        if RUN_TOKEN not in writers:
            writers.append(RUN_TOKEN)
        write_text_atomic(
            self.dir / MANIFEST,
            json.dumps({"format": FORMAT, "identity": self.identity, "writers": writers}, indent=1) + "\n",
        )
        self._recorded = True

    def writers(self) -> list[str]:
        return [w for w in self._manifest().get("writers", []) if isinstance(w, str) and re.fullmatch(r"[0-9a-f]+", w)]

    def remove_stale_tmp(self, *folders: Path) -> int:
        """Delete the temporary files that killed writers of this run left in the store (and in folders);
        only files named with a token of the manifest are touched. Returns how many."""
        tokens = self.writers()
        n = 0
        for folder in (self.dir, *folders):
            if not tokens or not os.path.isdir(folder) or os.path.islink(folder):
                continue
            with dir_fd(folder, create=False) as fd:
                for name in os.listdir(fd):
                    if any(is_tmp_of(name, t) for t in tokens) and unlink_own(fd, name):
                        n += 1
        return n

    def clear(self, *folders: Path) -> None:
        """Remove what this process saved or validated, its manifest and its temporaries (in the store and
        in folders), then the store folder if nothing else is left in it."""
        if not os.path.lexists(self.dir):
            return
        self.remove_stale_tmp(*folders)
        with dir_fd(self.dir, create=False) as fd:
            for name in sorted(self._own):
                unlink_own(fd, name)
            unlink_own(fd, MANIFEST)
        self._own.clear()
        with contextlib.suppress(OSError):  # something else lives there; leave it
            os.rmdir(self.dir)
