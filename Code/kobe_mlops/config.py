"""The one place for paths, column lists, seeds and names: every module asks :func:`workspace_paths`.

The workspace (generated data, the MLflow store, executed notebooks) is the project root unless
``KOBE_WORKSPACE`` moves it; relative paths are taken from the project root, not the cwd.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"

# --- Data -----------------------------------------------------------------------------------
DATASET_FILES = {"dev": "dataset_kobe_dev.parquet", "prod": "dataset_kobe_prod.parquet"}
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
# A new model waits as the challenger; a promoted one's predecessor keeps @previous for a rollback.
CHALLENGER_ALIAS = "challenger"
PREVIOUS_ALIAS = "previous"
INVOCATION_TAG = "kobe.invocation_id"
RUN_NAMES = {
    "aquisicao": "AquisicaoDados",
    "preparacao": "PreparacaoDados",
    "treinamento": "Treinamento",
    "aplicacao": "PipelineAplicacao",
}
# Runs of the retraining loop (run_all.py --retrain, --rollback, --promote), beside the pipeline's.
RETRAINING_RUN_NAMES = {
    "verificacao_retreino": "VerificacaoRetreino",  # trigger check: retrain or not, and why
    "validacao_challenger": "ValidacaoChallenger",  # champion vs challenger, promote or not, and why
    "rollback": "Rollback",  # previous version restored as champion
    "promocao": "Promocao",  # @champion moved by hand (run_all.py --promote VERSION)
}
# The replay of production (run_all.py --replay) has an experiment of its own and no registered model.
REPLAY_EXPERIMENT_NAME = "kobe-shot-replay"
REPLAY_RUN_NAMES = {"simulacao_operacao": "SimulacaoOperacao"}  # one replay, every strategy; a child per batch
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


def _under_root(*parts: str) -> property:
    return property(lambda self: self.root.joinpath(*parts))


@dataclass(frozen=True)
class WorkspacePaths:
    """Every generated file's location, derived from one root."""

    root: Path
    raw_dir = _under_root("data", "raw")
    processed_dir = _under_root("data", "processed")
    executed_notebooks_dir = _under_root("reports", "notebooks")
    pycaret_log = _under_root("reports", "pycaret.log")
    replay_progress_log = _under_root("reports", "replay_progress.log")  # one line per batch and strategy
    mlflow_db = _under_root("mlflow.db")
    mlflow_artifacts_dir = _under_root("mlruns")
    tracking_stack_dir = _under_root("tracking-stack")  # kobe_mlops.tracking_stack's PostgreSQL and server
    data_filtered = _under_root("data", "processed", "data_filtered.parquet")
    base_train = _under_root("data", "processed", "base_train.parquet")
    base_test = _under_root("data", "processed", "base_test.parquet")
    predictions_prod = _under_root("data", "processed", "predictions_prod.parquet")
    rejected_prod = _under_root("data", "processed", "rejected_prod.parquet")
    label_store_dir = _under_root("data", "labels")  # labelled production rows, one file per application run
    # Older labelled production rows a challenger learns; the newest ones, the gate compares models on.
    retrain_train_extra = _under_root("data", "processed", "retrain_train_extra.parquet")
    retrain_holdout = _under_root("data", "processed", "retrain_holdout.parquet")

    def raw_file(self, dataset: str) -> Path:
        return self.raw_dir / DATASET_FILES[dataset]


def workspace_paths(root: str | os.PathLike | None = None) -> WorkspacePaths:
    """Paths under ``root``, else ``$KOBE_WORKSPACE``, else the project root."""
    return WorkspacePaths(project_path(root or os.environ.get("KOBE_WORKSPACE") or PROJECT_ROOT))


def project_path(value: str | os.PathLike) -> Path:
    """``value`` as an absolute path; a relative one is taken from the project root, not the cwd."""
    return (PROJECT_ROOT / Path(value).expanduser()).resolve()


def input_file(value: str | os.PathLike, set_by: str) -> Path:
    """The existing file ``value`` names, else an error naming the resolved path and ``set_by``."""
    path = project_path(value)
    if not path.is_file():
        relative = "" if Path(value).expanduser().is_absolute() else f" ({str(value)!r} from the project root)"
        raise FileNotFoundError(f"{set_by}: {path}{relative} is not a file.")
    return path


PYCARET_LOG_ENV = "PYCARET_CUSTOM_LOGGING_PATH"


def route_pycaret_log(paths: WorkspacePaths | None = None) -> None:
    """Send PyCaret's log to the workspace's ``reports/pycaret.log``, unless a path is already set:
    PyCaret opens ``./logs.log`` in the cwd when first imported (also by unpickling a model)."""
    if PYCARET_LOG_ENV in os.environ:
        return
    log = (paths or workspace_paths()).pycaret_log
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only workspace: PyCaret falls back to its own default
        return
    os.environ[PYCARET_LOG_ENV] = str(log)
