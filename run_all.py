#!/usr/bin/env python
"""Run the whole kobe-mlops pipeline headless: ``python run_all.py --help`` lists the flags."""

import sys

from kobe_mlops.runner import main

if __name__ == "__main__":
    sys.exit(main())
