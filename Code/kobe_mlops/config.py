"""The one place for paths, column lists, seeds and names.

Nothing else in the project builds a path by hand: every module asks :func:`workspace_paths`.
The workspace (where generated data, the MLflow store and executed notebooks go) defaults to
the project root and can be moved with the ``KOBE_WORKSPACE`` environment variable, which is
how the tests run the whole pipeline in a temporary folder. A relative path given to the
package (a notebook parameter, an environment variable) is relative to the project root, so a
notebook means the same file whether its kernel starts in the project root or in ``notebooks/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"

# --- Data -----------------------------------------------------------------------------------
DATASET_FILES = {
    "dev": "dataset_kobe_dev.parquet",
    "prod": "dataset_kobe_prod.parquet",
}
# SHA-256 of the course files (shared/data/SHA256SUMS); acquisition refuses anything else.
DATASET_SHA256 = {
    "dataset_kobe_dev.parquet": "3a177adbf7e4ef40cb770940a3aa52ee4880372352d4cf676a94a2d274a36b07",
    "dataset_kobe_prod.parquet": "98e4a0c2ed17d350f84fd356bfdcce9b707e931ec37909999489a3d36cf9d05e",
}
CANONICAL_DATA_URL = "https://github.com/tciodaro/eng_ml/raw/main/data/"
DATA_SOURCE_ENV = "KOBE_DATA_SOURCE"

TARGET = "shot_made_flag"
FEATURES = ["lat", "lon", "minutes_remaining", "period", "playoffs", "shot_distance"]
# Carried through scoring so every prediction can be traced back to its shot and date.
ID_COLUMNS = ["shot_id", "game_date"]

# --- Experiment -----------------------------------------------------------------------------
SEED = 42
TEST_SIZE = 0.2
CV_FOLDS = 5
DECISION_THRESHOLD = 0.5

# --- MLflow ---------------------------------------------------------------------------------
EXPERIMENT_NAME = "kobe-shot-selection"
REGISTERED_MODEL_NAME = "kobe-shot-model"
CHAMPION_ALIAS = "champion"
CHAMPION_URI = f"models:/{REGISTERED_MODEL_NAME}@{CHAMPION_ALIAS}"
# Retraining loop (Docs/Model/Retraining.md): a newly trained model waits as the challenger; a
# promoted challenger's predecessor keeps the previous alias so a rollback can restore it.
CHALLENGER_ALIAS = "challenger"
PREVIOUS_ALIAS = "previous"
INVOCATION_TAG = "kobe.invocation_id"
RUN_NAMES = {
    "aquisicao": "AquisicaoDados",
    "preparacao": "PreparacaoDados",
    "treinamento": "Treinamento",
    "aplicacao": "PipelineAplicacao",
}
# Runs of the retraining loop (run_all.py --retrain / --force-retrain / --rollback). Kept apart
# from RUN_NAMES, which lists the runs every pipeline invocation produces.
RETRAINING_RUN_NAMES = {
    "verificacao_retreino": "VerificacaoRetreino",  # trigger check: retrain or not, and why
    "validacao_challenger": "ValidacaoChallenger",  # champion vs challenger, promote or not, and why
    "rollback": "Rollback",  # previous version restored as champion
    "promocao": "Promocao",  # @champion moved by hand (run_all.py --promote VERSION)
}
# The season-by-season replay of production (run_all.py --replay, notebooks/05_operacao.ipynb)
# logs to an experiment of its own and never touches the registered model.
REPLAY_EXPERIMENT_NAME = "kobe-shot-replay"
REPLAY_RUN_NAMES = {
    "simulacao_operacao": "SimulacaoOperacao",  # parent: one replay, every strategy; one child per batch
}
# The replay's scheduled strategy trains a challenger after every this many batches (seasons).
REPLAY_SCHEDULE_EVERY = 3
ALL_RUN_NAMES = {**RUN_NAMES, **RETRAINING_RUN_NAMES, **REPLAY_RUN_NAMES}
PROBABILITY_COLUMN = "shot_made_probability"
PREDICTION_COLUMN = "shot_made_prediction"
# Batch scoring engines of the application step: one pandas process, or Spark (optional extra).
SCORING_ENGINES = ["pandas", "spark"]
DEFAULT_ENGINE = SCORING_ENGINES[0]  # one process, no Java
DEFAULT_SPARK_MASTER = "local[*]"  # every core of this machine

# --- Pipeline steps (notebook stem, short name) ---------------------------------------------
PIPELINE_STEPS = [
    ("01_aquisicao", "aquisicao"),
    ("02_preparacao", "preparacao"),
    ("03_treinamento", "treinamento"),
    ("04_aplicacao", "aplicacao"),
]
# Not a pipeline step: run after one, by run_all.py --replay.
REPLAY_STEP = ("05_operacao", "operacao")


@dataclass(frozen=True)
class WorkspacePaths:
    """Every generated file's location, derived from one root."""

    root: Path

    @property
    def raw_dir(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def processed_dir(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def executed_notebooks_dir(self) -> Path:
        return self.root / "reports" / "notebooks"

    @property
    def pycaret_log(self) -> Path:
        return self.root / "reports" / "pycaret.log"

    @property
    def replay_progress_log(self) -> Path:
        """One line per batch and strategy, written by the replay as it goes (run_all.py prints it)."""
        return self.root / "reports" / "replay_progress.log"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.root / "mlruns"

    @property
    def tracking_stack_dir(self) -> Path:
        """State of the local PostgreSQL + tracking server stack (``kobe_mlops.tracking_stack``)."""
        return self.root / "tracking-stack"

    def raw_file(self, dataset: str) -> Path:
        return self.raw_dir / DATASET_FILES[dataset]

    @property
    def data_filtered(self) -> Path:
        return self.processed_dir / "data_filtered.parquet"

    @property
    def base_train(self) -> Path:
        return self.processed_dir / "base_train.parquet"

    @property
    def base_test(self) -> Path:
        return self.processed_dir / "base_test.parquet"

    @property
    def predictions_prod(self) -> Path:
        return self.processed_dir / "predictions_prod.parquet"

    @property
    def rejected_prod(self) -> Path:
        return self.processed_dir / "rejected_prod.parquet"

    @property
    def label_store_dir(self) -> Path:
        """Append-only store of labelled production rows, one parquet file per application run."""
        return self.root / "data" / "labels"

    @property
    def retrain_train_extra(self) -> Path:
        """Older labelled production rows a challenger trains on, besides base_train."""
        return self.processed_dir / "retrain_train_extra.parquet"

    @property
    def retrain_holdout(self) -> Path:
        """Newest labelled production rows, kept from the challenger to compare it with the champion."""
        return self.processed_dir / "retrain_holdout.parquet"


def workspace_paths(root: str | os.PathLike | None = None) -> WorkspacePaths:
    """Paths under ``root``, else ``$KOBE_WORKSPACE``, else the project root."""
    return WorkspacePaths(project_path(root or os.environ.get("KOBE_WORKSPACE") or PROJECT_ROOT))


def project_path(value: str | os.PathLike) -> Path:
    """``value`` as an absolute path; a relative one is taken from the project root, not the cwd."""
    return (PROJECT_ROOT / Path(value).expanduser()).resolve()


def input_file(value: str | os.PathLike, set_by: str) -> Path:
    """The existing file ``value`` names (see :func:`project_path`), else an error naming the
    resolved path and ``set_by``, the parameter or flag it came from."""
    path = project_path(value)
    if not path.is_file():
        relative = "" if Path(value).expanduser().is_absolute() else f" ({str(value)!r} from the project root)"
        raise FileNotFoundError(f"{set_by}: {path}{relative} is not a file.")
    return path


PYCARET_LOG_ENV = "PYCARET_CUSTOM_LOGGING_PATH"


def route_pycaret_log(paths: WorkspacePaths | None = None) -> None:
    """Send PyCaret's log to the workspace's git-ignored ``reports/pycaret.log``.

    PyCaret opens ``./logs.log`` in the current folder when it is first imported (also when a
    model is unpickled), so call this before. A path already set (by the user) is kept.
    """
    if PYCARET_LOG_ENV in os.environ:
        return
    log = (paths or workspace_paths()).pycaret_log
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only workspace: PyCaret falls back to its own default
        return
    os.environ[PYCARET_LOG_ENV] = str(log)
