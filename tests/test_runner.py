import argparse
import ast
import json
import os
import subprocess
import sys

import pytest

from kobe_mlops import config
from kobe_mlops.runner import StepSelectionError, build_parser, failure_message, select_steps, step_parameters


@pytest.mark.parametrize(
    "spec, expected",
    [
        (None, ["01_aquisicao", "02_preparacao", "03_treinamento", "04_aplicacao"]),
        ("04", ["04_aplicacao"]),
        ("aplicacao", ["04_aplicacao"]),
        ("4", ["04_aplicacao"]),
        ("treinamento,02", ["02_preparacao", "03_treinamento"]),  # always in pipeline order
    ],
)
def test_select_steps(spec, expected):
    assert [step.notebook for step in select_steps(spec)] == expected


def test_unknown_step_lists_the_choices():
    with pytest.raises(StepSelectionError, match="01/aquisicao"):
        select_steps("05")


def test_each_notebook_gets_only_its_parameters_and_the_engine_flags_reach_step_04_only():
    args = build_parser().parse_args(["--fast", "--prod-data", "x.parquet"])
    assert [step_parameters(step, args) for step in select_steps(None)] == [
        {"data_source": ""},
        {"seed": 42},
        {"seed": 42, "fast": True},
        {"prod_data": "x.parquet", "engine": "pandas", "spark_master": "local[*]", "scoring_url": ""},
    ]
    args = build_parser().parse_args(["--engine", "spark", "--spark-master", "spark://h:7077", "--spark-conf", "k=v"])
    *others, application = [step_parameters(step, args) for step in select_steps(None)]
    assert application["engine"] == "spark" and application["spark_master"] == "spark://h:7077"
    assert application["spark_conf"] == {"k": "v"} and not any("engine" in p or "spark_conf" in p for p in others)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--engine", "dask"])


def declared_parameters(notebook: str) -> set[str]:
    cells = json.loads((config.NOTEBOOKS_DIR / f"{notebook}.ipynb").read_text())["cells"]
    tagged = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    return {target.id for statement in ast.parse("".join(tagged["source"])).body for target in statement.targets}


@pytest.mark.parametrize(
    "flags", [[], ["--fast", "--prod-data", "x", "--scoring-url", "http://h:1", "--spark-conf", "k=v"]]
)
def test_every_parameter_passed_is_declared_by_its_notebook(flags):
    # papermill injects unknown names silently: a parameter the notebook does not declare is lost.
    args = build_parser().parse_args(flags)
    for step in select_steps(None):
        assert set(step_parameters(step, args)) <= declared_parameters(step.notebook), step.notebook


def test_failure_message_is_short_and_names_the_error():
    error = argparse.Namespace(ename="DataContractError", evalue="prod.parquet: missing column 'lat'\n" + "x" * 5000)
    message = failure_message(error)
    assert message.startswith("DataContractError: prod.parquet: missing column 'lat'")
    assert len(message) < 700 and "\n" not in message
    assert failure_message(ValueError("bad")) == "ValueError: bad"


def test_run_all_turns_mlflow_telemetry_off_for_itself_and_its_children():
    env = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    script = (
        # the runner itself is not needed to read what the script sets first (and costs seconds)
        "import runpy, subprocess, sys, types; sys.modules['kobe_mlops.runner'] = types.SimpleNamespace(main=None);"
        "runpy.run_path('run_all.py', run_name='as_module');"
        "print(subprocess.check_output([sys.executable, '-c', "
        "'import os; print(os.environ[\"MLFLOW_DISABLE_TELEMETRY\"])'], text=True))"
    )
    printed = subprocess.check_output([sys.executable, "-c", script], cwd=config.PROJECT_ROOT, env=env, text=True)
    assert printed.split() == ["true"]  # a failing script raises CalledProcessError, its stderr shown by pytest
