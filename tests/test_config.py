import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from subprocess import PIPE

import pytest

from conftest import STARTED_EARLY, starts_early
from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import FEATURE_RULES


def test_workspace_defaults_to_project_root_and_the_env_moves_every_generated_path(monkeypatch, tmp_path):
    monkeypatch.delenv("KOBE_WORKSPACE", raising=False)
    assert config.workspace_paths().root == config.PROJECT_ROOT
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    paths = config.workspace_paths()
    generated = [getattr(paths, name) for name, kind in vars(type(paths)).items() if isinstance(kind, property)]
    assert len(generated) > 10 and all(path.is_relative_to(tmp_path) for path in generated)
    assert paths.raw_file("prod") == tmp_path / "data" / "raw" / "dataset_kobe_prod.parquet"


def test_every_dataset_has_a_digest_and_the_course_names_hold():
    assert set(config.DATASET_FILES.values()) == set(config.DATASET_SHA256)
    assert all(len(digest) == 64 for digest in config.DATASET_SHA256.values())
    assert list(FEATURE_RULES) == config.FEATURES and config.TARGET not in config.FEATURES
    assert config.CHAMPION_URI == "models:/kobe-shot-model@champion"
    assert list(config.RUN_NAMES.values()) == ["AquisicaoDados", "PreparacaoDados", "Treinamento", "PipelineAplicacao"]


def test_relative_paths_are_taken_from_the_project_root_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config.project_path("../shared/data") == config.PROJECT_ROOT.parent / "shared" / "data"
    assert config.project_path(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("KOBE_WORKSPACE", "ws")
    assert config.workspace_paths().root == config.PROJECT_ROOT / "ws"


def test_a_missing_input_file_names_the_resolved_path_and_what_set_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        config.input_file("data/none.parquet", "notebook parameter extra_train_data")
    message = str(error.value)
    assert str(config.PROJECT_ROOT / "data" / "none.parquet") in message
    assert "notebook parameter extra_train_data" in message
    (tmp_path / "here.parquet").write_bytes(b"")
    assert config.input_file(tmp_path / "here.parquet", "x") == tmp_path / "here.parquet"


def test_pycaret_log_goes_to_the_workspace_unless_a_path_is_set(tmp_path, monkeypatch):
    monkeypatch.delenv(config.PYCARET_LOG_ENV, raising=False)
    config.route_pycaret_log(config.workspace_paths(tmp_path))
    assert os.environ[config.PYCARET_LOG_ENV] == str(tmp_path / "reports" / "pycaret.log")
    assert (tmp_path / "reports").is_dir()
    monkeypatch.setenv(config.PYCARET_LOG_ENV, "/chosen/by/the/user.log")
    config.route_pycaret_log(config.workspace_paths(tmp_path / "other"))
    assert os.environ[config.PYCARET_LOG_ENV] == "/chosen/by/the/user.log"


# Libraries set variables of their own when imported (streamlit: MPLBACKEND; mlflow: a telemetry
# id): they are imported first, so the snapshot sees only what the package itself does. The fonts
# are matplotlib's own only: where yellowbrick's list (Arial, Liberation Sans), which importing
# PyCaret applies, floods every drawing with "findfont" lines.
IMPORT_EVERY_MODULE_THEN_PYCARET = """
import importlib, io, json, logging, os, pkgutil, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.font_manager as font_manager
import matplotlib.pyplot as plt, mlflow, pandas, papermill, pyarrow, scipy, seaborn, sklearn, streamlit
from mlflow.tracking import MlflowClient
font_manager.fontManager.ttflist = [f for f in font_manager.fontManager.ttflist if f.name.startswith("DejaVu")]
findfont = []
handler = logging.Handler()
handler.emit = lambda record: findfont.append(record.getMessage()) if "findfont" in record.getMessage() else None
logging.getLogger("matplotlib.font_manager").addHandler(handler)

def findfont_lines_of_a_drawing():
    findfont.clear()
    figure, axis = plt.subplots()
    axis.set(title="title", xlabel="x", ylabel="y")
    figure.savefig(io.BytesIO())
    return len(findfont)

before = dict(os.environ)
import kobe_mlops
scripts = ("kobe_mlops.dashboard.app", "kobe_mlops.dashboard.views.")  # run by `streamlit run`, not imported
names = [m.name for m in pkgutil.walk_packages(kobe_mlops.__path__, "kobe_mlops.") if not m.name.startswith(scripts)]
for name in names:
    importlib.import_module(name)
changed = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}
written = sorted(os.listdir(".."))
from kobe_mlops.modeling.train import classification_experiment_class
classification_experiment_class()
package = findfont_lines_of_a_drawing()
import yellowbrick
yellowbrick.set_aesthetic()  # the fonts importing PyCaret leaves when nothing resets them
alone = findfont_lines_of_a_drawing()
print(json.dumps({"modules": len(names), "changed": sorted(changed), "written": written,
                  "findfont_package": package, "findfont_pycaret_alone": alone}))
"""


def start_import_check() -> tuple[Path, subprocess.Popen]:
    """The check's interpreter, in an empty folder of a new temporary folder whose workspace is absent."""
    root = Path(tempfile.mkdtemp(prefix="kobe-import-check-"))
    env = {k: v for k, v in os.environ.items() if k not in {"KOBE_WORKSPACE", config.PYCARET_LOG_ENV}}
    env["KOBE_WORKSPACE"] = str(root / "workspace")  # absent until PyCaret is imported
    (root / "empty").mkdir()
    command = [sys.executable, "-c", IMPORT_EVERY_MODULE_THEN_PYCARET]
    return root, subprocess.Popen(command, cwd=root / "empty", env=env, stdout=PIPE, stderr=PIPE, text=True)


@starts_early(start_import_check)
def test_importing_the_package_and_pycaret_writes_nothing_sets_nothing_and_floods_no_findfont(request):
    root, process = request.node.stash[STARTED_EARLY]  # started with the session (conftest)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["modules"] > 30 and report["changed"] == [] and report["written"] == ["empty"]
    assert report["findfont_package"] == 0 and report["findfont_pycaret_alone"] > 0, stderr[-2000:]
    assert list((root / "empty").iterdir()) == []  # PyCaret's logs.log went to the workspace's reports/
    assert (root / "workspace" / "reports" / "pycaret.log").is_file()
