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
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        self.path, self.schema = Path(path), schema
        self.tmp = temporary_file(self.path)
        if self.path.suffix.lower() == ".parquet":
            self.writer = pq.ParquetWriter(self.tmp, schema)
        else:
            self.sink = open(self.tmp, "wb")  # noqa: SIM115 (closed in commit / abort)
            self.sink.write(UTF8_BOM)  # see features.atomic.CSV_ENCODING
            self.writer = pacsv.CSVWriter(self.sink, schema)

    def write(self, frame: pd.DataFrame) -> None:
        self.writer.write_table(pa.Table.from_pandas(frame, schema=self.schema,
                                                     preserve_index=False))

    def commit(self) -> None:
        self._close()
        publish(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def _close(self) -> None:
        try:
            self.writer.close()
        finally:
            if hasattr(self, "sink"):
                self.sink.close()
