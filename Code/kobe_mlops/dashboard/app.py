"""Entry point of the monitoring dashboard (see the package docstring for how to add a page).

.venv/bin/streamlit run Code/kobe_mlops/dashboard/app.py --server.address 127.0.0.1
"""

import os

# One thread per native pool: a page does small numeric work, and on a shared machine OpenMP or
# BLAS threads that wait on each other turn a second into a minute. OpenMP reads its variable
# when it is loaded (with scikit-learn, by a page), BLAS is already loaded with numpy: threadpoolctl.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # artifact reads print no bar

import streamlit as st  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from kobe_mlops.dashboard.common import page_files  # noqa: E402

threadpool_limits(limits=int(os.environ["OPENBLAS_NUM_THREADS"]), user_api="blas")
st.set_page_config(page_title="kobe-mlops monitoring", layout="wide")
# Streamlit takes each title from the file name: "03_Model_health_with_labels.py" -> "Model health with labels".
st.navigation([st.Page(path) for path in page_files()]).run()
