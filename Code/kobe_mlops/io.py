"""File helpers shared by every stage: atomic writes and SHA-256 digests."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


@contextmanager
def atomic_path(target: str | os.PathLike, private: bool = False) -> Iterator[Path]:
    """A temporary path beside ``target``, moved into place only if the block succeeds: a reader never
    sees a half-written file, and a failure leaves the previous one untouched. ``private``: the file
    keeps mkstemp's mode 0600 (it holds a secret) instead of the usual one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        yield tmp_path
        if not private and tmp_path.exists() and tmp_path.stat().st_mode & 0o777 == 0o600:
            tmp_path.chmod(0o666 & ~_current_umask())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_parquet_atomic(frame: pd.DataFrame, target: str | os.PathLike) -> Path:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(target)


def sha256_of(path: str | os.PathLike) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
