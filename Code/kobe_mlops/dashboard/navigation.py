"""What every browser session runs: the page set-up and the navigation over ``views/``."""

import streamlit as st

from kobe_mlops.dashboard.common import page_files

st.set_page_config(page_title="kobe-mlops monitoring", layout="wide")
# Streamlit takes each title from the file name: "03_Model_health_with_labels.py" -> "Model health with labels".
st.navigation([st.Page(path) for path in page_files()]).run()
