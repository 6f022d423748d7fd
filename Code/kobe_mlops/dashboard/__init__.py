"""The monitoring dashboard: a multipage Streamlit app that reads, never trains.

Run it from the project root (it binds to 127.0.0.1 only)::

    .venv/bin/streamlit run Code/kobe_mlops/dashboard/app.py --server.address 127.0.0.1

It reads what the steps logged in the MLflow store (``tracking.tracking_uri()``): the
application run's metrics and tables, the training run's reference scores and support. It never
recomputes a figure from the predictions file (only a bounded sample of it is drawn on the court
map). ``KOBE_WORKSPACE`` and ``MLFLOW_TRACKING_URI`` point it at another run as they do for the pipeline.

Layout:

* ``app.py`` — the entry point: bounded native threads, page set-up, navigation over ``views/``.
* ``views/NN_Title_words.py`` — one thin script per page, shown in ``NN`` order with the title
  ``Title words``: a picture and one sentence first, tables in expanders.
* ``verdict.py`` — the one verdict on the production figures, beside both constants.
* ``charts.py`` — the dashboard's figures; ``inference.py`` — the one-shot form's logic.
* ``common.py`` — cached reads keyed by workspace, tracking URI and file timestamps (a new
  pipeline run refreshes every page), figures drawn once per distinct data, and the empty state.

**Adding a page is a one-file change**: drop ``views/08_Retraining_history.py`` next to the
others. Start it like the existing pages::

    import streamlit as st
    from kobe_mlops.dashboard import common

    st.title("Retraining history")
    source = common.current_source()
    state = common.require_state(source)  # shows the empty state and stops when there is no run

``app.py`` discovers it by its file name, and ``tests/test_dashboard.py`` runs every page it
finds, with a pipeline run and in an empty workspace. The folder is ``views/``, not ``pages/``:
Streamlit would list a ``pages/`` folder on its own, beside the navigation.
"""
