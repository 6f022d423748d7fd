"""Fetch the course datasets from their canonical URLs or a local folder, and verify them.

Raw files are immutable: one in ``data/raw`` with the expected digest is reused, any other replaced atomically.
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
# What set the source when notebook 01 is given one: its parameter, which run_all.py fills from its flag.
PARAMETER = "notebook parameter data_source (run_all.py --data-source)"


class AcquisitionError(RuntimeError):
    """The data could not be fetched or is not the file the project expects."""


@dataclass(frozen=True)
class DataSource:
    location: str  # a base URL, or an absolute folder
    set_by: str  # the parameter, flag or variable that chose it, or the default

    def describe(self) -> str:
        return f"{self.location} (set by {self.set_by})"


@dataclass(frozen=True)
class AcquiredFile:
    name: str
    path: Path
    origin: str  # the URL downloaded, the file copied, or the raw file reused
    sha256: str
    how: str  # "downloaded", "copied" or "reused": every one verified against its digest


def resolve_source(source: str | None = None, set_by: str = PARAMETER) -> DataSource:
    """The explicit source, else ``$KOBE_DATA_SOURCE``, else the canonical URL; a relative
    folder is taken from the project root."""
    if not source and os.environ.get(config.DATA_SOURCE_ENV):
        source, set_by = os.environ[config.DATA_SOURCE_ENV], f"${config.DATA_SOURCE_ENV}"
    if not source:
        return DataSource(config.CANONICAL_DATA_URL, "the default, the canonical URL")
    return DataSource(source if is_url(source) else str(config.project_path(source)), set_by)


def is_url(source: str) -> bool:
    return source.split("://", 1)[0].lower() in {"http", "https", "file"}


def _fetch(source: DataSource, name: str, destination: Path) -> tuple[str, str]:
    """Copy or download ``name`` from ``source`` to ``destination``; return (origin, how)."""
    if is_url(source.location):
        url = source.location.rstrip("/") + "/" + name
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
                with open(destination, "wb") as handle:
                    shutil.copyfileobj(response, handle)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AcquisitionError(
                f"Could not download {name} from {url} ({reason}); source {source.describe()}. Without "
                f"network access, point --data-source (or ${config.DATA_SOURCE_ENV}, or the notebook's "
                f"data_source) at a folder holding the course files, e.g. ../shared/data."
            ) from None
        return url, "downloaded"
    folder = Path(source.location)
    origin = folder / name
    if not folder.is_dir():
        raise AcquisitionError(
            f"Data source {source.describe()} is not a folder or URL: give a folder holding {name} "
            "or a base URL (a relative folder is taken from the project root)."
        )
    if not origin.is_file():
        raise AcquisitionError(f"Data source folder {source.describe()} has no file {name}.")
    shutil.copyfile(origin, destination)
    return str(origin), "copied"


def acquire_file(name: str, source: DataSource, raw_dir: Path) -> AcquiredFile:
    """Make ``raw_dir/name`` hold the verified course file ``name``."""
    expected = config.DATASET_SHA256[name]
    target = raw_dir / name
    if target.is_file() and sha256_of(target) == expected:
        return AcquiredFile(name, target, str(target), expected, "reused")
    with atomic_path(target) as tmp:
        origin, how = _fetch(source, name, tmp)
        actual = sha256_of(tmp)
        if actual != expected:
            raise AcquisitionError(
                f"{name} from {origin} has SHA-256 {actual}, expected {expected}: "
                f"not the course file (corrupted download or a different version)."
            )
        tmp.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # raw data is read-only
    return AcquiredFile(name, target, origin, actual, how)


def acquire_datasets(source: DataSource, raw_dir: Path) -> dict[str, AcquiredFile]:
    """Fetch and verify both course datasets; keys are ``dev`` and ``prod``."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    return {dataset: acquire_file(filename, source, raw_dir) for dataset, filename in config.DATASET_FILES.items()}


def provenance(source: DataSource, acquired: dict[str, AcquiredFile]) -> dict[str, str]:
    """The params of an ``AquisicaoDados`` run: how each file got to data/raw and from where (a source
    that served no file is not recorded as one)."""
    fetched = [item for item in acquired.values() if item.how != "reused"]
    params = {
        "data_source": source.location if fetched else "not used: every file was reused from data/raw",
        "data_source_set_by": source.set_by if fetched else "none",
    }
    for dataset, item in acquired.items():
        params |= {
            f"{dataset}_acquisition": item.how,
            f"{dataset}_origin": item.origin,
            f"{dataset}_sha256": item.sha256,
        }
    return params
