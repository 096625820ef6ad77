"""A Parquet file written piece by piece (bounded memory), under a temporary name until closed."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.core.atomic import commit_tmp, discard_tmp, make_tmp

ROWS_PER_GROUP = 500_000
PIECES_PER_GROUP = 1_000  # many small frames (one per replication) cost more in overhead than in rows


class ParquetStream:
    """Append DataFrames with the same columns; `close()` renames the file into place, `abort()` drops it.

    Frames are buffered up to `rows_per_group` rows (default ROWS_PER_GROUP, or PIECES_PER_GROUP frames) and
    written in row groups of at most `rows_per_group` rows, so memory holds at most what is buffered plus the
    frame being added, whatever the total size. The Parquet writer's own memory (dictionary encoders, page
    buffers) grows with the row group, ~0.7 KiB per row of a per-minute series: a month's 43,200 minutes in
    one group cost ~30 MiB at the write, one day's 1,440 ~4 MiB.
    """

    def __init__(self, path: Path, rows_per_group: int | None = None):
        self.path = Path(path)
        self.rows_per_group = rows_per_group or ROWS_PER_GROUP
        self._buf: list[pa.Table] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._tmp: tuple[int, str, BinaryIO] | None = None
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._schema is None:
            self._schema = table.schema
        elif not table.schema.equals(self._schema, check_metadata=False):
            table = table.cast(self._schema)
        self._buf.append(table)
        self._buffered += table.num_rows
        self.rows += table.num_rows
        if self._buffered >= self.rows_per_group or len(self._buf) >= PIECES_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        table = pa.concat_tables(self._buf)
        self._buf, self._buffered = [], 0
        if self._writer is None:
            self._tmp = make_tmp(self.path)
            self._writer = pq.ParquetWriter(self._tmp[2], table.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=self.rows_per_group)

    def close(self) -> None:
        """Write what is buffered and move the file to its final name (nothing written: no file)."""
        self._flush()
        if self._writer is None or self._tmp is None:
            return
        self._writer.close()
        dfd, name, fh = self._tmp
        try:
            commit_tmp(dfd, name, fh, self.path.name)
        finally:
            os.close(dfd)
        self._writer, self._tmp = None, None

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):  # we are discarding it anyway
                self._writer.close()
        if self._tmp is not None:
            dfd, name, fh = self._tmp
            discard_tmp(dfd, name, fh)
            os.close(dfd)
        self._writer, self._tmp, self._buf = None, None, []
