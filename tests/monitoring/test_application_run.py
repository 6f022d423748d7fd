"""A real ``PipelineAplicacao`` run logs every metric the triggers read, under the names they read.

The writers (``monitoring/application_run.py``, ``modeling/training_run.py``) and the readers
(``monitoring/triggers.py``, trends, dashboard) share the names in ``tracking/names.py``; this
test makes a renamed or dropped metric fail here instead of silently disabling a trigger. It
reads the session pipeline's store (fixture ``tracking``), so it is end-to-end.
"""

import pytest

from kobe_mlops import config
from kobe_mlops.monitoring import triggers
from kobe_mlops.tracking import names, reads


@pytest.mark.e2e
def test_a_real_application_run_logs_what_the_triggers_read(tracking):
    """The session pipeline's application run, and the training run of the version it scored with."""
    application = reads.latest_application_run(tracking)
    assert application is not None, "the session pipeline logged no finished PipelineAplicacao run"
    logged = application.data.metrics
    expected = [*triggers.APPLICATION_METRICS_READ, *(names.psi_metric(feature) for feature in config.FEATURES)]
    missing = [name for name in expected if name not in logged]
    assert not missing, f"PipelineAplicacao run {application.info.run_id} does not log {missing}"

    assert application.data.params.get("model_version"), "the application run names no registered version"
    version = reads.model_version_used(tracking, application)
    training = reads.training_run_of(tracking, version)
    assert training is not None and training.info.run_name == config.RUN_NAMES["treinamento"]
    missing = [name for name in triggers.TRAINING_METRICS_READ if name not in training.data.metrics]
    assert not missing, f"Treinamento run {training.info.run_id} does not log {missing}"
