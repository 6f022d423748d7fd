"""kobe-mlops: predict whether a Kobe Bryant shot went in, with the whole model life cycle tracked.

Subpackages follow the TDSP life-cycle stages:

- :mod:`kobe_mlops.data_acquisition`: acquisition and understanding (download, checksums,
  data contract, preparation).
- :mod:`kobe_mlops.modeling`: training, evaluation, selection and registration.
- :mod:`kobe_mlops.deployment`: applying the champion to production data and monitoring it.
"""

__version__ = "0.1.0"


def _route_pycaret_log() -> None:
    """PyCaret opens ./logs.log in the current folder as soon as it is imported (also when a
    registered model is unpickled). Send it to the workspace's git-ignored reports/ instead."""
    import os

    if "PYCARET_CUSTOM_LOGGING_PATH" in os.environ:
        return
    from kobe_mlops.config import workspace_paths

    reports = workspace_paths().root / "reports"
    try:
        reports.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only workspace: let PyCaret fall back to its own default
        return
    os.environ["PYCARET_CUSTOM_LOGGING_PATH"] = str(reports / "pycaret.log")
    global PYCARET_LOG_ROUTED
    PYCARET_LOG_ROUTED = True


PYCARET_LOG_ROUTED = False  # True when the path above was set here rather than by the user

_route_pycaret_log()
