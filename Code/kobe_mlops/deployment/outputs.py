"""Where the application step's outputs go, and how they replace the previous ones.

Outputs (files, or folders of part files from Spark) are written under hidden names beside their
targets and moved into place only when the run succeeded: a failed run leaves the previous ones,
never a partial file, and :func:`clean_staging` removes what a killed run left behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kobe_mlops import config
from kobe_mlops.io import staging_path


@dataclass(frozen=True)
class OutputPaths:
    """The two outputs of the application step: scored rows and rejected rows."""

    predictions: Path
    rejected: Path

    @classmethod
    def of_workspace(cls, paths: config.WorkspacePaths | None = None) -> OutputPaths:
        paths = paths or config.workspace_paths()
        return cls(paths.predictions_prod, paths.rejected_prod)

    def __iter__(self) -> Iterator[Path]:
        return iter((self.predictions, self.rejected))

    def staging(self) -> OutputPaths:
        return OutputPaths(*(staging_path(target) for target in self))

    def prepare(self) -> None:
        for target in self:
            target.parent.mkdir(parents=True, exist_ok=True)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def install(staged: Path, target: Path) -> None:
    """Move ``staged`` (a file or a folder) to ``target``: a file over a file atomically, otherwise
    the old target is renamed aside first (and put back if the second rename fails)."""
    if staged.is_file() and not target.is_dir():
        os.replace(staged, target)
        return
    aside = None
    if target.exists() or target.is_symlink():
        aside = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.old"
        os.replace(target, aside)
    try:
        os.replace(staged, target)
    except BaseException:
        if aside is not None:
            os.replace(aside, target)
        raise
    if aside is not None:
        remove(aside)


@contextmanager
def staged_outputs(targets: OutputPaths | None) -> Iterator[OutputPaths | None]:
    """Hidden paths beside ``targets``, published if the block succeeds, removed in any case (None: no outputs)."""
    if targets is None:
        yield None
        return
    targets.prepare()
    staged = targets.staging()
    try:
        yield staged
        publish(staged, targets)
    finally:
        discard(staged)


def publish(staged: OutputPaths, targets: OutputPaths) -> None:
    """Move each staged output onto its target (predictions first)."""
    for path, target in zip(staged, targets, strict=True):
        install(path, target)


def discard(staged: OutputPaths) -> None:
    for path in staged:
        remove(path)


def clean_staging(targets: OutputPaths) -> list[Path]:
    """Remove what a killed run left beside ``targets`` (safe only under the step's lock); the paths removed."""
    removed = []
    for target in targets:
        if target.parent.is_dir():
            for path in target.parent.glob(f".*{target.name}.*"):
                if path.name.endswith((".tmp", ".old")):
                    remove(path)
                    removed.append(path)
    return removed
