"""The monitoring dashboard: a multipage Streamlit app that reads what the steps logged, never trains.

``app.py`` is the server (``streamlit run``, README), ``navigation.py`` what each session runs, and
``views/NN_Title_words.py`` one page each, shown in ``NN`` order with the title ``Title words``:
adding a page is dropping a file there. ``Code/README.md`` maps the other modules.
"""
