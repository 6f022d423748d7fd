"""Time each dashboard page's first visit and a cached revisit in headless Chromium, as a user waits.

    .venv/bin/python bench/dashboard_pages.py --workspace /tmp/ws              # a workspace with a run
    .venv/bin/python bench/dashboard_pages.py --workspace /tmp/ws --busy 2     # two cores kept busy
    .venv/bin/python bench/dashboard_pages.py --workspace /tmp/ws --screens /tmp/screens --rounds 1

Each round starts a fresh ``streamlit run`` (cold caches, as after a restart) bound to 127.0.0.1 and a
fresh headless Chromium (``tests/dashboard/browser.py`` drives both), opens every page in
navigation order, then every page again. A visit ends when Streamlit has finished running the
page's script (title drawn, no "Running…" widget, no spinner). ``--busy N`` spins N CPU-bound
processes for the whole measurement, like another job on the machine. Figures are printed, never
asserted; ``--screens DIR`` also saves a full-page PNG of each page after its first visit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "dashboard"))

from browser import Browser, streamlit_server  # noqa: E402

from kobe_mlops.dashboard.common import page_files  # noqa: E402


def page_urls(url: str) -> dict[str, str]:
    """Page file stem -> its address (the first page is the app's root; Streamlit drops the NN_ prefix)."""
    pages = page_files()
    return {page.stem: url if index == 0 else f"{url}/{page.stem.split('_', 1)[1]}" for index, page in enumerate(pages)}


def one_round(env: dict[str, str], folder: Path, screens: Path | None) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    with streamlit_server(env, folder / "streamlit.log") as url, Browser(folder / "chromium") as browser:
        urls = page_urls(url)
        for visit in range(2):
            for stem, address in urls.items():
                times.setdefault(stem, []).append(browser.visit(address))
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
    print(f"{'page':40} {'first visit median s':>21} {'max s':>7} {'cached median s':>16}")
    for stem in rounds[0]:
        first = [r[stem][0] for r in rounds]
        cached = [r[stem][1] for r in rounds]
        print(f"{stem:40} {statistics.median(first):21.2f} {max(first):7.2f} {statistics.median(cached):16.2f}")


if __name__ == "__main__":
    main()
