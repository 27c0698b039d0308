"""Files and folders that appear whole or not at all, with the usual permissions.

    with atomic_file(Path("out/scores.csv")) as tmp:
        frame.to_csv(tmp, index=False)          # moved onto out/scores.csv on success

Everything is written beside its target first (same file system, so the final rename is
atomic) and renamed into place only when finished: a crash or a validation error never
leaves a partial output.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def publish(tmp: str | Path, path: str | Path) -> None:
    """Rename a finished temporary file or folder onto `path` with the mode a plain open or
    mkdir would have given it: mkstemp/mkdtemp create them private (0600/0700)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, (0o777 if os.path.isdir(tmp) else 0o666) & ~umask)
    os.replace(tmp, path)


def temporary_file(path: Path) -> Path:
    """An empty private temporary file beside `path` (its folder is created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; publish it onto `path` when the block ends
    without an error, remove it otherwise."""
    path = Path(path)
    tmp = temporary_file(path)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# CSV for people: UTF-8 with a byte-order mark, so Excel (which otherwise reads a CSV in
# the system code page, GBK on Chinese Windows) shows Chinese names; every CSV reader of
# note (pandas, Arrow, R, LibreOffice) skips the mark.
CSV_ENCODING = "utf-8-sig"
UTF8_BOM = "\ufeff".encode()


def write_csv(frame, path: str | Path) -> Path:
    """``frame`` (a pandas DataFrame) as a CSV people open in Excel, written atomically."""
    path = Path(path)
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, index=False, encoding=CSV_ENCODING)
    return path


def move_folder_into_place(tmp: Path, out_dir: Path, names: Iterable[str]) -> None:
    """A new folder moves in whole; into an existing one, each finished file in `names` is
    renamed in (other files already there are left alone)."""
    if not out_dir.exists():
        publish(tmp, out_dir)
        return
    for name in names:
        os.replace(tmp / name, out_dir / name)
