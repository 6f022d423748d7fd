"""One real browser: ``streamlit run`` on a free loopback port, headless Chromium, rendered text.

The page's visible text is polled until the expected words appear or a deadline passes
(``browser.py`` drives Chromium); both processes are stopped at the end.
"""

import pytest
from browser import CHROMIUM, Browser, streamlit_server

from conftest import workspace_env
from kobe_mlops import config
from kobe_mlops.dashboard import common

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no headless browser: the Debian package 'chromium' is not installed (.ci/run installs it)",
)


def test_dashboard_renders_in_a_real_browser(pipeline_run, tmp_path):
    import mlflow

    client = mlflow.MlflowClient(pipeline_run.tracking_uri)
    champion = client.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    with (
        streamlit_server(workspace_env(pipeline_run.workspace), tmp_path / "streamlit.log") as url,
        Browser(tmp_path / "chromium-profile") as browser,
    ):
        # Tables are drawn on a canvas, outside the page text: headings and metrics are checked.
        overview = browser.text_of(url, ["Last pipeline runs", config.REGISTERED_MODEL_NAME])
        retraining = browser.text_of(f"{url}/Retraining", ["Recommended action", "Feature drift"])
        # The session pipeline made no replay: the page says so and gives the command.
        timeline = browser.text_of(f"{url}/Timeline", ["No replay yet: no finished replay", "--replay"])
        # Moving through the sidebar as a user does, every page finishes without an exception box.
        titles = [page.stem.split("_", 1)[1].replace("_", " ") for page in common.page_files()]
        for title in titles:
            browser.open_page(title)
    assert all(title in overview for title in titles)  # the navigation lists every page
    assert champion.tags["selection_reason"] in overview
    assert "Traceback" not in overview + retraining + timeline
    assert "shot_distance" in retraining
