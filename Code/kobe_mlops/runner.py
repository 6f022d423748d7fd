"""Run the pipeline notebooks in order with papermill (the logic behind ``run_all.py``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kobe_mlops import config
from kobe_mlops.io import atomic_path
from kobe_mlops.tracking import invocation_id, tracking_uri


@dataclass(frozen=True)
class Step:
    notebook: str  # file stem, e.g. "02_preparacao"
    name: str  # short name, e.g. "preparacao"

    @property
    def number(self) -> str:
        return self.notebook.split("_", 1)[0]

    def output(self, paths: config.WorkspacePaths) -> Path:
        return paths.executed_notebooks_dir / f"{self.notebook}.ipynb"


STEPS = [Step(notebook, name) for notebook, name in config.PIPELINE_STEPS]


class StepSelectionError(ValueError):
    pass


def select_steps(spec: str | None) -> list[Step]:
    """``None``/``all`` -> every step; otherwise a comma list of numbers or names (``04,aplicacao``)."""
    if not spec or spec.strip().lower() == "all":
        return list(STEPS)
    wanted = []
    for token in (part.strip().lower() for part in spec.split(",") if part.strip()):
        matches = [s for s in STEPS if token in {s.number, s.name, s.notebook, s.number.lstrip("0")}]
        if not matches:
            known = ", ".join(f"{s.number}/{s.name}" for s in STEPS)
            raise StepSelectionError(f"Unknown step {token!r}; choose from {known}.")
        wanted.extend(matches)
    return [s for s in STEPS if s in wanted]  # always in pipeline order


def step_parameters(step: Step, args: argparse.Namespace) -> dict:
    """Only the parameters each notebook declares in its ``parameters`` cell."""
    if step.name == "aquisicao":
        return {"data_source": args.data_source or ""}
    if step.name == "preparacao":
        return {"seed": args.seed}
    if step.name == "treinamento":
        return {"seed": args.seed, "fast": args.fast}
    parameters = {
        "prod_data": args.prod_data or "",
        "engine": args.engine,
        "spark_master": args.spark_master,
        "scoring_url": args.scoring_url or "",
    }
    if args.spark_conf:  # only when given: the notebook's default is no extra setting
        parameters["spark_conf"] = dict(args.spark_conf)
    return parameters


def spark_setting(pair: str) -> tuple[str, str]:
    """One ``--spark-conf KEY=VALUE``; step 04 gets them all as its ``spark_conf`` dict."""
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{pair!r} is not KEY=VALUE (e.g. spark.driver.memory=1g)")
    return key.strip(), value.strip()


def _absolute(value: str | None) -> str | None:
    """Paths given on the command line are relative to where the user stands, not the notebook."""
    if not value or "://" in value:
        return value
    return str(Path(value).expanduser().resolve())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_all.py",
        description="Run the kobe-mlops pipeline: acquisition, preparation, training, application.",
    )
    parser.add_argument(
        "--steps", help="comma list of steps by number or name, e.g. '04' or 'preparacao,treinamento' (default: all)"
    )
    parser.add_argument(
        "--data-source",
        help="folder or base URL holding the course parquet files "
        f"(default: ${config.DATA_SOURCE_ENV} or the canonical URL)",
    )
    parser.add_argument(
        "--prod-data", help="score this production parquet file with the champion instead of the course production base"
    )
    parser.add_argument(
        "--engine",
        choices=config.SCORING_ENGINES,
        default=config.DEFAULT_ENGINE,
        help="batch scoring engine of the application step: pandas (one process) or spark "
        "(partitions scored by Spark's executors; pip install -e '.[scale]')",
    )
    parser.add_argument(
        "--spark-master",
        default=config.DEFAULT_SPARK_MASTER,
        help=f"Spark master URL for --engine spark (default {config.DEFAULT_SPARK_MASTER}: every core of this machine)",
    )
    parser.add_argument(
        "--spark-conf",
        action="append",
        type=spark_setting,
        metavar="KEY=VALUE",
        help="a Spark setting for --engine spark, repeatable (e.g. --spark-conf spark.driver.memory=1g)",
    )
    parser.add_argument(
        "--scoring-url",
        help="score the application step through this served model "
        "(e.g. http://127.0.0.1:5001 from `mlflow models serve`) instead of loading the champion",
    )
    parser.add_argument("--fast", action="store_true", help="small search grids and 3-fold CV, for smoke tests")
    parser.add_argument("--seed", type=int, default=config.SEED, help=f"random seed (default {config.SEED})")
    parser.add_argument(
        "--workspace", help="where data/, mlflow.db and reports/ go (default: $KOBE_WORKSPACE or the project root)"
    )
    # Retraining loop (Docs/Model/Retraining.md). Without --steps no pipeline step runs first.
    loop = parser.add_mutually_exclusive_group()
    loop.add_argument(
        "--retrain",
        action="store_true",
        help="read the latest application run's triggers; if one measured with labels fired "
        "(feature drift alone only says where to look), train a challenger and promote it only if it "
        "beats the champion",
    )
    loop.add_argument("--force-retrain", action="store_true", help="like --retrain, even when no trigger fired")
    loop.add_argument(
        "--rollback",
        action="store_true",
        help="give the champion alias back to the version a promotion demoted (alias 'previous')",
    )
    loop.add_argument(
        "--promote",
        metavar="VERSION",
        help="give the champion alias to this registered version by hand (logged as a Promocao run; "
        "the former champion becomes 'previous', for --rollback)",
    )
    # Replay of production batch by batch (notebooks/05_operacao.ipynb, Docs/Model/Retraining.md).
    loop.add_argument(
        "--replay",
        action="store_true",
        help="after a pipeline run: replay production season by season under the never, reactive, scheduled and "
        "continuous retraining strategies (experiment kobe-shot-replay; the registered model is never touched)",
    )
    parser.add_argument(
        "--replay-batch",
        type=positive_int,
        metavar="N",
        help="with --replay: batches of N rows in date order instead of one batch per season",
    )
    parser.add_argument(
        "--replay-every",
        type=positive_int,
        metavar="K",
        help="with --replay: the scheduled strategy trains a challenger after every K batches "
        f"(default {config.REPLAY_SCHEDULE_EVERY})",
    )
    return parser


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def run_retraining_action(args: argparse.Namespace) -> int:
    """--retrain, --force-retrain, --rollback or --promote: one line per stage, one line on failure."""
    from kobe_mlops.monitoring import retraining

    try:
        if args.rollback:
            outcome = retraining.rollback_with_run()
        elif args.promote:
            outcome = retraining.promote_with_run(args.promote)
        else:
            print("Checking the retraining triggers ...", flush=True)
            outcome = retraining.retrain(forced=args.force_retrain)
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    except Exception as exc:  # one short message, no wall of traceback
        action = "Promotion" if args.promote else "Rollback" if args.rollback else "Retraining"
        print(f"\n{action} failed: {failure_message(exc)}", file=sys.stderr)
        return 1
    print(outcome.message)
    print(f"Decision recorded in MLflow run {outcome.run_id}.")
    return 0


REPLAY_STEP = Step(*config.REPLAY_STEP)
PROGRESS_POLL_SECONDS = 0.5


def replay_parameters(args: argparse.Namespace, progress_log: Path) -> dict:
    """Notebook 05's parameters; the notebook's own defaults stand for what was not given."""
    parameters = {
        "batch_rows": args.replay_batch or 0,
        "prod_data": args.prod_data or "",
        "progress_log": str(progress_log),
    }
    if args.replay_every:
        parameters["schedule_every"] = args.replay_every
    return parameters


@contextmanager
def printing_new_lines(path: Path):
    """Print each line appended to ``path`` while the body runs (the replay kernel's progress)."""
    import threading

    stop = threading.Event()

    def follow() -> None:
        with path.open() as source:
            pending = ""
            while True:
                stopping = stop.is_set()  # read everything written before the stop, then leave
                pending += source.read()
                *lines, pending = pending.split("\n")
                for line in lines:
                    print(f"    {line}", flush=True)
                if stopping:
                    return
                stop.wait(PROGRESS_POLL_SECONDS)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        yield
    finally:
        stop.set()
        follower.join()


def run_replay_action(args: argparse.Namespace, paths: config.WorkspacePaths) -> int:
    """--replay: notebook 05 after a pipeline run, its progress printed as it goes, one line on failure."""
    from kobe_mlops.monitoring.replay import missing_inputs

    if missing := missing_inputs(paths):
        print(
            f"Replay needs a pipeline run first: missing {', '.join(missing)} in {paths.root}. "
            "Run `python run_all.py` (add --data-source DIR without internet access), then --replay.",
            file=sys.stderr,
        )
        return 1
    print(f"[replay] {REPLAY_STEP.notebook} (one line per batch and strategy) ...", flush=True)
    parameters = replay_parameters(args, paths.replay_progress_log)
    with printing_new_lines(paths.replay_progress_log):
        code, seconds = run_reported(REPLAY_STEP, paths, parameters, "[replay]", "Replay")
    if code == 0:
        print(f"[replay] ok ({seconds:.1f} s). Executed notebook: {REPLAY_STEP.output(paths)}")
    return code


def run_reported(step: Step, paths: config.WorkspacePaths, parameters: dict, prefix: str, what: str):
    """``(exit code, seconds)`` of one notebook run; a failure prints one short message, no traceback."""
    started = time.perf_counter()
    try:
        run_notebook(step, paths, parameters)
    except KeyboardInterrupt:
        print(f"{prefix} interrupted")
        return 130, time.perf_counter() - started
    except Exception as exc:
        print(f"{prefix} FAILED after {time.perf_counter() - started:.1f} s")
        print(f"\n{what} failed: {failure_message(exc)}", file=sys.stderr)
        print(f"Executed notebook (with the full traceback): {step.output(paths)}", file=sys.stderr)
        return 1, time.perf_counter() - started
    return 0, time.perf_counter() - started


def run_notebook(step: Step, paths: config.WorkspacePaths, parameters: dict) -> None:
    """Execute one notebook into ``reports/notebooks``, this process's and the kernel's stderr into a .log beside it."""
    import papermill

    output = step.output(paths)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(output.with_suffix(".log"), "w") as log:
        os.dup2(log.fileno(), 2)
        try:
            papermill.execute_notebook(
                str(config.NOTEBOOKS_DIR / f"{step.notebook}.ipynb"),
                str(output),
                parameters=parameters,
                kernel_name="python3",  # papermill resolves it to the interpreter running this script
                cwd=str(config.NOTEBOOKS_DIR),
                progress_bar=False,
                log_output=False,
            )
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


MAX_MESSAGE_CHARS = 600


def failure_message(exc: BaseException) -> str:
    """``ErrorType: message`` for the error raised inside the notebook, kept short."""
    ename = getattr(exc, "ename", None)  # set by PapermillExecutionError
    name, text = (ename, str(getattr(exc, "evalue", ""))) if ename else (type(exc).__name__, str(exc))
    text = " ".join(text.split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + " [...]"
    return f"{name}: {text}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.replay and (args.replay_batch or args.replay_every):
        parser.error("--replay-batch and --replay-every go with --replay")
    retraining_action = args.retrain or args.force_retrain or args.rollback or args.promote
    try:
        # A retraining action or a replay alone runs no step; with --steps, those steps run first.
        steps = select_steps(args.steps) if args.steps or not (retraining_action or args.replay) else []
    except StepSelectionError as exc:
        print(f"run_all.py: {exc}", file=sys.stderr)
        return 2
    if args.workspace:
        os.environ["KOBE_WORKSPACE"] = str(Path(args.workspace).expanduser().resolve())
    # Kernels pick their own inline backend; an inherited MPLBACKEND (set on headless servers,
    # and by Streamlit) breaks ipykernel 7 with matplotlib 3.7 ("cannot import backend2gui").
    os.environ.pop("MPLBACKEND", None)
    args.data_source = _absolute(args.data_source)
    args.prod_data = _absolute(args.prod_data)
    if args.data_source:
        os.environ[config.DATA_SOURCE_ENV] = args.data_source
    invocation = invocation_id()

    paths = config.workspace_paths()
    paths.executed_notebooks_dir.mkdir(parents=True, exist_ok=True)
    config.route_pycaret_log(paths)  # for every kernel: PyCaret's log goes to reports/, not notebooks/
    print(f"kobe-mlops pipeline {invocation}: workspace {paths.root}, tracking {tracking_uri()}")
    from kobe_mlops.tracking.recovery import fail_orphaned_runs  # runs a killed process left RUNNING

    for line in fail_orphaned_runs():
        print(line)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    for position, step in enumerate(steps, start=1):
        print(f"[{position}/{len(steps)}] {step.notebook} ...", end="", flush=True)
        parameters = step_parameters(step, args)
        code, timings[step.notebook] = run_reported(step, paths, parameters, "", f"Step {step.notebook}")
        if code:
            return code
        print(f" ok ({timings[step.notebook]:.1f} s)")
    if retraining_action:
        return run_retraining_action(args)
    if args.replay:
        return run_replay_action(args, paths)
    total = time.perf_counter() - started
    print(f"Done in {total:.1f} s. MLflow runs of this invocation: tags.\"{config.INVOCATION_TAG}\" = '{invocation}'")
    with atomic_path(paths.root / "reports" / "last_run.json") as tmp:
        tmp.write_text(json.dumps({"invocation_id": invocation, "steps": timings, "total_seconds": total}, indent=2))
    return 0
