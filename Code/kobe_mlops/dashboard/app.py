"""Entry point of the monitoring dashboard: a server that has done its imports before it answers.

    .venv/bin/streamlit run Code/kobe_mlops/dashboard/app.py --server.address 127.0.0.1

``streamlit run`` imports this module once: thread pools are bounded and what every page needs is loaded
before the first visit. Each browser session then runs ``navigation.py``.
"""

import gc
import os
from contextlib import suppress
from pathlib import Path

# One thread per native pool: on a shared machine OpenMP or BLAS threads waiting on each other turn a
# second into a minute. OpenMP reads its variable when loaded; BLAS came with numpy: threadpoolctl.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # MLflow 3 reports usage unless told not to

import mlflow.store.model_registry.sqlalchemy_store  # noqa: E402, F401  (the default SQLite store's readers)
import mlflow.store.tracking.sqlalchemy_store  # noqa: E402, F401
import pandas.io.formats.style  # noqa: E402, F401  (the pages' formatted tables)
from mlflow.tracking import MlflowClient  # noqa: E402
from streamlit import env_util  # noqa: E402
from streamlit.starlette import App  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from kobe_mlops.dashboard import charts, common  # noqa: E402, F401
from kobe_mlops.tracking import is_local_store, store_exists, tracking_uri  # noqa: E402

threadpool_limits(limits=int(os.environ["OPENBLAS_NUM_THREADS"]), user_api="blas")
env_util.is_repl()  # Streamlit asks once per process, on the first element: inspect's file cache fills here
# MLflow keeps one store per URI: a local one is opened here (a store that cannot be read is for the pages to name).
with suppress(Exception):
    if is_local_store(tracking_uri()) and store_exists():
        MlflowClient(tracking_uri()).search_experiments(max_results=1)
        MlflowClient(tracking_uri()).search_registered_models(max_results=1)
# Streamlit collects garbage after every page run; frozen, the objects of these imports are not traversed
# each time (a full collection of them took 0.3 s of every visit).
gc.freeze()
app = App(Path(__file__).with_name("navigation.py"))
