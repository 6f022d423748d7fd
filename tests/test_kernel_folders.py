"""Notebooks 01-04 and the README snippet work with the kernel in the project root or in ``notebooks/``.

A copy of the project's files plays a fresh clone: its own package (on ``PYTHONPATH``), no
``KOBE_WORKSPACE`` nor ``MLFLOW_TRACKING_URI``, the course data beside it in ``../shared/data``.
The package must find its workspace and store itself, write only inside the git-ignored
workspace folders, and leave ``@champion`` where it was when notebook 03 runs again.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import require_shared_data
from kobe_mlops import config
from kobe_mlops.tracking import reads

pytestmark = pytest.mark.e2e

WORKSPACE_ENTRIES = {"data", "mlflow.db", "mlruns", "reports"}  # git-ignored, at the copy's root


def project_files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def kernel_env(project: Path) -> dict[str, str]:
    unset = {"KOBE_WORKSPACE", "MLFLOW_TRACKING_URI", "KOBE_INVOCATION_ID", config.DATA_SOURCE_ENV}
    unset |= {config.PYCARET_LOG_ENV, "MLFLOW_EXPERIMENT_ID", "MPLBACKEND"}
    env = {key: value for key, value in os.environ.items() if key not in unset}
    threads = {name: "1" for name in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]}
    return env | threads | {"PYTHONPATH": str(project / "Code"), "PYTHONDONTWRITEBYTECODE": "1"}


class Copy:
    def __init__(self, project: Path):
        self.project = project
        self.outputs: dict[str, Path] = {}
        self.files_before = project_files(project)

    def execute(self, notebook: str, cwd: Path, parameters: dict, name: str | None = None) -> None:
        output = self.project / "reports" / "notebooks" / f"{name or notebook}.ipynb"
        output.parent.mkdir(parents=True, exist_ok=True)
        source = self.project / "notebooks" / f"{notebook}.ipynb"
        command = [sys.executable, "-m", "papermill", str(source), str(output), "-y", json.dumps(parameters)]
        command += ["--cwd", str(cwd), "-k", "python3", "--no-progress-bar"]
        result = subprocess.run(command, env=kernel_env(self.project), capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{notebook} in {cwd} failed:\n{result.stderr[-3000:]}"
        self.outputs[name or notebook] = output

    def client(self) -> MlflowClient:
        return MlflowClient(f"sqlite:///{self.project / 'mlflow.db'}")


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Copy:
    data = require_shared_data()
    root = tmp_path_factory.mktemp("clone")
    project = root / "kobe-mlops"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=config.PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (config.PROJECT_ROOT / name).is_file():  # a file deleted in the working tree is not copied
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(config.PROJECT_ROOT / name, project / name)
    (root / "shared").mkdir()
    (root / "shared" / "data").symlink_to(data)
    clone = Copy(project)
    notebooks = project / "notebooks"
    # A relative data_source: right only if taken from the project root, not from notebooks/.
    clone.execute("01_aquisicao", notebooks, {"data_source": "../shared/data"})
    clone.execute("01_aquisicao", notebooks, {}, name="01_aquisicao_offline_defaults")
    clone.execute("02_preparacao", project, {})
    clone.execute("03_treinamento", notebooks, {"fast": True})
    clone.execute("03_treinamento", project, {"fast": True}, name="03_treinamento_again")
    clone.execute("04_aplicacao", notebooks, {})
    clone.execute("05_operacao", notebooks, {"strategies": ["never", "reactive"]})
    return clone


def new_files_outside_the_workspace(copy: Copy) -> list[str]:
    new = project_files(copy.project) - copy.files_before
    return sorted(path for path in new if path.split("/")[0] not in WORKSPACE_ENTRIES)


def test_notebooks_run_from_either_folder_and_write_only_the_workspace(copy):
    paths = config.workspace_paths(copy.project)
    assert paths.mlflow_db.is_file() and paths.base_train.is_file()
    assert new_files_outside_the_workspace(copy) == []  # no notebooks/mlflow.db, no logs.log


def test_executed_notebooks_carry_no_findfont_flood(copy):
    for name, path in copy.outputs.items():
        outputs = [output for cell in json.loads(path.read_text())["cells"] for output in cell.get("outputs", [])]
        assert "findfont" not in json.dumps(outputs), name


def test_training_again_registers_a_challenger_and_leaves_the_champion(copy):
    assert reads.registry_aliases(copy.client()) == {config.CHAMPION_ALIAS: "1", config.CHALLENGER_ALIAS: "2"}


def test_acquisition_logs_what_it_copied_and_what_it_reused(copy):
    client = copy.client()
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME)
    runs = client.search_runs(
        [experiment.experiment_id], f"attributes.run_name = '{config.RUN_NAMES['aquisicao']}'", order_by=["start_time"]
    )
    first, offline = (run.data.params for run in runs)
    name = config.DATASET_FILES["dev"]
    assert first["dev_acquisition"] == "copied"
    assert first["dev_origin"] == str((copy.project.parent / "shared" / "data" / name).resolve())
    assert offline["dev_acquisition"] == "reused" and offline["dev_origin"] == str(copy.project / "data" / "raw" / name)
    assert config.CANONICAL_DATA_URL not in json.dumps(offline)  # nothing was downloaded


def readme_snippet() -> str:
    """The README's JupyterLab snippet, its last expression printed."""
    readme = (config.PROJECT_ROOT / "README.md").read_text()
    (snippet,) = [block for block in re.findall(r"```python\n(.+?)```", readme, flags=re.S) if "@champion" in block]
    tree = ast.parse(snippet)
    tree.body[-1] = ast.Expr(ast.Call(ast.Name("print", ast.Load()), [tree.body[-1].value], []))
    return ast.unparse(ast.fix_missing_locations(tree))


@pytest.mark.parametrize("folder", [".", "notebooks"])
def test_the_readme_snippet_scores_the_production_file_from_either_folder(copy, folder):
    result = subprocess.run(
        [sys.executable, "-c", readme_snippet()],
        cwd=copy.project / folder,
        env=kernel_env(copy.project),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert config.PROBABILITY_COLUMN in result.stdout and config.PREDICTION_COLUMN in result.stdout
    assert new_files_outside_the_workspace(copy) == []
