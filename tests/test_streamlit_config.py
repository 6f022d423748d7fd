"""The project's Streamlit config turns usage statistics off, and Streamlit reads it that way."""

import subprocess
import sys
import tomllib

from kobe_mlops import config

CONFIG = config.PROJECT_ROOT / ".streamlit" / "config.toml"


def test_usage_statistics_are_off_in_the_project_config():
    assert tomllib.loads(CONFIG.read_text())["browser"]["gatherUsageStats"] is False


def test_streamlit_started_in_the_project_root_reads_it():
    code = "from streamlit import config; print(config.get_option('browser.gatherUsageStats'))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
