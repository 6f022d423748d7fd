"""What monitoring must know about the model that scores a file, so its figures stay honest.

Its lineage (one registered version, and the production rows it learned: counted, never graded),
its monitoring reference (logged held-out rows, then the newest labelled rows it never learned,
dated before the first row graded now) and the null model's rate (the labels known before then).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.monitoring import labels
from kobe_mlops.monitoring.calculators import (
    MIN_REFERENCE_ROWS,
    Monitor,
    MonitoringReference,
    newest_chunk_names,
    newest_chunks,
)
from kobe_mlops.tracking import names, reads

VERSION_URI = re.compile(r"^models:/([^/@]+)/(\d+)$")
RUN_URI = re.compile(r"^runs:/([0-9a-f]+)/")


class LineageError(ValueError):
    """The model URI does not lead to a registered version whose training is known."""


@dataclass(frozen=True)
class ScoringModel:
    """What monitoring needs of the scoring model: the production rows it learned and its calculators."""

    learned_shot_ids: np.ndarray  # int64, sorted
    monitor: Monitor
    null_rate: float  # the make rate known before the file


def registered_version(model_uri: str, client: MlflowClient | None = None) -> dict[str, str]:
    """``model_name``, ``model_version`` (and ``model_alias``) of an alias, version or run URI; an
    alias is resolved now, once. Any other URI raises :class:`LineageError`."""
    client = client or reads.client()
    if match := VERSION_URI.match(model_uri):
        return {names.MODEL_NAME: match[1], names.MODEL_VERSION: match[2]}
    if match := RUN_URI.match(model_uri):
        versions = client.search_model_versions(f"run_id='{match[1]}'")
        if not versions:
            raise LineageError(
                f"{model_uri}: no registered version comes from run {match[1]}, so the production rows the "
                "model learned are unknown and its figures could be graded in sample. Register it, or score "
                f"{config.CHAMPION_URI}."
            )
        return {names.MODEL_NAME: versions[0].name, names.MODEL_VERSION: str(versions[0].version)}
    resolved = reads.resolve_model_uri(model_uri, client)
    if not resolved:
        raise LineageError(
            f"{model_uri}: not a registered model (models:/<name>@<alias>, models:/<name>/<version> or "
            "runs:/<run_id>/<path>); its training rows are unknown, so its figures cannot be trusted."
        )
    return resolved


def pinned_uri(version: dict[str, str]) -> str:
    """``models:/<name>/<version>``: loading it cannot pick up a promotion made meanwhile."""
    return f"models:/{version['model_name']}/{version['model_version']}"


def _scored(model, frame: pd.DataFrame) -> pd.DataFrame:
    probability = model.predict(frame[config.FEATURES])[config.PROBABILITY_COLUMN].to_numpy()
    return frame[[*config.FEATURES, config.TARGET]].assign(**{config.PROBABILITY_COLUMN: probability})


def first_graded_date(prod_path: str, learned: np.ndarray) -> pd.Timestamp | None:
    """The earliest ``game_date`` of the labelled rows of the file the model never learned (else of
    any row), from a few columns, one batch at a time; None when the file has no dates. A row group
    whose smallest date (its parquet statistics) is no earlier than the earliest found is skipped."""
    parquet = pq.ParquetFile(prod_path)
    present = parquet.schema_arrow.names
    if "game_date" not in present:
        return None
    conditions, columns = [pc.scalar(True)], ["game_date"]  # any row: the fallback when none is graded
    if config.TARGET in present:
        graded = pc.field(config.TARGET).is_valid()
        columns.append(config.TARGET)
        if "shot_id" in present and len(learned):
            graded &= ~pc.field("shot_id").isin(pa.array(learned, pa.int64()))
            columns.append("shot_id")
        conditions.insert(0, graded)
    lowest = {group: _lowest_date(parquet, group) for group in range(parquet.num_row_groups)}
    groups = sorted(lowest, key=lambda group: lowest[group] or "")
    for condition in conditions:
        earliest = None
        for group in groups:
            if earliest is not None and lowest[group] is not None and lowest[group] >= earliest:
                break  # the groups are in order of their lowest date: none below can be earlier
            for batch in parquet.iter_batches(batch_size=1 << 20, row_groups=[group], columns=columns):
                low = pc.min(pc.cast(batch.filter(condition).column("game_date"), pa.string())).as_py()
                earliest = min((date for date in (earliest, low) if date is not None), default=None)
        if earliest is not None:
            return pd.Timestamp(earliest)
    return None


def _lowest_date(parquet: pq.ParquetFile, group: int) -> str | None:
    """The smallest ``game_date`` of a row group from its statistics, when they hold it as text."""
    if not pa.types.is_string(parquet.schema_arrow.field("game_date").type):
        return None
    statistics = parquet.metadata.row_group(group).column(parquet.metadata.schema.names.index("game_date")).statistics
    if statistics is None or not statistics.has_min_max or not isinstance(statistics.min, str):
        return None
    return statistics.min


@dataclass(frozen=True)
class KnownLabels:
    """The store's first labels dated before the first row graded now: how many and how many made
    (the null model's rate), and the unlearned rows of the newest chunks (all the reference can use)."""

    rows: int
    made: int
    newest: pd.DataFrame


def known_labels(before: pd.Timestamp | None, learned: np.ndarray, paths: config.WorkspacePaths) -> KnownLabels:
    """Read file by file in the store's order (a file is one run's chunk), keeping 8 bytes per stored
    shot and one per stored row, then only the newest chunks' files whole: memory does not grow with
    the rows stored."""
    files = labels.store_files(paths) if before is not None else []
    seen, rows, made, masks, chunks = np.empty(0, "int64"), 0, 0, {}, {}
    for path in files:
        table = labels.read_file(path, ["shot_id", "game_date", config.TARGET])
        ids = table.column("shot_id").to_numpy()
        _, first = np.unique(ids, return_index=True)  # each shot's first row in this file
        new = np.sort(first[~np.isin(ids[first], seen)])
        seen = np.union1d(seen, ids[new])
        kept = new[(pd.to_datetime(table.column("game_date").take(new).to_pandas()) < before).to_numpy()]
        rows, made = rows + len(kept), made + int(table.column(config.TARGET).to_numpy()[kept].sum())
        unseen = kept[~np.isin(ids[kept], learned)]
        if len(unseen):
            dates = table.column("game_date").take(unseen).to_numpy(zero_copy_only=False)
            low = dates.min()
            chunks[path] = (len(unseen), (low, ids[unseen][dates == low].min()))  # rows, first row
            masks[path] = np.zeros(len(ids), dtype=bool)
            masks[path][unseen] = True
    by_first_row = sorted(chunks, key=lambda path: chunks[path][1])  # a chunk's place: its first row's
    newest = newest_chunk_names(pd.Series({path: chunks[path][0] for path in by_first_row}, dtype="int64"))
    parts = [labels.read_file(path).take(np.flatnonzero(masks[path])).to_pandas() for path in newest]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=labels.STORE_COLUMNS)
    return KnownLabels(rows, made, frame.sort_values(["game_date", "shot_id"], kind="stable").reset_index(drop=True))


def monitoring_reference(
    model, client: MlflowClient, version, unseen: pd.DataFrame, paths: config.WorkspacePaths, before=None
) -> MonitoringReference:
    """The logged held-out rows dated ``before`` the first row graded now, then the ``unseen`` labelled
    rows (:attr:`KnownLabels.newest`) once there are enough of them, scored again by ``model``."""
    initial = reads.reference_scores(client, version)
    if initial is not None and set(config.FEATURES) <= set(initial):
        source = f"the {len(initial)} held-out rows version {version.version}'s training scored"
    else:  # a version registered without notebook 03's training run: base_test, which no version learns
        initial = _scored(model, pd.read_parquet(paths.base_test))
        source = f"base_test scored by version {version.version} (its training logged no reference rows)"
    if before is not None and "game_date" in initial:  # never the rows this run grades
        initial = initial[pd.to_datetime(initial["game_date"]) < before]
        source = f"{len(initial)} of {source} (those dated before {before:%Y-%m-%d}, the first row graded now)"
    initial = initial.reset_index(drop=True)
    if len(unseen) < MIN_REFERENCE_ROWS:
        return MonitoringReference(initial, source)
    scored = _scored(model, unseen).assign(chunk=unseen[labels.RUN_COLUMN].to_numpy())
    return MonitoringReference(initial, source, newest_chunks(scored.iloc[:0], scored))


def load_scoring_model(
    version_uri: str,
    prod_path: str | None,
    paths: config.WorkspacePaths | None = None,
    client: MlflowClient | None = None,
    model=None,
) -> ScoringModel:
    """Everything above for ``version_uri`` (pinned: ``models:/<name>/<version>``) about to score
    ``prod_path`` (None: a file read elsewhere, e.g. by a remote engine); ``model``: the loaded pyfunc."""
    paths = paths or config.workspace_paths()
    client = client or reads.client()
    resolved = registered_version(version_uri, client)
    version = client.get_model_version(resolved[names.MODEL_NAME], resolved[names.MODEL_VERSION])
    learned = np.sort(reads.learned_shot_ids(client, version))
    model = model or mlflow.pyfunc.load_model(pinned_uri(resolved))
    before = first_graded_date(prod_path, learned) if prod_path and "://" not in str(prod_path) else None
    known = known_labels(before, learned, paths)
    reference = monitoring_reference(model, client, version, known.newest, paths, before)
    rate = known.made / known.rows if known.rows else float(pd.read_parquet(paths.base_train)[config.TARGET].mean())
    return ScoringModel(learned, Monitor(reference), rate)
