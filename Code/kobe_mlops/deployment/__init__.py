"""TDSP stage 3, deployment and operation: apply the champion to production files and serve it.

Batch scoring (``application``), the engine choice (``engines``), the Spark engine
(``spark_scoring``) and the REST scoring server (``serving``). Watching what the champion does
in production is the next layer up, :mod:`kobe_mlops.monitoring`.
"""
