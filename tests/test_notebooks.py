"""Committed notebooks carry no outputs, keep a papermill ``parameters`` cell of literals, and stay thin."""

import ast
import json
import subprocess
import sys

import pytest

from kobe_mlops import config

# A notebook cell calls the package; logic longer than this belongs in Code/kobe_mlops, under test.
MAX_CODE_CELL_LINES = 15


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=config.PROJECT_ROOT, capture_output=True, text=True, check=True).stdout


def dirty_cells(notebook: dict) -> list[int]:
    """The code cells that carry outputs or an execution count."""
    cells = enumerate(notebook["cells"])
    return [i for i, c in cells if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]


def committed_notebooks() -> list[str]:
    return git("ls-files", "*.ipynb").split()


def test_the_pipeline_notebooks_are_committed():
    expected = {f"notebooks/{notebook}.ipynb" for notebook, _ in config.PIPELINE_STEPS}
    assert expected <= set(committed_notebooks())


@pytest.mark.parametrize("path", committed_notebooks())
def test_notebook_has_no_outputs(path):
    # Read the committed blob, not the working copy: that is what the filter must have cleaned.
    dirty = dirty_cells(json.loads(git("show", f"HEAD:{path}")))
    assert not dirty, f"{path}: cells {dirty} carry outputs; strip them (nbstripout)"


@pytest.mark.parametrize("notebook", [n for n, _ in config.PIPELINE_STEPS])
def test_parameters_cell_is_tagged_and_holds_only_literals(notebook):
    cells = json.loads((config.NOTEBOOKS_DIR / f"{notebook}.ipynb").read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{notebook}: expected one cell tagged 'parameters'"
    tree = ast.parse("".join(tagged[0]["source"]))
    for statement in tree.body:
        assert isinstance(statement, ast.Assign), f"{notebook}: only assignments in the parameters cell"
        ast.literal_eval(statement.value)  # raises if not a plain literal


def long_code_cells(cells: list[dict], limit: int = MAX_CODE_CELL_LINES) -> dict[int, int]:
    """``{cell index: lines}`` of the code cells longer than ``limit`` lines (trailing blank lines not counted)."""
    code = {index: "".join(cell["source"]) for index, cell in enumerate(cells) if cell["cell_type"] == "code"}
    return {index: lines for index, source in code.items() if (lines := len(source.rstrip().splitlines())) > limit}


def test_long_cell_check_counts_code_lines_only():
    code = {"cell_type": "code", "source": ["x = 1\n"] * 16 + ["\n", "\n"]}
    markdown = {"cell_type": "markdown", "source": "text\n" * 40}
    fifteen = {"cell_type": "code", "source": "y = 2\n" * 15}
    assert long_code_cells([markdown, fifteen, code]) == {2: 16}


@pytest.mark.parametrize("path", sorted(config.NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda path: path.name)
def test_no_code_cell_is_longer_than_the_limit(path):
    long = long_code_cells(json.loads(path.read_text())["cells"])
    assert not long, (
        f"{path.name}: code cells {long} (index: lines) exceed {MAX_CODE_CELL_LINES} lines; "
        "move the logic into a function in Code/kobe_mlops and call it"
    )


def test_nbstripout_filter_is_declared():
    attributes = (config.PROJECT_ROOT / ".gitattributes").read_text()
    assert "*.ipynb filter=nbstripout" in attributes


def test_nbstripout_strips_an_executed_notebook_but_keeps_the_parameters_tag(pipeline_run, tmp_path):
    executed = pipeline_run.paths.executed_notebooks_dir / "02_preparacao.ipynb"
    assert any(cell.get("outputs") for cell in json.loads(executed.read_text())["cells"] if cell["cell_type"] == "code")
    copy = tmp_path / "02_preparacao.ipynb"
    copy.write_text(executed.read_text())
    subprocess.run([sys.executable, "-m", "nbstripout", str(copy)], check=True)
    after = json.loads(copy.read_text())
    assert dirty_cells(after) == []
    assert any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in after["cells"])
