#!/usr/bin/env python
"""Run the whole kobe-mlops pipeline headless: ``python run_all.py --help`` lists the flags."""

import os
import sys

# MLflow 3 reports usage by default; a course run sends nothing (the notebooks' kernels and the
# servers it starts inherit this).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from kobe_mlops.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
