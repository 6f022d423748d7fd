"""File helpers shared by every stage: atomic writes and SHA-256 digests."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


def staging_path(target: Path) -> Path:
    """A hidden name beside ``target`` (same file system, so the final rename is cheap)."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")


@contextmanager
def atomic_path(target: str | os.PathLike, private: bool = False) -> Iterator[Path]:
    """A temporary path beside ``target``, moved into place only if the block succeeds: a reader never
    sees a half-written file, and a failure leaves the previous one untouched. The block's writer creates
    the file with the usual mode; ``private`` creates it first with mode 0600 (it holds a secret)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = staging_path(target)
    if private:
        tmp_path.touch(mode=0o600, exist_ok=False)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_parquet_atomic(frame: pd.DataFrame, target: str | os.PathLike) -> Path:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(target)


def sha256_of(path: str | os.PathLike) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
