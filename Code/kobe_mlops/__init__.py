"""kobe-mlops: predict whether a Kobe Bryant shot went in, with the whole model life cycle tracked.

Subpackages follow the TDSP life-cycle stages:

- :mod:`kobe_mlops.data_acquisition`: acquisition and understanding (download, checksums,
  data contract, preparation).
- :mod:`kobe_mlops.modeling`: training, evaluation, selection and registration.
- :mod:`kobe_mlops.deployment`: applying the champion to production data and monitoring it.
"""

__version__ = "0.1.0"
