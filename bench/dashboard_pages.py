"""Time each dashboard page's first visit and a cached revisit in headless Chromium, as a user waits.

    .venv/bin/python bench/dashboard_pages.py --workspace /tmp/ws              # a workspace with a run
    .venv/bin/python bench/dashboard_pages.py --workspace /tmp/ws --busy 2     # two cores kept busy
    .venv/bin/python bench/dashboard_pages.py --workspace /tmp/ws --screens /tmp/screens --rounds 1

Each round starts a fresh ``streamlit run`` (cold caches, as after a restart) bound to 127.0.0.1 and
times it until it answers (it imports what every page needs first), starts a fresh headless Chromium
(``tests/dashboard/browser.py`` drives both), opens the app (the frontend loads once), then clicks
through every page in the sidebar, as a user moves between pages, and through every page again. A
visit ends when the page's title is drawn and Streamlit says its script is no longer running.
``--busy N`` spins N CPU-bound processes for the whole measurement, like another job on the machine.
Figures are printed, never asserted; ``--screens DIR`` also saves a PNG of each page's first visit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "dashboard"))

from browser import Browser, streamlit_server  # noqa: E402

from kobe_mlops.dashboard.common import page_files  # noqa: E402

SCREEN_HEIGHT = 4200  # a window tall enough for the longest page: screenshots are cut at its content


def page_titles() -> dict[str, str]:
    """Page file stem -> the title Streamlit gives it in the sidebar ("03_Model_health" -> "Model health")."""
    return {page.stem: page.stem.split("_", 1)[1].replace("_", " ") for page in page_files()}


def one_round(env: dict[str, str], folder: Path, screens: Path | None) -> dict[str, list[float]]:
    """Start the server (it imports what every page needs before it answers), open the app on its first
    page (which also loads the frontend), then move through the other pages and back to the first in
    the sidebar, twice: first visits, then cached ones."""
    times: dict[str, list[float]] = {}
    titles = page_titles()
    browser = Browser(folder / "chromium", height=SCREEN_HEIGHT if screens else 1000)
    started = time.monotonic()
    with streamlit_server(env, folder / "streamlit.log") as url:
        times["(server start: imports, until it answers)"] = [time.monotonic() - started]
        with browser:
            first = next(iter(titles))
            times[first] = [browser.visit(url)]  # the first page also loads the frontend
            order = [*list(titles)[1:], first]
            for visit in range(2):
                for stem in order:
                    times.setdefault(stem, []).append(browser.open_page(titles[stem]))
                    if screens is not None and visit == 0:
                        browser.screenshot(screens / f"{stem}.png")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True, help="a workspace holding a finished pipeline run")
    parser.add_argument("--rounds", type=int, default=3, help="fresh servers to time (default 3)")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes to run meanwhile (default 0)")
    parser.add_argument("--screens", type=Path, help="save a PNG of every page here (first round)")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "KOBE_INVOCATION_ID"}}
    env["KOBE_WORKSPACE"] = str(Path(args.workspace).resolve())
    if args.screens:
        args.screens.mkdir(parents=True, exist_ok=True)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    rounds = []
    try:
        for index in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="kobe-bench-pages-") as folder:
                rounds.append(one_round(env, Path(folder), args.screens if index == 0 else None))
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()

    load = os.getloadavg()
    print(
        f"Dashboard pages in headless Chromium, {args.rounds} fresh servers, {args.busy} busy processes, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (workspace {env['KOBE_WORKSPACE']})"
    )
    print(f"{'page':48} {'first visit median s':>21} {'max s':>7} {'cached median s':>16}")
    for stem in rounds[0]:
        first = [r[stem][0] for r in rounds]
        cached = [r[stem][-1] for r in rounds]
        cached_text = f"{statistics.median(cached):16.2f}" if len(rounds[0][stem]) > 1 else f"{'':>16}"
        print(f"{stem:48} {statistics.median(first):21.2f} {max(first):7.2f} {cached_text}")
    print(f"{next(iter(page_titles()))}'s first visit opens the app: it includes loading the frontend.")


if __name__ == "__main__":
    main()
