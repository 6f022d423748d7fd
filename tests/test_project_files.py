"""The install files agree with each other and with what is installed; CI runs the README's command."""

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version

import pytest

from kobe_mlops import config

ROOT = config.PROJECT_ROOT
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(file: str = "requirements.txt") -> dict[str, str]:
    lines = [line.strip() for line in (ROOT / file).read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert all("==" in line for line in requirements), f"every requirement in {file} must be an exact pin"
    return dict(line.split("==") for line in requirements)


def installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


@pytest.mark.parametrize("file", ["requirements.txt", "requirements-dev.txt", "requirements-scale.txt"])
def test_installed_versions_match_the_pins(file):
    mismatched = {name: (pin, installed(name)) for name, pin in pins(file).items() if installed(name) != pin}
    if file == "requirements-scale.txt":  # an optional extra (pip install -e '.[scale]'): its packages may be absent
        mismatched = {name: pair for name, pair in mismatched.items() if pair[1] is not None}
    assert not mismatched, f"installed versions differ from {file}: {mismatched}"


def test_pyproject_and_environment_delegate_to_requirements():
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]
    assert dynamic["dependencies"] == {"file": ["requirements.txt"]}
    extras = {extra: spec["file"] for extra, spec in dynamic["optional-dependencies"].items()}
    assert extras == {"dev": ["requirements-dev.txt"], "scale": ["requirements-scale.txt"]}
    environment = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in environment and "- -e .[dev]" in environment
    assert "==" not in environment, "environment.yml must not pin versions of its own"


def test_the_runtime_pins_hold_no_development_tool_and_every_set_up_installs_them():
    for extra in ["requirements-dev.txt", "requirements-scale.txt"]:
        assert not set(pins()) & set(pins(extra)), f"a package is pinned in both requirements.txt and {extra}"
    assert {"pytest", "ruff", "import-linter", "pre-commit", "nbstripout"} <= set(pins("requirements-dev.txt"))
    package = ROOT / "Code" / "kobe_mlops"
    importing = [
        p for p in package.rglob("*.py") if re.search(r"^\s*(import|from) (pytest|nbstripout)\b", p.read_text(), re.M)
    ]
    assert not importing, f"the package imports a development tool: {importing}"
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e '.[dev]' && .venv/bin/nbstripout --install" in readme  # the README's set-up command
    assert "pip install -e '.[dev]'" in (ROOT / "Makefile").read_text()
    assert "pip install --quiet -e '.[dev,scale]'" in (ROOT / ".ci" / "run").read_text()


def ci_lines() -> list[str]:
    return [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]


def test_ci_runs_exactly_the_readme_test_command():
    match = re.search(r"<!-- test-command -->\s*```bash\s*\n(.+?)\n```", (ROOT / "README.md").read_text())
    assert match, "README must show the test command under <!-- test-command -->"
    assert match.group(1).strip() in ci_lines()


def test_the_scale_extra_pins_pyspark_3_5():
    # pyspark 4 needs pandas >= 2.2 for pandas UDFs; PyCaret pins 2.1
    assert pins("requirements-scale.txt")["pyspark"].startswith("3.5.")


# --- The module map in Code/README.md --------------------------------------------------------

PACKAGE = ROOT / "Code" / "kobe_mlops"
VIEWS = "dashboard/views/"  # the dashboard pages: one row for the folder
BASE_MODULES = {"config", "io", "tracking", "tracking_stack"}


def module_map() -> dict[str, str]:
    """``{module path: layer}`` of the rows of the "Module map" table in Code/README.md."""
    text = (ROOT / "Code" / "README.md").read_text()
    assert "## Module map" in text, "Code/README.md lost its '## Module map' section"
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0].startswith("`"):
            module = cells[0].strip("`")
            assert module not in rows, f"Code/README.md lists {module} twice"
            rows[module] = cells[1]
    return rows


def package_modules() -> set[str]:
    """Every module of the package relative to Code/kobe_mlops, the dashboard pages as one folder."""
    modules = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"}
    return {VIEWS if module.startswith(VIEWS) else module for module in modules}


def test_every_module_has_a_row_in_the_module_map_and_every_row_a_module():
    missing = sorted(package_modules() - set(module_map()))
    assert not missing, f"Code/README.md's module map has no row for {missing}: add one (module, layer, what it does)"
    stale = sorted(module for module in module_map() if not (PACKAGE / module).exists())
    assert not stale, f"Code/README.md's module map lists modules that are gone: {stale}"


def test_each_row_names_the_layer_its_path_puts_it_in():
    tops = {module: module.split("/")[0].removesuffix(".py") for module in module_map()}
    expected = {module: "base" if top in BASE_MODULES else top for module, top in tops.items()}
    wrong = {module: (layer, expected[module]) for module, layer in module_map().items() if layer != expected[module]}
    assert not wrong, f"module map rows with the wrong layer (written, expected): {wrong}"


def test_the_layer_diagram_is_the_import_linter_contract():
    contracts = PYPROJECT["tool"]["importlinter"]["contracts"]
    (layers,) = [contract["layers"] for contract in contracts if contract["type"] == "layers"]
    text = (ROOT / "Code" / "README.md").read_text()
    diagram = re.search(r"```text\n(.+? <- .+?)\n```", text)
    assert diagram, "Code/README.md lost its layer diagram"
    written = [f"kobe_mlops.{name.strip()}" for name in diagram.group(1).split("<-")]
    assert written == list(reversed(layers))


# --- Development tools: lint in CI, make and the git hooks -----------------------------------

LINT_COMMANDS = [".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/lint-imports"]


def test_ci_lints_before_the_tests_and_make_lint_runs_the_same_commands():
    lines = ci_lines()
    assert lines[0] == "#!/usr/bin/env bash" and "set -euo pipefail" in lines  # a failing lint stops CI
    positions = [lines.index(command) for command in LINT_COMMANDS]
    assert positions == sorted(positions) and positions[-1] < lines.index(".venv/bin/python -m pytest")
    makefile = (ROOT / "Makefile").read_text()
    lint_recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert lint_recipe, "the Makefile has no lint target"
    assert [line.strip() for line in lint_recipe.group(1).splitlines()] == LINT_COMMANDS
    assert re.search(r'^test-quick:.*\n\t\$\(PY\) -m pytest -m "not e2e"$', makefile, flags=re.M)


def test_pre_commit_hooks_use_the_project_s_own_tools_offline():
    import yaml

    hooks_config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in hooks_config["repos"] for hook in repo["hooks"]]
    assert [repo["repo"] for repo in hooks_config["repos"]] == ["local"]  # nothing to download
    assert {hook["language"] for hook in hooks} == {"system"}
    assert all(hook["entry"].startswith(".venv/bin/") for hook in hooks)
    assert {hook["entry"].split()[0].split("/")[-1] for hook in hooks} == {"ruff", "nbstripout"}
