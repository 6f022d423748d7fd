"""The install files agree with each other and with what is installed; CI runs the README's command."""

import re
from importlib.metadata import PackageNotFoundError, version

from kobe_mlops import config

ROOT = config.PROJECT_ROOT


def pins() -> dict[str, str]:
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert all("==" in line for line in requirements), "every requirement must be an exact pin"
    return dict(line.split("==") for line in requirements)


def test_installed_versions_match_the_pins():
    mismatched = {name: (pinned, version(name)) for name, pinned in pins().items() if version(name) != pinned}
    assert not mismatched, f"installed versions differ from requirements.txt: {mismatched}"


def test_pyproject_and_environment_delegate_to_requirements():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dependencies = { file = ["requirements.txt"] }' in pyproject
    environment = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in environment and "- -e ." in environment
    assert "==" not in environment, "environment.yml must not pin versions of its own"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\s*```bash\s*\n(.+?)\n```", readme)
    assert match, "README must show the test command under <!-- test-command -->"
    command = match.group(1).strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines


def test_scale_extra_pins_live_in_their_own_file():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'optional-dependencies = { scale = { file = ["requirements-scale.txt"] } }' in pyproject
    lines = [line.strip() for line in (ROOT / "requirements-scale.txt").read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert requirements and all("==" in line for line in requirements), "every requirement must be an exact pin"
    scale = dict(line.split("==") for line in requirements)
    # pyspark 4 needs pandas >= 2.2 for pandas UDFs; PyCaret pins pandas 2.1.
    assert scale["pyspark"].startswith("3.5.")
    assert not set(scale) & set(pins()), "a package is pinned in both requirement files"
    mismatched = {}
    for name, pinned in scale.items():
        try:
            installed = version(name)
        except PackageNotFoundError:  # the extra is optional: pip install -e '.[scale]'
            continue
        if installed != pinned:
            mismatched[name] = (pinned, installed)
    assert not mismatched, f"installed versions differ from requirements-scale.txt: {mismatched}"
