import os
import stat
import tempfile

import pandas as pd
import pyarrow as pa

from features.atomic import publish
from features.contract import write_rejects
from serving.writer import AtomicTableWriter


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_get_the_usual_mode_not_a_private_one(tmp_path):
    rejects = write_rejects(pd.DataFrame({"table": ["firms"], "row": [3]}), tmp_path / "r.csv")
    assert _mode(rejects) == 0o666 & ~_umask()
    writer = AtomicTableWriter(tmp_path / "scores.parquet", pa.schema([("firm_id", pa.string())]))
    writer.write(pd.DataFrame({"firm_id": ["F1"]}))
    writer.commit()
    assert _mode(tmp_path / "scores.parquet") == 0o666 & ~_umask()


def test_a_published_folder_gets_the_usual_mode(tmp_path):
    folder = tempfile.mkdtemp(dir=tmp_path)
    assert _mode(folder) == 0o700
    publish(folder, tmp_path / "out")
    assert _mode(tmp_path / "out") == 0o777 & ~_umask()


def test_csv_for_people_opens_in_excel_with_chinese(tmp_path):
    """A UTF-8 byte-order mark, so Excel reads the Chinese names; pandas reads it back."""
    import pandas as pd

    from features.atomic import write_csv

    frame = pd.DataFrame({"firm_id": ["91330100MA2B3C4D5E"], "name": ["杭州海康精密有限公司"]})
    path = write_csv(frame, tmp_path / "out.csv")
    assert path.read_bytes().startswith("\ufeff".encode())
    pd.testing.assert_frame_equal(pd.read_csv(path), frame)
