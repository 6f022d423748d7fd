"""The retraining loop behind ``run_all.py --retrain``: check, split by time, train, gate, promote.

Each stage logs a run. Every alias change is written to a registered-model tag before it is made,
so :func:`recover` finishes what a killed process left. ``Docs/Model/Retraining.md`` explains each stage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import cast_features
from kobe_mlops.io import write_parquet_atomic
from kobe_mlops.modeling import challengers
from kobe_mlops.modeling.shot_model import ShotMadeModel
from kobe_mlops.monitoring import gate, labels, triggers
from kobe_mlops.tracking import names, reads, start_run, tracking_uri

# Newest 30 % of the labelled production rows (about 1,600 of 5,412) are the time holdout: enough
# rows for a log loss standard error near 0.015, while 70 % still teaches the challenger.
HOLDOUT_FRACTION = 0.3
ROLE_TAG = "kobe.role"
# Model version tag: fingerprint of the labelled production rows a challenger was trained on; once
# its validation finished, the check does not retrain on the same rows.
TRAINED_ON_TAG = "retrained_on_production_rows"


class RetrainingError(RuntimeError):
    """The loop cannot go on (no champion, no labelled rows, nothing to roll back): one clear sentence."""


# --- Data: a time-ordered split of the labelled production rows ------------------------------


def time_ordered_split(labelled: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(older, newest)``: the newest ``HOLDOUT_FRACTION`` of rows, cut at a date so no game is split.

    Every shot of the boundary date goes to the holdout; rows are ordered by date then ``shot_id``.
    """
    ordered = labelled.assign(game_date=pd.to_datetime(labelled["game_date"]))
    ordered = ordered.sort_values(["game_date", "shot_id"], kind="stable").reset_index(drop=True)
    if len(ordered) < 2:
        raise RetrainingError(f"Too few labelled production rows ({len(ordered)}) to split by time.")
    boundary_date = ordered["game_date"].iloc[int(len(ordered) * (1 - HOLDOUT_FRACTION))]
    is_holdout = ordered["game_date"] >= boundary_date
    if is_holdout.all():
        raise RetrainingError(
            f"Every labelled production row is on or after {boundary_date:%Y-%m-%d}: no older rows to train on."
        )
    return ordered[~is_holdout].reset_index(drop=True), ordered[is_holdout].reset_index(drop=True)


@dataclass(frozen=True)
class RetrainingBases:
    """The time split as written under data/processed: ``older`` rows join base_train, ``holdout`` judges."""

    older: pd.DataFrame
    holdout: pd.DataFrame
    holdout_file: Path

    def dates(self) -> dict[str, str]:
        """Where the split falls, as the ValidacaoChallenger run logs it."""
        return {
            "train_extra_last_date": f"{self.older['game_date'].max():%Y-%m-%d}",
            "holdout_first_date": f"{self.holdout['game_date'].min():%Y-%m-%d}",
            "holdout_last_date": f"{self.holdout['game_date'].max():%Y-%m-%d}",
        }


def read_labelled_production(paths: config.WorkspacePaths | None = None) -> pd.DataFrame:
    """Every labelled production row in the label store: ids, date, features, 0/1 target (may be empty)."""
    stored = labels.read_labels(paths).rows[[*config.ID_COLUMNS, *config.FEATURES, config.TARGET]]
    return stored if stored.empty else cast_features(stored).astype({config.TARGET: "int64"})


def rows_fingerprint(labelled: pd.DataFrame) -> str:
    """SHA-256 of the labelled rows' values: the same rows give the same fingerprint, in any file."""
    ordered = labelled.sort_values(list(labelled.columns), kind="stable")
    return hashlib.sha256(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes()).hexdigest()


def write_retraining_bases(labelled: pd.DataFrame) -> RetrainingBases:
    """Split the labelled production rows by time and write both parts under data/processed."""
    paths = config.workspace_paths()
    older, holdout = time_ordered_split(labelled)
    write_parquet_atomic(older, paths.retrain_train_extra)
    write_parquet_atomic(holdout, paths.retrain_holdout)
    return RetrainingBases(older, holdout, paths.retrain_holdout)


# --- Aliases: promotion and rollback as recoverable transactions ------------------------------

# Registered-model tag holding the alias moves in progress (JSON), written before the first move
# and deleted after the last: a process killed in between leaves the plan for the next start.
PENDING_MOVES_TAG = "pending_alias_moves"
# Model version tags of a finished validation: its decision and the ValidacaoChallenger run.
VALIDATION_DECISION_TAG = "validation_decision"
VALIDATION_RUN_TAG = "validation_run_id"


def _run_plan(client: MlflowClient, plan: list[list[str]], resumed: bool = False) -> None:
    """Record ``plan`` (unless ``resumed`` from the record), run its steps, then drop the record; every
    step is idempotent, so a plan cut short may be run again from its start."""
    name = config.REGISTERED_MODEL_NAME
    if not resumed:
        client.set_registered_model_tag(name, PENDING_MOVES_TAG, json.dumps(plan))
    for kind, *rest in plan:
        if kind == "set":  # alias, version
            client.set_registered_model_alias(name, *rest)
        elif kind == "delete":  # only while the alias still points at the version the plan names
            if reads.registry_aliases(client).get(rest[0]) == rest[1]:
                client.delete_registered_model_alias(name, rest[0])
        else:  # "tag": version, key, value
            client.set_model_version_tag(name, *rest)
    client.delete_registered_model_tag(name, PENDING_MOVES_TAG)


def repair_aliases(client: MlflowClient) -> list[str]:
    """Finish alias moves a killed process left half done; drop a @previous equal to @champion.
    One sentence per repair (none when the registry was consistent)."""
    try:
        pending = client.get_registered_model(config.REGISTERED_MODEL_NAME).tags.get(PENDING_MOVES_TAG)
    except MlflowException:  # nothing registered yet
        return []
    repairs = []
    if pending:
        _run_plan(client, json.loads(pending), resumed=True)
        now = ", ".join(f"@{alias} = version {version}" for alias, version in reads.registry_aliases(client).items())
        repairs.append(f"Finished the alias moves an interrupted run left half done: {now or 'no alias'}.")
    aliases = reads.registry_aliases(client)
    previous = aliases.get(config.PREVIOUS_ALIAS)
    if previous is not None and previous == aliases.get(config.CHAMPION_ALIAS):
        client.delete_registered_model_alias(config.REGISTERED_MODEL_NAME, config.PREVIOUS_ALIAS)
        repairs.append(
            f"@{config.PREVIOUS_ALIAS} pointed at the champion (version {previous}), which leaves nothing to "
            f"roll back to: removed it."
        )
    return repairs


def promote(client: MlflowClient, reason: str, version: str | None = None) -> dict[str, str]:
    """``version`` (default: the challenger) -> champion; former champion -> previous (kept for :func:`rollback`)."""
    name = config.REGISTERED_MODEL_NAME
    champion = reads.version_by_alias(client, config.CHAMPION_ALIAS)
    if version is None:
        challenger = reads.version_by_alias(client, config.CHALLENGER_ALIAS)
        if challenger is None or champion is None:
            raise RetrainingError(
                f"Promotion needs both @{config.CHAMPION_ALIAS} and @{config.CHALLENGER_ALIAS} on {name}."
            )
        version = str(challenger.version)
    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise RetrainingError(f"{name} has no version {version} to promote.") from None
    if champion is None:
        raise RetrainingError(f"Promotion needs a @{config.CHAMPION_ALIAS} version of {name} to replace.")
    former = str(champion.version)
    if former == version:
        raise RetrainingError(f"Version {version} of {name} is already @{config.CHAMPION_ALIAS}.")
    plan = [  # champion first, then previous: no instant has champion == previous
        ["tag", version, "promotion_reason", reason],
        ["set", config.CHAMPION_ALIAS, version],
        ["set", config.PREVIOUS_ALIAS, former],
        ["delete", config.CHALLENGER_ALIAS, version],
        ["tag", former, "demoted", f"replaced by version {version} (promotion)"],
    ]
    _run_plan(client, plan)
    return {names.CHAMPION_BEFORE_TAG: former, names.CHAMPION_AFTER_TAG: version}


def rollback(client: MlflowClient, reason: str) -> dict[str, str]:
    """Previous -> champion; the demoted champion is tagged ``rolled_back`` and loses its aliases."""
    name = config.REGISTERED_MODEL_NAME
    previous = reads.version_by_alias(client, config.PREVIOUS_ALIAS)
    if previous is None:
        raise RetrainingError(
            f"Nothing to roll back: {name} has no @{config.PREVIOUS_ALIAS} version "
            "(no promotion happened since the last rollback)."
        )
    champion = reads.version_by_alias(client, config.CHAMPION_ALIAS)
    current, target = (str(champion.version) if champion else None), str(previous.version)
    if current == target:
        raise RetrainingError(
            f"Nothing to roll back: @{config.PREVIOUS_ALIAS} and @{config.CHAMPION_ALIAS} are both version "
            f"{current} of {name}."
        )
    # Previous is dropped before champion takes its version: no instant has champion == previous.
    plan = [["delete", config.PREVIOUS_ALIAS, target], ["set", config.CHAMPION_ALIAS, target]]
    if current is not None:
        plan += [
            ["delete", config.CHALLENGER_ALIAS, current],  # a demoted version is no one's challenger
            ["tag", current, "rolled_back", f"replaced by version {target}: {reason}"],
        ]
    _run_plan(client, plan)
    return {names.CHAMPION_BEFORE_TAG: current or "none", names.CHAMPION_AFTER_TAG: target}


def _promoted(version: str, former: str) -> str:
    return f"Promoted version {version} to @{config.CHAMPION_ALIAS} (version {former} is now @{config.PREVIOUS_ALIAS})."


# --- The loop, as run_all.py drives it --------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    action: str  # "skipped", "kept", "promoted", "rolled_back"
    message: str  # one line for the terminal
    run_id: str | None = None  # the MLflow run that records the decision


def _client() -> MlflowClient:
    mlflow.set_tracking_uri(tracking_uri())
    return reads.client()


def version_trained_on(client: MlflowClient, fingerprint: str):
    """The newest version trained on these labelled production rows and validated, or None (one
    whose validation was killed does not count: :func:`recover` validates it)."""
    matching = reads.versions_tagged(client, TRAINED_ON_TAG, fingerprint)
    return next((version for version in matching if version.tags.get(VALIDATION_DECISION_TAG)), None)


def retraining_decision(
    report: triggers.TriggerReport | None, champion_version: str, forced: bool, already_trained=None
) -> tuple[bool, str]:
    """``(retrain, reason)`` from the latest application run's triggers, unless ``forced``.

    Triggers speak only for the version that was applied (a promotion since waits for step 04), and
    ``already_trained`` (a version trained on these same labelled rows) means nothing new to learn.
    """
    retrain = forced
    if report is None:
        reason = "no application run (PipelineAplicacao) to read triggers from"
    elif report.model_version is not None and report.model_version != champion_version:
        reason = (
            f"the latest application run scored version {report.model_version}, but the champion is "
            f"version {champion_version}: apply it first (run_all.py --steps 04) so the triggers "
            "measure the model in service"
        )
    elif not report.any_fired:
        reason = "no trigger fired: " + " ".join(t.description for t in report.triggers)
    elif not report.calls_for_retraining:
        reason = (
            f"only {', '.join(t.name for t in report.fired)} fired, which says where to look, not that the "
            "model predicts worse: " + " ".join(t.description for t in report.fired)
        )
    elif already_trained is not None:
        reason = (
            f"triggers fired ({', '.join(t.name for t in report.calls_for_retraining)}), but version "
            f"{already_trained.version} was already trained on these labelled production rows: "
            "retraining needs new labels"
        )
    else:
        retrain, reason = True, "fired: " + " ".join(f"{t.name} ({t.description})" for t in report.calls_for_retraining)
    if forced:
        reason = f"forced retraining (--force-retrain); {reason}"
    return retrain, reason


def log_trigger_check(
    report: triggers.TriggerReport | None, champion_version: str, forced: bool, already_trained, labelled_rows: int
) -> tuple[bool, str, str]:
    """:func:`retraining_decision`, logged as ``VerificacaoRetreino``: ``(retrain, reason, run_id)``."""
    retrain, reason = retraining_decision(report, champion_version, forced, already_trained)
    with start_run("verificacao_retreino", **{ROLE_TAG: "check"}) as run:
        mlflow.log_params(
            {
                "forced": forced,
                names.CHAMPION_VERSION: champion_version,
                "application_run_id": report.application_run_id if report else "none",
                "application_model_version": (report.model_version if report else None) or "none",
                "already_trained_version": already_trained.version if already_trained else "none",
            }
        )
        mlflow.log_metric(names.LABELLED_PRODUCTION_ROWS, labelled_rows)
        if report is not None:
            mlflow.log_metrics({names.trigger_metric(t.name): t.value for t in report.triggers if t.value is not None})
            mlflow.log_metrics({names.trigger_fired_metric(t.name): float(t.fired) for t in report.triggers})
        mlflow.set_tags(
            {
                names.DECISION_TAG: "retrain" if retrain else "skip",
                names.REASON_TAG: reason[:5000],
                names.FIRED_TRIGGERS_TAG: ",".join(t.name for t in report.fired) if report else "",
            }
        )
    return retrain, reason, run.info.run_id


def validate_and_decide(client: MlflowClient, bases: RetrainingBases) -> Outcome:
    """Score every candidate on the holdout, let the gate decide, promote if it says so; one
    ``ValidacaoChallenger`` run. The decision is written before any alias moves (for :func:`recover`)."""
    name = config.REGISTERED_MODEL_NAME
    aliases = {"champion": config.CHAMPION_ALIAS, "challenger": config.CHALLENGER_ALIAS}
    versions = {role: reads.version_by_alias(client, alias) for role, alias in aliases.items()}
    missing = [role for role, version in versions.items() if version is None]
    if missing:
        raise RetrainingError(f"No @{' or @'.join(missing)} version of {name} to validate.")
    # Load by version number: the aliases move if the challenger is promoted.
    models = {role: mlflow.pyfunc.load_model(f"models:/{name}/{version.version}") for role, version in versions.items()}
    older, holdout = bases.older, bases.holdout
    learned = reads.learned_shot_ids(client, versions["champion"])
    holdout = holdout[~holdout["shot_id"].isin(learned)]  # paired and fair: rows no candidate learned
    window = older[~older["shot_id"].isin(learned)]
    champion_estimator = getattr(models["champion"].unwrap_python_model(), "pipeline", None)
    built = challengers.champion_alternatives(champion_estimator, window, older)
    features = holdout[config.FEATURES]
    probabilities = {
        role: model.predict(features)[config.PROBABILITY_COLUMN].to_numpy() for role, model in models.items()
    }
    probabilities.update({kind: ShotMadeModel(model).predict_probability(features) for kind, model in built.items()})
    outcome = gate.decide(holdout[config.TARGET], probabilities)
    reason, promoted = outcome.reason, outcome.promote
    if outcome.winner in built:  # a recalibrated champion or the null model: a version of its own first
        learned_rows = older.assign(**{challengers.PRODUCTION_COLUMN: True})
        new_version = challengers.register_candidate(
            outcome.winner, built[outcome.winner], learned_rows, holdout, config.CHALLENGER_ALIAS
        )
        client.set_model_version_tag(
            name, new_version, TRAINED_ON_TAG, versions["challenger"].tags.get(TRAINED_ON_TAG, "")
        )
        versions["challenger"] = client.get_model_version(name, new_version)
    decision = "promote" if promoted else "keep"
    champion, challenger = str(versions["champion"].version), str(versions["challenger"].version)
    with start_run("validacao_challenger", **{ROLE_TAG: "validation"}) as run:
        mlflow.log_params(
            {
                names.CHAMPION_VERSION: champion,
                "challenger_version": challenger,
                "winner": outcome.winner,
                "promotion_rule": gate.RULE,
                "holdout_fraction": HOLDOUT_FRACTION,
                "rows_train_extra": len(older),
                **bases.dates(),
            }
        )
        mlflow.log_metrics(outcome.figures)
        mlflow.log_artifact(str(bases.holdout_file), artifact_path="data")
        mlflow.set_tags({names.DECISION_TAG: decision, names.REASON_TAG: reason})
        client.set_model_version_tag(name, challenger, VALIDATION_RUN_TAG, run.info.run_id)
        client.set_model_version_tag(name, challenger, VALIDATION_DECISION_TAG, decision)
        if promoted:
            mlflow.set_tags(promote(client, reason))
    if promoted:
        return Outcome("promoted", f"{_promoted(challenger, champion)} {reason}", run.info.run_id)
    kept = f"Kept version {champion} as @{config.CHAMPION_ALIAS}; version {challenger} stays @{config.CHALLENGER_ALIAS}"
    return Outcome("kept", f"{kept}. {reason}", run.info.run_id)


def recover(client: MlflowClient, say: Callable[[str], None] = print) -> Outcome | None:
    """Finish or undo what a killed retraining left half done (None: nothing to do): alias moves are
    finished, a challenger that beat the champion still in service is promoted, one never validated is
    validated on the same label store, or stops being the challenger if the store changed (its holdout is gone)."""
    for line in repair_aliases(client):
        say(line)
    name = config.REGISTERED_MODEL_NAME
    challenger = reads.version_by_alias(client, config.CHALLENGER_ALIAS)
    champion = reads.version_by_alias(client, config.CHAMPION_ALIAS)
    if challenger is None or champion is None or challenger.version == champion.version:
        return None
    version, decision = str(challenger.version), challenger.tags.get(VALIDATION_DECISION_TAG)
    if decision == "promote":
        run_id = challenger.tags.get(VALIDATION_RUN_TAG, "")
        against = client.get_run(run_id).data.params.get(names.CHAMPION_VERSION) if run_id else None
        if against == str(champion.version):
            say(f"Version {version} was validated as better (run {run_id}) but never promoted: promoting it now.")
            return promote_with_run(version, f"promotion decided by ValidacaoChallenger run {run_id}, then interrupted")
        return None
    fingerprint = challenger.tags.get(TRAINED_ON_TAG)
    if decision is not None or fingerprint is None:  # validated and kept, or not from this loop
        return None
    labelled = read_labelled_production()
    if len(labelled) and rows_fingerprint(labelled) == fingerprint:
        say(f"Version {version} is @{config.CHALLENGER_ALIAS} but its validation never finished: validating it now.")
        return validate_and_decide(client, write_retraining_bases(labelled))
    client.delete_registered_model_alias(name, config.CHALLENGER_ALIAS)
    gone = "never validated; the label store changed since its training, so its holdout is gone"
    client.set_model_version_tag(name, version, "abandoned", gone)
    say(
        f"Version {version} was @{config.CHALLENGER_ALIAS} without a finished validation, and the label store "
        "changed since its training: it is no longer the challenger."
    )
    return None


def train_challenger(bases: RetrainingBases) -> str:
    """The recipe chosen by time-ordered validation, fitted on the development rows and older labels
    dated before the holdout, registered as ``@challenger``; its version."""
    development = challengers.development_rows(pd.read_parquet(config.workspace_paths().raw_file("dev")))
    older = bases.older.assign(**{challengers.PRODUCTION_COLUMN: True})
    before = bases.holdout["game_date"].min()
    rows = pd.concat([development[development["game_date"] < before], older], ignore_index=True)
    chosen, losses = challengers.choose_recipe(rows)
    estimator = challengers.RECIPES[chosen](rows, rows["game_date"].max())
    params = {
        "chosen_by": "time-ordered validation",
        **{f"validation_log_loss_{k}": f"{v:.6f}" for k, v in losses.items()},
    }
    return challengers.register_candidate(chosen, estimator, rows, bases.holdout, config.CHALLENGER_ALIAS, params)


def retrain(forced: bool = False, say: Callable[[str], None] = print) -> Outcome:
    """The whole loop: recover, check triggers, split, train the challenger, validate and decide."""
    client = _client()
    recovered = recover(client, say)
    if recovered is not None:
        return recovered
    champion = reads.version_by_alias(client, config.CHAMPION_ALIAS)
    if champion is None:
        raise RetrainingError(
            f"No @{config.CHAMPION_ALIAS} version of {config.REGISTERED_MODEL_NAME}: run the pipeline first."
        )
    labelled = read_labelled_production()  # the whole label store, every application run so far
    report = triggers.latest_trigger_report(client, labelled_rows=len(labelled))  # one shot per row
    fingerprint = rows_fingerprint(labelled) if len(labelled) else None
    already_trained = version_trained_on(client, fingerprint) if fingerprint else None
    should_retrain, reason, check_run = log_trigger_check(
        report, str(champion.version), forced, already_trained, len(labelled)
    )
    if not should_retrain:
        return Outcome("skipped", f"No retraining: {reason}", check_run)
    say(f"Retraining: {reason}")
    say(f"The label store holds {len(labelled)} labelled production rows.")
    bases = write_retraining_bases(labelled)
    dates = bases.dates()
    say(
        f"Time split of the labelled production rows: {len(bases.older)} older rows (to "
        f"{dates['train_extra_last_date']}) join base_train; {len(bases.holdout)} newest rows "
        f"({dates['holdout_first_date']} to {dates['holdout_last_date']}) are the holdout."
    )
    say("Training the challenger (recipes chosen by time-ordered validation on the older labels) ...")
    version = train_challenger(bases)
    client.set_model_version_tag(config.REGISTERED_MODEL_NAME, version, TRAINED_ON_TAG, fingerprint)
    return validate_and_decide(client, bases)


def _logged_move(step: str, role: str, decisions: tuple[str, str], move: Callable, reason: str, say, **arguments):
    """Repair, then run ``move(client, reason, **arguments)`` (an alias change) inside a logged ``step`` run:
    ``(champion before, champion after, run id)``. ``decisions``: the run's decision when done, and when refused."""
    client = _client()
    for line in repair_aliases(client):
        say(line)
    with start_run(step, **{ROLE_TAG: role}) as run:
        try:
            aliases = move(client, reason, **arguments)
        except RetrainingError as exc:
            mlflow.set_tags({names.DECISION_TAG: decisions[1], names.REASON_TAG: str(exc)})
            raise
        mlflow.set_tags({names.DECISION_TAG: decisions[0], names.REASON_TAG: reason, **aliases})
    return aliases[names.CHAMPION_BEFORE_TAG], aliases[names.CHAMPION_AFTER_TAG], run.info.run_id


def rollback_with_run() -> Outcome:
    """:func:`rollback`, recorded as a ``Rollback`` run (``run_all.py --rollback``)."""
    decisions, reason = ("rollback", "nothing to roll back"), "manual rollback (run_all.py --rollback)"
    before, after, run_id = _logged_move("rollback", "rollback", decisions, rollback, reason, print)
    return Outcome(
        "rolled_back", f"Rolled back: @{config.CHAMPION_ALIAS} is version {after} again (was {before}).", run_id
    )


def promote_with_run(
    version: str, reason: str = "manual promotion (run_all.py --promote)", say: Callable[[str], None] = print
) -> Outcome:
    """:func:`promote` of ``version``, recorded as a ``Promocao`` run: the one way to move @champion by hand."""
    decisions = ("promote", "nothing to promote")
    before, after, run_id = _logged_move("promocao", "promotion", decisions, promote, reason, say, version=str(version))
    return Outcome("promoted", _promoted(after, before), run_id)
