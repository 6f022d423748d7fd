"""Labels accumulate over application runs; after a promotion, metrics stay out of sample.

On the course data, in this process: score the production base in two halves, then an unlabelled
file, retrain on the label store, promote, and score the whole base again.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from kobe_mlops import config
from kobe_mlops.monitoring import application_run, calculators, labels, retraining
from kobe_mlops.tracking import names, reads

pytestmark = pytest.mark.e2e


def test_labels_accumulate_and_graded_rows_are_never_in_sample(workspace_copy, tmp_path, monkeypatch):
    import mlflow

    workspace, paths = workspace_copy.workspace, workspace_copy.paths
    monkeypatch.setenv("KOBE_WORKSPACE", str(workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(workspace_copy.tracking_uri)
    client = reads.client(workspace_copy.tracking_uri)

    production = pd.read_parquet(paths.raw_file("prod")).sort_values(["game_date", "shot_id"], kind="stable")
    half = len(production) // 2
    files = {"first": tmp_path / "first.parquet", "second": tmp_path / "second.parquet"}
    production.iloc[:half].to_parquet(files["first"], index=False)
    production.iloc[half:].to_parquet(files["second"], index=False)
    unlabelled = tmp_path / "unlabelled.parquet"
    production.iloc[:100].drop(columns=config.TARGET).to_parquet(unlabelled, index=False)

    # The session run appended the whole base once: start this scenario with an empty store.
    for path in labels.store_files(paths):
        path.unlink()
    for name in ("first", "second"):
        application_run.run_application_step(str(files[name]), paths=paths)
    application_run.run_application_step(str(unlabelled), paths=paths)  # adds nothing, says so
    assert reads.latest_application_run(client).data.metrics[names.LABELS_APPENDED] == 0

    labelled = production[production[config.TARGET].notna()]
    stored = labels.read_labels(paths)
    assert stored.files == 2 and len(stored.rows) == len(labelled)
    assert set(stored.rows[labels.FILE_COLUMN]) == {str(files["first"]), str(files["second"])}

    retraining.retrain(forced=True)
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME)
    check = client.search_runs([experiment.experiment_id], "attributes.run_name = 'VerificacaoRetreino'")[0]
    assert check.data.metrics[names.LABELLED_PRODUCTION_ROWS] == len(labelled)
    challenger = reads.version_by_alias(client, config.CHALLENGER_ALIAS) or reads.version_by_alias(client)
    learned = reads.learned_shot_ids(client, challenger)
    older, newest = retraining.time_ordered_split(retraining.read_labelled_production(paths))
    assert sorted(learned) == sorted(older["shot_id"])  # both halves' labels, minus the time holdout
    assert set(learned) & set(production.iloc[:half]["shot_id"])
    assert set(learned) & set(production.iloc[half:]["shot_id"])
    if reads.version_by_alias(client, config.CHALLENGER_ALIAS) is not None:
        # The gate kept the champion on this run's figures; the scenario is about what happens after a
        # promotion, so promote it by hand as an operator would.
        retraining.promote(client, "promoted by the test to score with a model that learned production rows")

    application_run.run_application_step(str(paths.raw_file("prod")), paths=paths)
    application = reads.latest_application_run(client)
    metrics, tags = application.data.metrics, application.data.tags
    seen = int(np.isin(labelled["shot_id"], learned).sum())
    assert seen == len(older) > 0
    assert metrics[names.ROWS_SEEN_IN_TRAINING] == seen
    assert metrics[names.ROWS_EVALUATED] == len(labelled) - seen == len(newest)
    predictions = pd.read_parquet(paths.predictions_prod)
    graded = predictions[predictions[config.TARGET].notna() & ~predictions["shot_id"].isin(learned)]
    expected = log_loss(graded[config.TARGET], graded[config.PROBABILITY_COLUMN], labels=[0, 1])
    assert metrics[names.LOG_LOSS] == pytest.approx(expected, abs=1e-9)
    # The promoted model's only unseen labelled rows are the ones graded now: no reference is dated
    # before them, so no threshold and no estimate are logged, and the run says why.
    assert tags[names.ESTIMATE_APPLICABILITY_TAG] == calculators.NOT_APPLICABLE
    assert names.ESTIMATED_LOG_LOSS not in metrics and "dated before" in tags[names.MONITORING_PROBLEM_TAG]
    # The null model knows what was known before the graded rows: the older labels' make rate.
    assert metrics["null_rate"] == pytest.approx(older[config.TARGET].mean())


def test_the_session_run_estimates_without_trusting_itself_on_3pt_shots(tracking):
    """The development champion meets 3PT shots far from its 2PT reference: the estimate is flagged."""
    application = reads.latest_application_run(tracking)
    metrics, tags = application.data.metrics, application.data.tags
    assert metrics["psi_shot_distance_alert"] == 1.0
    assert tags[names.ESTIMATE_APPLICABILITY_TAG] == calculators.QUESTIONABLE
    assert "shot_distance" in tags[names.ESTIMATE_REASON_TAG]
    assert metrics[names.ROWS_SEEN_IN_TRAINING] == 0
    assert metrics[names.ROWS_EVALUATED] == metrics[names.ROWS_LABELLED]
    assert names.LOG_LOSS in metrics and names.ESTIMATED_LOG_LOSS in metrics
