import math

import numpy as np
import pytest

from kobe_mlops.modeling.metrics import baseline_metrics, evaluate_probabilities, labels_from_probability, prefixed

Y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
P = np.array([0.9, 0.2, 0.6, 0.4, 0.55, 0.1, 0.7, 0.3])


def test_metrics_come_from_probabilities():
    metrics = evaluate_probabilities(Y, P)
    expected_log_loss = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    assert metrics["log_loss"] == pytest.approx(expected_log_loss)
    assert metrics["brier"] == pytest.approx(np.mean((P - Y) ** 2))
    # labels at 0.5: predicted [1,0,1,0,1,0,1,0] -> tp=3, fp=1, fn=1
    assert metrics["precision"] == pytest.approx(3 / 4)
    assert metrics["recall"] == pytest.approx(3 / 4)
    assert metrics["f1"] == pytest.approx(3 / 4)
    assert metrics["auc"] == pytest.approx(15 / 16)
    assert labels_from_probability([0.49, 0.5, 0.51]).tolist() == [0, 1, 1]  # the threshold is inclusive


def test_baselines():
    rate = 0.4
    baseline = baseline_metrics(Y, rate)
    share = Y.mean()
    assert baseline["log_loss"] == pytest.approx(-(share * math.log(rate) + (1 - share) * math.log(1 - rate)))
    assert baseline["f1"] == pytest.approx(2 * share / (1 + share))  # always "make"
    assert baseline["recall"] == 1.0 and baseline["auc"] == 0.5
    assert baseline["brier"] == pytest.approx(np.mean((rate - Y) ** 2))


def test_metric_names_follow_the_course():
    assert set(prefixed({"log_loss": 1.0, "f1": 0.5}, "lr", "test")) == {"log_loss_lr_test", "f1_lr_test"}
