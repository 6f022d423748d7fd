"""Fetch the course datasets from their canonical URLs or a local folder, and verify them.

The raw files are immutable once written: a file already in ``data/raw`` with the expected
digest is left alone, and a file is only ever replaced atomically.
"""

from __future__ import annotations

import os
import shutil
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kobe_mlops import config
from kobe_mlops.io import atomic_path, sha256_of

DOWNLOAD_TIMEOUT_SECONDS = 60


class AcquisitionError(RuntimeError):
    """The data could not be fetched or is not the file the project expects."""


@dataclass(frozen=True)
class AcquiredFile:
    name: str
    path: Path
    source: str
    sha256: str
    reused: bool  # True when an identical raw file was already there


def resolve_source(source: str | None = None) -> str:
    """The explicit source, else ``$KOBE_DATA_SOURCE``, else the canonical URL."""
    return source or os.environ.get(config.DATA_SOURCE_ENV) or config.CANONICAL_DATA_URL


def is_url(source: str) -> bool:
    return source.split("://", 1)[0].lower() in {"http", "https", "file"}


def _fetch(source: str, name: str, destination: Path) -> str:
    """Copy or download ``name`` from ``source`` to ``destination``; return where it came from."""
    if is_url(source):
        url = source.rstrip("/") + "/" + name
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
                with open(destination, "wb") as handle:
                    shutil.copyfileobj(response, handle)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AcquisitionError(
                f"Could not download {name} from {url} ({reason}). Without network access, "
                f"point --data-source (or ${config.DATA_SOURCE_ENV}) at a folder holding "
                f"the course files, e.g. ../shared/data."
            ) from None
        return url
    folder = Path(source).expanduser()
    origin = folder / name
    if not folder.is_dir():
        raise AcquisitionError(
            f"Data source {folder} is not a folder or URL. Pass --data-source (or "
            f"${config.DATA_SOURCE_ENV}) as a folder holding {name} or as a base URL."
        )
    if not origin.is_file():
        raise AcquisitionError(f"Data source folder {folder} has no file {name}.")
    shutil.copyfile(origin, destination)
    return str(origin.resolve())


def acquire_file(name: str, source: str, raw_dir: Path) -> AcquiredFile:
    """Make ``raw_dir/name`` hold the verified course file ``name``."""
    expected = config.DATASET_SHA256[name]
    target = raw_dir / name
    if target.is_file() and sha256_of(target) == expected:
        return AcquiredFile(name, target, source, expected, reused=True)
    with atomic_path(target) as tmp:
        origin = _fetch(source, name, tmp)
        actual = sha256_of(tmp)
        if actual != expected:
            raise AcquisitionError(
                f"{name} from {origin} has SHA-256 {actual}, expected {expected}: "
                f"not the course file (corrupted download or a different version)."
            )
        tmp.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # raw data is read-only
    return AcquiredFile(name, target, origin, actual, reused=False)


def acquire_datasets(source: str | None = None, raw_dir: Path | None = None) -> dict[str, AcquiredFile]:
    """Fetch and verify both course datasets; keys are ``dev`` and ``prod``."""
    chosen = resolve_source(source)
    raw_dir = raw_dir or config.workspace_paths().raw_dir
    raw_dir.mkdir(parents=True, exist_ok=True)
    return {dataset: acquire_file(filename, chosen, raw_dir) for dataset, filename in config.DATASET_FILES.items()}
