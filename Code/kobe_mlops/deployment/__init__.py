"""TDSP stage 3, deployment and operation: apply the champion to production files and serve it.

Batch scoring streams a file through the data contract and the model (``application``: the
pandas engine; ``spark_scoring``: the Spark engine), feeds every scored batch to observers
(``batches``: the protocol the run's figures follow) and moves the outputs into place at the end
(``outputs``); ``engines`` picks the engine, ``serving`` runs the REST scoring server. Watching
what the champion does in production is the next layer up, :mod:`kobe_mlops.monitoring`.
"""
