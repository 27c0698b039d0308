"""Output tables written atomically: a temporary file beside the target, moved into place."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from features.atomic import UTF8_BOM, publish, temporary_file


class AtomicTableWriter:
    """Parquet or CSV (by extension) written chunk by chunk into a temporary file in the
    target folder, moved into place by `commit`; `abort` leaves no trace."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema = Path(path), schema
        self.tmp = temporary_file(self.path)
        self._open()

    def _open(self) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        schema = self.schema
        self.closed = False
        if self._parquet:
            self.writer = pq.ParquetWriter(self.tmp, schema)
        else:
            self.sink = open(self.tmp, "wb")  # noqa: SIM115 (closed in commit / abort)
            self.sink.write(UTF8_BOM)  # see features.atomic.CSV_ENCODING
            self.writer = pacsv.CSVWriter(self.sink, schema)

    def write(self, frame: pd.DataFrame) -> None:
        self.writer.write_table(pa.Table.from_pandas(frame, schema=self.schema,
                                                     preserve_index=False))

    def read_columns(self, columns: list[str]) -> pd.DataFrame:
        """`columns` of everything written so far (the file is closed for writing)."""
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        self._close()
        if self._parquet:
            return pq.read_table(self.tmp, columns=columns).to_pandas()
        return pacsv.read_csv(self.tmp, convert_options=self._csv_options(columns)).to_pandas()

    def rewrite(self, transform) -> None:
        """Stream the written rows through `transform(table, first row) -> table` (same
        schema) into a new temporary file, batch by batch; nothing is published yet."""
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        self._close()
        old, self.tmp = self.tmp, temporary_file(self.path)
        try:
            if self._parquet:
                batches = pq.ParquetFile(old).iter_batches(batch_size=100_000)
            else:
                batches = pacsv.open_csv(old, convert_options=self._csv_options())
            self._open()
            offset = 0
            for batch in batches:
                self.writer.write_table(transform(pa.Table.from_batches([batch]), offset))
                offset += batch.num_rows
            self._close()
        finally:
            old.unlink(missing_ok=True)

    @property
    def _parquet(self) -> bool:
        return self.path.suffix.lower() == ".parquet"

    def _csv_options(self, columns: list[str] | None = None):
        import pyarrow.csv as pacsv

        # The file's own schema: read back exactly what was written (pyarrow's reader skips
        # the UTF-8 BOM); empty text fields are nulls, as written.
        return pacsv.ConvertOptions(column_types=self.schema, strings_can_be_null=True,
                                    include_columns=columns)

    def commit(self) -> None:
        self._close()
        publish(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.writer.close()
        finally:
            if getattr(self, "sink", None) is not None:
                self.sink.close()
                self.sink = None
