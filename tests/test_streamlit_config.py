"""The project's Streamlit config (usage statistics off, no file watcher), read that way by Streamlit
started in the project root, and the app's imports kept out of Streamlit's collection after each page."""

import subprocess
import sys
import tomllib

from kobe_mlops import config

CONFIG = config.PROJECT_ROOT / ".streamlit" / "config.toml"


def last_line_in_project_root(code: str) -> str:
    """The last line ``code`` prints, run by Python started in the project root (where Streamlit reads its config)."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_usage_statistics_are_off_and_no_file_is_watched_in_the_project_config():
    settings = tomllib.loads(CONFIG.read_text())
    assert settings["browser"]["gatherUsageStats"] is False
    assert settings["server"]["fileWatcherType"] == "none"


def test_streamlit_started_in_the_project_root_reads_it():
    options = "config.get_option('browser.gatherUsageStats'), config.get_option('server.fileWatcherType')"
    code = f"from streamlit import config; print({options})"
    assert last_line_in_project_root(code) == "False none"


def test_the_app_freezes_what_it_imported_before_the_first_page():
    frozen = last_line_in_project_root("import gc, kobe_mlops.dashboard.app; print(gc.get_freeze_count())")
    assert int(frozen) > 100_000  # every object of pandas, MLflow, matplotlib…
