"""One real browser: ``streamlit run`` on a free loopback port, headless Chromium (``browser.py``), rendered text."""

import pytest
from browser import CHROMIUM, Browser, streamlit_server

from conftest import workspace_env
from kobe_mlops import config
from kobe_mlops.dashboard import common

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no headless browser: the Debian package 'chromium' is not installed (.ci/run installs it)",
)


def shown(browser: Browser, url: str) -> str:
    browser.visit(url)  # until Streamlit has finished the page's script
    return browser.visible_text()


def test_dashboard_renders_in_a_real_browser(pipeline_run, tmp_path):
    import mlflow

    client = mlflow.MlflowClient(pipeline_run.tracking_uri)
    champion = client.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    with (
        streamlit_server(workspace_env(pipeline_run.workspace), tmp_path / "streamlit.log") as url,
        Browser(tmp_path / "chromium-profile") as browser,
    ):
        # Each page opened by its address, once its script has finished (tables are drawn on a canvas,
        # outside the page text: headings and metrics are checked).
        overview, retraining, timeline = (shown(browser, url + path) for path in ["", "/Retraining", "/Timeline"])
        # Moving through the sidebar as a user does, every page finishes without an exception box.
        titles = [page.stem.split("_", 1)[1].replace("_", " ") for page in common.page_files()]
        for title in titles:
            browser.open_page(title)
    assert all(title in overview for title in titles)  # the navigation lists every page
    assert "Last pipeline runs" in overview and config.REGISTERED_MODEL_NAME in overview
    assert champion.tags["selection_reason"] in overview
    assert "Recommended action" in retraining and "Feature drift" in retraining and "shot_distance" in retraining
    # The session pipeline made no replay: the page says so and gives the command.
    assert "No replay yet: no finished replay" in timeline and "--replay" in timeline
    assert "Traceback" not in overview + retraining + timeline
