"""The retraining loop: hand-made figures and rows first, then a real store.

The real-store tests copy the session pipeline's workspace (the course data, a trained champion,
an application run whose triggers fire on the 2PT -> 3PT shift) and drive ``run_all.py
--retrain / --rollback`` on the copy, so the session store stays as the pipeline left it.
"""

import shutil
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from conftest import PipelineRun, copy_empty_store, run_pipeline, synthetic_shots
from kobe_mlops import config
from kobe_mlops.monitoring import gate, retraining, triggers
from kobe_mlops.monitoring.retraining import RetrainingError, retraining_decision, rows_fingerprint, time_ordered_split

NAME = config.REGISTERED_MODEL_NAME


# --- The time-ordered split ------------------------------------------------------------------


def labelled_rows(dates: list[str]) -> pd.DataFrame:
    return synthetic_shots(len(dates)).assign(shot_id=np.arange(len(dates)) + 100, game_date=dates)


def test_split_puts_the_newest_rows_in_the_holdout_and_never_splits_a_date():
    dates = ["2001-01-05"] * 3 + ["2001-01-01"] * 4 + ["2001-01-03"] * 2 + ["2001-01-09"] * 1
    older, newest = time_ordered_split(labelled_rows(dates))
    # 10 rows, 30 %: the boundary falls on 2001-01-05, so all three of its shots go to the holdout.
    assert sorted(newest["game_date"].dt.strftime("%Y-%m-%d")) == ["2001-01-05"] * 3 + ["2001-01-09"]
    assert older["game_date"].max() < newest["game_date"].min()
    assert set(older["shot_id"]).isdisjoint(newest["shot_id"])
    assert len(older) + len(newest) == len(dates)
    assert older["game_date"].is_monotonic_increasing and newest["game_date"].is_monotonic_increasing


@pytest.mark.parametrize("dates", [["2001-01-01"] * 6, ["2001-01-01"]])
def test_split_refuses_when_no_older_rows_would_remain(dates):
    with pytest.raises(RetrainingError):
        time_ordered_split(labelled_rows(dates))


def test_fingerprint_ignores_row_order_but_not_values():
    rows = labelled_rows(["2001-01-01", "2001-01-02", "2001-01-03"])
    assert rows_fingerprint(rows) == rows_fingerprint(rows.iloc[::-1])
    changed = rows.copy()
    changed.loc[0, config.TARGET] = 1 - changed.loc[0, config.TARGET]
    assert rows_fingerprint(changed) != rows_fingerprint(rows)


# --- Whether to retrain at all -----------------------------------------------------------------


def report(
    fired: bool, model_version: str = "1", drift_only: bool = False, labelled: int = 100, at_last_gate: int = 100
) -> triggers.TriggerReport:
    drift = triggers.Trigger(triggers.FEATURE_DRIFT, 0.9 if fired else 0.1, 0.25, fired, "PSI beyond ...")
    loss = triggers.Trigger(triggers.LOG_LOSS_DEGRADATION, 0.7, 0.65, fired and not drift_only, "Log loss 0.7 ...")
    fresh = triggers.new_labels_trigger(labelled, at_last_gate)
    return triggers.TriggerReport("run-1", [drift, loss, fresh], model_version)


@pytest.mark.parametrize(
    "case, expected, reason_part",
    [
        (dict(report=None), False, "no application run"),
        (dict(report=report(fired=False)), False, "no trigger fired"),
        (dict(report=report(fired=True)), True, "fired: log_loss_degradation"),
        (dict(report=report(fired=True, drift_only=True)), False, "only feature_drift fired"),
        (dict(report=report(fired=True, drift_only=True, labelled=200)), True, "fired: new_labels"),
        (dict(report=report(fired=True, model_version="1"), champion_version="2"), False, "apply it first"),
        (dict(report=report(fired=True), already_trained=SimpleNamespace(version="2")), False, "needs new labels"),
    ],
    ids=["no-run", "quiet", "fired", "drift-alone", "new-labels", "stale-run", "same-labels"],
)
def test_retraining_decision(case, expected, reason_part):
    arguments = {"champion_version": "1", "forced": False, "already_trained": None, **case}
    retrain, reason = retraining_decision(**arguments)
    assert retrain is expected and reason_part in reason
    forced, forced_reason = retraining_decision(**{**arguments, "forced": True})
    assert forced and forced_reason.startswith("forced retraining") and reason_part in forced_reason


# --- Aliases: promotion and rollback on a registry of three versions ---------------------------


@pytest.fixture(scope="module")
def registry_template(tmp_path_factory, empty_mlflow_db):
    """A SQLite registry with versions 1 (champion) and 2 (challenger); no models behind them."""
    folder = tmp_path_factory.mktemp("registry")
    client = mlflow.MlflowClient(copy_empty_store(empty_mlflow_db, folder / "mlflow.db"))
    client.create_registered_model(NAME)
    for _ in range(2):
        client.create_model_version(NAME, source=str(folder))
    client.set_registered_model_alias(NAME, config.CHAMPION_ALIAS, "1")
    client.set_registered_model_alias(NAME, config.CHALLENGER_ALIAS, "2")
    return folder / "mlflow.db"


def make_registry(folder, template) -> mlflow.MlflowClient:
    """A copy of the template registry in ``folder`` (the same folder again: the store MLflow opened stays cached)."""
    folder.mkdir(parents=True, exist_ok=True)
    return mlflow.MlflowClient(copy_empty_store(template, folder / "mlflow.db"))


@pytest.fixture
def registry(tmp_path, registry_template):
    return make_registry(tmp_path, registry_template)


def aliases(client) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(NAME).aliases.items()}


def test_promotion_then_rollback_moves_the_aliases_and_tags_the_versions(registry):
    assert retraining.promote(registry, "better") == {"champion_version_before": "1", "champion_version_after": "2"}
    assert aliases(registry) == {config.CHAMPION_ALIAS: "2", config.PREVIOUS_ALIAS: "1"}
    assert registry.get_model_version(NAME, "2").tags["promotion_reason"] == "better"
    assert retraining.rollback(registry, "manual") == {"champion_version_before": "2", "champion_version_after": "1"}
    assert aliases(registry) == {config.CHAMPION_ALIAS: "1"}
    assert "manual" in registry.get_model_version(NAME, "2").tags["rolled_back"]
    assert retraining.PENDING_MOVES_TAG not in registry.get_registered_model(NAME).tags
    with pytest.raises(RetrainingError, match="Nothing to roll back"):
        retraining.rollback(registry, "again")
    with pytest.raises(RetrainingError, match="needs both"):  # the rollback left no challenger
        retraining.promote(registry, "no challenger")
    assert aliases(registry) == {config.CHAMPION_ALIAS: "1"}


class Killed(Exception):
    """The process dies here (raised in place of a registry write)."""


REGISTRY_WRITES = (
    "set_registered_model_alias",
    "delete_registered_model_alias",
    "set_model_version_tag",
    "set_registered_model_tag",
    "delete_registered_model_tag",
)


def watch_writes(client, monkeypatch, kill_at: int | None = None) -> SimpleNamespace:
    """Count the registry writes of ``client`` and keep the aliases after each alias write (only those
    move them); write number ``kill_at`` raises :class:`Killed`."""
    watched = SimpleNamespace(writes=0, aliases=[])

    def watch(method):
        original = getattr(client, method)

        def write(*args, **kwargs):
            if watched.writes == kill_at:
                raise Killed
            result = original(*args, **kwargs)
            watched.writes += 1
            if "alias" in method:
                watched.aliases.append(aliases(client))
            return result

        monkeypatch.setattr(client, method, write)

    for method in REGISTRY_WRITES:
        watch(method)
    return watched


def assert_consistent(snapshot: dict[str, str]) -> None:
    assert config.CHAMPION_ALIAS in snapshot, snapshot
    assert snapshot.get(config.PREVIOUS_ALIAS) != snapshot[config.CHAMPION_ALIAS], snapshot


def prepare(action: str, client):
    """The alias move ``action``, ready to run; a rollback starts from a promoted version 2 that still
    carries @challenger beside @champion."""
    if action == "promote":
        return lambda: retraining.promote(client, "better")
    client.set_registered_model_alias(NAME, config.CHAMPION_ALIAS, "2")
    client.set_registered_model_alias(NAME, config.PREVIOUS_ALIAS, "1")
    return lambda: retraining.rollback(client, "manual")


@pytest.mark.parametrize(
    "action, expected, version_tags",
    [
        (
            "promote",
            {config.CHAMPION_ALIAS: "2", config.PREVIOUS_ALIAS: "1"},
            {"2": "promotion_reason", "1": "demoted"},
        ),
        ("rollback", {config.CHAMPION_ALIAS: "1"}, {"2": "rolled_back"}),
    ],
)
def test_alias_moves_killed_at_any_write_stay_consistent_and_are_finished_by_the_next_start(
    action, expected, version_tags, tmp_path, registry_template, monkeypatch
):
    complete = make_registry(tmp_path / "complete", registry_template)
    run = prepare(action, complete)
    watched = watch_writes(complete, monkeypatch)
    run()
    assert aliases(complete) == expected and watched.writes >= 4
    for snapshot in watched.aliases:
        assert_consistent(snapshot)
    for kill_at in range(watched.writes):
        client = make_registry(tmp_path / "killed", registry_template)
        run = prepare(action, client)
        before = aliases(client)
        killed = watch_writes(client, monkeypatch, kill_at=kill_at)
        with pytest.raises(Killed):
            run()
        for snapshot in killed.aliases:
            assert_consistent(snapshot)
        restarted = mlflow.MlflowClient(client.tracking_uri)  # the next process
        retraining.repair_aliases(restarted)
        if kill_at == 0:  # killed before the first write: nothing started, nothing changed
            assert aliases(restarted) == before
            continue
        assert aliases(restarted) == expected, f"killed at write {kill_at}"
        for version, tag in version_tags.items():
            assert tag in restarted.get_model_version(NAME, version).tags, (kill_at, version, tag)
        assert retraining.PENDING_MOVES_TAG not in restarted.get_registered_model(NAME).tags
        assert retraining.repair_aliases(restarted) == []  # nothing left to repair


def test_a_champion_equal_to_previous_is_repaired_and_never_rolled_back_to_itself(registry):
    registry.set_registered_model_alias(NAME, config.PREVIOUS_ALIAS, "1")  # what a kill left before
    with pytest.raises(RetrainingError, match="Nothing to roll back: @previous and @champion are both version 1"):
        retraining.rollback(registry, "manual")
    assert aliases(registry) == {config.CHAMPION_ALIAS: "1", config.PREVIOUS_ALIAS: "1", config.CHALLENGER_ALIAS: "2"}
    (repair,) = retraining.repair_aliases(registry)
    assert "nothing to roll back to" in repair
    assert aliases(registry) == {config.CHAMPION_ALIAS: "1", config.CHALLENGER_ALIAS: "2"}


def test_only_a_validated_version_counts_as_already_trained_on_the_rows(registry):
    registry.set_model_version_tag(NAME, "2", retraining.TRAINED_ON_TAG, "abc")
    assert retraining.version_trained_on(registry, "abc") is None  # trained, never validated
    registry.set_model_version_tag(NAME, "2", retraining.VALIDATION_DECISION_TAG, "keep")
    assert str(retraining.version_trained_on(registry, "abc").version) == "2"
    assert retraining.version_trained_on(registry, "other rows") is None


# --- A promotion killed at any moment, then the next start ----------------------------------


class ConstantPyfunc(mlflow.pyfunc.PythonModel):
    def __init__(self, probability: float):
        self.probability = probability

    def predict(self, context, model_input, params=None):
        return pd.DataFrame({config.PROBABILITY_COLUMN: np.full(len(model_input), self.probability)})


@pytest.fixture(scope="module")
def loop_template(tmp_path_factory, empty_mlflow_db):
    """A workspace with base_train/base_test, a champion (0.5) and a challenger (0.25), built once;
    ``template.db`` is its store as built, which :func:`loop_store` puts back for every test."""
    from kobe_mlops.io import write_parquet_atomic
    from kobe_mlops.tracking import INVOCATION_ENV, configure

    folder = tmp_path_factory.mktemp("loop")
    copy_empty_store(empty_mlflow_db, folder / "mlflow.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KOBE_WORKSPACE", str(folder))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # set_experiment exports it: put it back after
        patch.setenv(INVOCATION_ENV, "unit-test-invocation")
        paths = config.workspace_paths()
        for path, seed in [(paths.base_train, 1), (paths.base_test, 2)]:
            write_parquet_atomic(synthetic_shots(200, seed), path)
        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
        configure()
        client = mlflow.MlflowClient()
        for probability, alias in [(0.5, config.CHAMPION_ALIAS), (0.25, config.CHALLENGER_ALIAS)]:
            with mlflow.start_run():
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=ConstantPyfunc(probability),
                    registered_model_name=NAME,
                    pip_requirements=["mlflow"],
                )
            client.set_registered_model_alias(NAME, alias, str(info.registered_model_version))
        client.set_model_version_tag(NAME, "2", retraining.TRAINED_ON_TAG, retraining.rows_fingerprint(loop_rows()))
        mlflow.set_tracking_uri(None)
    shutil.copyfile(folder / "mlflow.db", folder / "template.db")
    return folder


def loop_rows() -> pd.DataFrame:
    """200 labelled production rows over 20 days whose make rate is 0.25."""
    rows = labelled_rows([f"2010-01-{day:02d}" for day in range(1, 21) for _ in range(10)])
    rows[config.TARGET] = (np.arange(len(rows)) % 4 == 0).astype(int)
    return rows


@pytest.fixture
def loop_store(loop_template, mlflow_workspace, monkeypatch):
    """:func:`loop_template` as built, the label store holding :func:`loop_rows`; the gate is told to promote."""
    shutil.copyfile(loop_template / "template.db", loop_template / "mlflow.db")
    monkeypatch.setenv("KOBE_WORKSPACE", str(loop_template))
    rows = loop_rows()
    monkeypatch.setattr(retraining, "read_labelled_production", lambda paths=None: rows)
    monkeypatch.setattr(
        retraining.gate,
        "decide",
        lambda outcome, probabilities: gate.GateDecision("challenger", {"holdout_rows": 1.0}, "Promote (test)."),
    )
    mlflow.set_tracking_uri(f"sqlite:///{loop_template / 'mlflow.db'}")
    return SimpleNamespace(
        db=loop_template / "mlflow.db",
        template=loop_template / "template.db",
        fingerprint=retraining.rows_fingerprint(rows),
        rows=rows,
    )


def test_a_validation_killed_at_any_write_is_finished_by_the_next_retrain(loop_store, monkeypatch):
    """Killed during ValidacaoChallenger, the challenger is never taken for "already trained on these
    rows"; the next start validates it or applies its recorded decision, ending promoted."""
    client = mlflow.MlflowClient()
    watched = watch_writes(client, monkeypatch)
    bases = retraining.write_retraining_bases(loop_store.rows)
    assert retraining.validate_and_decide(client, bases).action == "promoted"
    expected = {config.CHAMPION_ALIAS: "2", config.PREVIOUS_ALIAS: "1"}
    assert aliases(client) == expected and watched.writes >= 5
    for kill_at in range(watched.writes):
        shutil.copyfile(loop_store.template, loop_store.db)
        killed_client = mlflow.MlflowClient()
        killed = watch_writes(killed_client, monkeypatch, kill_at=kill_at)
        with pytest.raises(Killed):
            retraining.validate_and_decide(killed_client, bases)
        for snapshot in killed.aliases:
            assert_consistent(snapshot)
        restarted = mlflow.MlflowClient()
        if retraining.VALIDATION_DECISION_TAG not in restarted.get_model_version(NAME, "2").tags:
            assert retraining.version_trained_on(restarted, loop_store.fingerprint) is None
        said = []
        monkeypatch.setattr(retraining, "train_challenger", lambda bases: pytest.fail("trained again"))
        retraining.retrain(say=said.append)
        assert aliases(restarted) == expected, (kill_at, said)
        version = restarted.get_model_version(NAME, "2")
        assert version.tags[retraining.VALIDATION_DECISION_TAG] == "promote"
        assert str(retraining.version_trained_on(restarted, loop_store.fingerprint).version) == "2"
        assert retraining.recover(restarted, say=said.append) is None  # nothing half done any more


def test_an_unvalidated_challenger_of_other_rows_stops_being_the_challenger(loop_store):
    client = mlflow.MlflowClient()
    client.set_model_version_tag(NAME, "2", retraining.TRAINED_ON_TAG, "rows the store no longer holds")
    said = []
    assert retraining.recover(client, say=said.append) is None
    assert aliases(client) == {config.CHAMPION_ALIAS: "1"}
    assert "abandoned" in client.get_model_version(NAME, "2").tags and "no longer the challenger" in said[-1]


def test_manual_promotion_logs_a_run_and_sets_previous(loop_store):
    outcome = retraining.promote_with_run("2", say=pytest.fail)
    client = mlflow.MlflowClient()
    assert aliases(client) == {config.CHAMPION_ALIAS: "2", config.PREVIOUS_ALIAS: "1"}
    run = client.get_run(outcome.run_id)
    assert run.info.run_name == config.ALL_RUN_NAMES["promocao"] and run.data.tags["decision"] == "promote"
    assert run.data.tags["champion_version_before"] == "1" and "version 1 is now @previous" in outcome.message
    with pytest.raises(RetrainingError, match="already @champion"):
        retraining.promote_with_run("2")
    with pytest.raises(RetrainingError, match="no version 7"):
        retraining.promote_with_run("7")
    assert aliases(client) == {config.CHAMPION_ALIAS: "2", config.PREVIOUS_ALIAS: "1"}
    rolled = retraining.rollback_with_run()
    assert "version 1 again (was 2)" in rolled.message


# --- The loop on a real pipeline run ---------------------------------------------------------


def runs_named(client, name: str) -> list:
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME)
    return client.search_runs(
        [experiment.experiment_id], f"attributes.run_name = '{name}'", order_by=["attributes.start_time DESC"]
    )


@pytest.fixture(scope="module")
def retrained(pipeline_run, tmp_path_factory) -> PipelineRun:
    """A copy of the session workspace after ``run_all.py --retrain`` (full grids, as documented)."""
    copy = tmp_path_factory.mktemp("retrained") / "workspace"
    shutil.copytree(pipeline_run.workspace, copy)
    result = run_pipeline(copy, "--retrain")
    return PipelineRun(copy, f"sqlite:///{copy / 'mlflow.db'}", result.stdout)


def test_retrain_trains_a_challenger_on_older_rows_and_lets_the_gate_choose_as_documented(retrained):
    from kobe_mlops import docs_tables
    from kobe_mlops.modeling import challengers

    client = mlflow.MlflowClient(retrained.tracking_uri)
    check = runs_named(client, "VerificacaoRetreino")[0]
    assert check.data.tags["decision"] == "retrain"
    # The gate had never run: the store's labels are all new.
    labelled = check.data.metrics["labelled_production_rows"]
    assert check.data.metrics["trigger_new_labels"] == labelled and check.data.metrics["trigger_new_labels_fired"] == 1
    challenger_training = runs_named(client, "Treinamento")[0]
    assert challenger_training.data.tags["kobe.role"] == config.CHALLENGER_ALIAS
    params = challenger_training.data.params
    assert params["candidate"] in challengers.RECIPES and params["chosen_by"] == "time-ordered validation"
    older = pd.read_parquet(retrained.paths.retrain_train_extra)
    holdout = pd.read_parquet(retrained.paths.retrain_holdout)
    assert challenger_training.data.metrics["production_rows_learned"] == len(older)
    # The challenger never saw a holdout row: older rows only, every labelled row in one part.
    assert set(older["shot_id"]).isdisjoint(holdout["shot_id"])
    assert older["game_date"].max() < holdout["game_date"].min()
    predictions = pd.read_parquet(retrained.paths.predictions_prod)
    assert len(older) + len(holdout) == predictions[config.TARGET].notna().sum()

    validation = runs_named(client, "ValidacaoChallenger")[0]
    figures, winner = validation.data.metrics, validation.data.params["winner"]
    assert int(figures["holdout_rows"]) == len(holdout)
    candidates = ["champion", "challenger", "recalibrated", "null"]
    assert {f"holdout_log_loss_{name}" for name in candidates} <= set(figures)
    best = min(candidates, key=lambda name: figures[f"holdout_log_loss_{name}"])
    gain_beats_noise = figures["holdout_gain"] > gate.GAIN_STANDARD_ERRORS * figures["holdout_gain_se"]
    assert winner == (best if gain_beats_noise else "champion")
    # On the course data a candidate that learned older 3PT shots beats the development champion.
    assert validation.data.tags["decision"] == "promote" and winner != "champion"
    assert aliases(client) == {
        config.CHAMPION_ALIAS: validation.data.params["challenger_version"],
        config.PREVIOUS_ALIAS: "1",
    }
    # The gate's tables in the documents are what this run logged.
    text = (docs_tables.DOCS / "Model" / "Retraining.md").read_text()
    tables, _ = docs_tables.rendered(text, docs_tables.Workspace(retrained.workspace))
    assert set(tables) == {"gate_candidates", "gate_gain"}
    assert docs_tables.render(text, tables) == text, "Docs/Model/Retraining.md: refresh it (Docs/README.md)"


def test_the_dashboard_shows_the_promotion(retrained, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("MPLBACKEND", raising=False)  # importing streamlit sets it; kernels must not inherit it
    monkeypatch.setenv("KOBE_WORKSPACE", str(retrained.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    page = config.PROJECT_ROOT / "Code" / "kobe_mlops" / "dashboard" / "views" / "06_Retraining.py"
    app = AppTest.from_file(str(page), default_timeout=120).run()
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics, (
        [e.value for e in app.get("info")] + [e.value for e in app.get("error")] + [e.value for e in app.markdown]
    )
    assert metrics["@champion"] == "version 2" and metrics["@previous"] == "version 1"
    text = "\n".join(element.value for element in app.markdown)
    assert "**Latest decision** (ValidacaoChallenger" in text and "**promote**" in text
    decisions = app.dataframe[-1].value
    assert decisions["step"].tolist() == ["ValidacaoChallenger", "VerificacaoRetreino"]


def test_checks_skip_stale_or_known_data_then_rollback_restores_the_champion(retrained, tmp_path, monkeypatch):
    from kobe_mlops.monitoring.application_run import run_application_step

    workspace, paths = retrained.workspace, retrained.paths
    client = mlflow.MlflowClient(retrained.tracking_uri)
    # The alarms were measured on version 1; version 2 is in service now.
    stale = run_pipeline(workspace, "--retrain", "--fast")
    assert "No retraining" in stale.stdout and "apply it first" in stale.stdout
    # Applied again (the step's function, as notebook 04 calls it), the triggers still fire (3PT
    # inputs), but version 2 already learned these labels.
    monkeypatch.setenv("KOBE_WORKSPACE", str(workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(retrained.tracking_uri)
    run_application_step(str(paths.raw_file("prod")), paths=paths)
    assert "needs new labels" in retraining.retrain().message
    # The gate ran on this store's rows: new labels wait for twice as many.
    check = runs_named(client, "VerificacaoRetreino")[0].data.metrics
    assert check["trigger_new_labels_fired"] == 0 and check["trigger_new_labels"] == check["labelled_production_rows"]
    assert [run.data.tags["decision"] for run in runs_named(client, "VerificacaoRetreino")[:2]] == ["skip", "skip"]

    rolled_back = run_pipeline(workspace, "--rollback")
    assert "@champion is version 1 again (was 2)" in rolled_back.stdout
    assert aliases(client) == {config.CHAMPION_ALIAS: "1"}
    assert runs_named(client, "Rollback")[0].data.tags["decision"] == "rollback"
    again = run_pipeline(workspace, "--rollback", check=False)
    assert again.returncode == 1 and "Nothing to roll back" in again.stderr and "Traceback" not in again.stderr

    # A random sample of development shots scored as production: no shift, no degradation.
    development = (
        pd.read_parquet(retrained.paths.raw_file("dev")).dropna(subset=[config.TARGET]).sample(3000, random_state=0)
    )
    dev_as_prod = tmp_path / "dev_as_prod.parquet"
    development.to_parquet(dev_as_prod)
    run_application_step(str(dev_as_prod), paths=paths)
    assert "No retraining: no trigger fired" in retraining.retrain().message
    assert aliases(client) == {config.CHAMPION_ALIAS: "1"}


def test_a_challenger_no_better_than_the_champion_is_kept(workspace_copy, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(workspace_copy.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = mlflow.MlflowClient(workspace_copy.tracking_uri)
    mlflow.set_tracking_uri(workspace_copy.tracking_uri)
    # The champion itself as its own challenger: the same probabilities, never a reason to promote it.
    client.set_registered_model_alias(NAME, config.CHALLENGER_ALIAS, "1")
    bases = retraining.write_retraining_bases(retraining.read_labelled_production())
    outcome = retraining.validate_and_decide(client, bases)
    run = client.get_run(outcome.run_id)
    assert run.info.run_name == "ValidacaoChallenger"
    figures = run.data.metrics
    assert figures["holdout_log_loss_challenger"] == figures["holdout_log_loss_champion"]
    assert run.data.params["winner"] != "challenger"


@pytest.fixture(scope="module")
def reapplied(retrained, tmp_path_factory) -> PipelineRun:
    """A copy of the retrained workspace after ``run_all.py --steps 04``: the promoted version scores production."""
    copy = tmp_path_factory.mktemp("reapplied") / "workspace"
    shutil.copytree(retrained.workspace, copy)
    # Other tests move the aliases of `retrained` (a rollback): serve the promoted version again.
    client = mlflow.MlflowClient(f"sqlite:///{copy / 'mlflow.db'}")
    promoted = runs_named(client, "ValidacaoChallenger")[-1].data.params["challenger_version"]
    client.set_registered_model_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS, promoted)
    result = run_pipeline(copy, "--steps", "04")
    return PipelineRun(copy, f"sqlite:///{copy / 'mlflow.db'}", result.stdout)


def test_after_the_promotion_only_rows_the_model_never_learned_are_graded(reapplied):
    from kobe_mlops.monitoring import calculators
    from kobe_mlops.tracking import names, reads

    client = mlflow.MlflowClient(reapplied.tracking_uri)
    application = runs_named(client, "PipelineAplicacao")[0]
    metrics, tags = application.data.metrics, application.data.tags
    older = pd.read_parquet(reapplied.paths.retrain_train_extra)
    holdout = pd.read_parquet(reapplied.paths.retrain_holdout)
    assert metrics[names.ROWS_SEEN_IN_TRAINING] == len(older)
    assert metrics[names.ROWS_EVALUATED] == len(holdout)
    predictions = pd.read_parquet(reapplied.paths.predictions_prod)
    graded = predictions[predictions["shot_id"].isin(holdout["shot_id"])]
    expected = log_loss(graded[config.TARGET], graded[config.PROBABILITY_COLUMN], labels=[0, 1])
    assert metrics[names.LOG_LOSS] == pytest.approx(expected, abs=1e-9)
    # Its reference holds no row it learned and none it grades now: rows dated before the first
    # graded one; on the course file alone there are none, and the run says so instead of guessing.
    assert tags[names.REFERENCE_TAG]
    if tags[names.ESTIMATE_APPLICABILITY_TAG] == calculators.NOT_APPLICABLE:
        assert names.ESTIMATED_LOG_LOSS not in metrics and "dated before" in tags[names.MONITORING_PROBLEM_TAG]
    else:
        assert names.ESTIMATED_LOG_LOSS in metrics
    report = triggers.latest_trigger_report(client)
    assert report.model_version == str(reads.version_by_alias(client).version)

    fired = {trigger.name for trigger in report.fired}
    assert (triggers.LOG_LOSS_DEGRADATION in fired) == bool(
        metrics["log_loss_alert"] or metrics["log_loss_vs_null_alert"]
    )
