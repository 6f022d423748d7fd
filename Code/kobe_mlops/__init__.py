"""kobe-mlops: predict whether a Kobe Bryant shot went in, with the whole model life cycle tracked.

Subpackages follow the TDSP life-cycle stages: :mod:`kobe_mlops.data_acquisition`,
:mod:`kobe_mlops.modeling`, :mod:`kobe_mlops.deployment`, :mod:`kobe_mlops.monitoring` and
:mod:`kobe_mlops.dashboard`, over the base modules ``config``, ``io`` and ``tracking``.
Importing the package writes nothing and sets no environment variable.
"""

__version__ = "0.1.0"
