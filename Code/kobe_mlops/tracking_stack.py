"""A local shared-tracking stack: PostgreSQL as MLflow's store, ``mlflow server`` in front of it.

    .venv/bin/python -m kobe_mlops.tracking_stack start    # prints the MLFLOW_TRACKING_URI to export
    .venv/bin/python -m kobe_mlops.tracking_stack status
    .venv/bin/python -m kobe_mlops.tracking_stack stop     # add --purge to delete runs and artifacts

A team's set-up in miniature, on loopback ports, with its state under
``<workspace>/tracking-stack``. As root the cluster runs as ``postgres`` in fresh private
folders (mode 0700, links and foreign folders refused), since PostgreSQL refuses root.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from kobe_mlops import config
from kobe_mlops.io import atomic_path

HOST = "127.0.0.1"  # loopback only: a team server sits behind its own network and auth
DEFAULT_PORT = 5000  # MLflow's own default
DATABASE = "mlflow"
DB_USER = "kobe"
SERVICE_ACCOUNT = "postgres"  # who runs PostgreSQL when we are root
SERVER_WORKERS = 2  # the server's default of 4 buys nothing on a 2-core machine
START_TIMEOUT_S = 120  # first start creates MLflow's tables in PostgreSQL
STOP_TIMEOUT_S = 30
STATE_FILE = "state.json"
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian keeps initdb and pg_ctl off the PATH


class StackError(RuntimeError):
    """The stack cannot start or stop; the message says what to do."""


@dataclass
class StackState:
    state_dir: str
    cluster_dir: str
    postgres_port: int
    server_port: int
    server_pid: int
    password: str

    @property
    def tracking_uri(self) -> str:
        return f"http://{HOST}:{self.server_port}"

    @property
    def backend_store_uri(self) -> str:
        return f"postgresql+psycopg2://{DB_USER}:{self.password}@{HOST}:{self.postgres_port}/{DATABASE}"

    @property
    def artifacts_dir(self) -> Path:
        return Path(self.state_dir) / "artifacts"

    @property
    def server_log(self) -> Path:
        return Path(self.state_dir) / "mlflow-server.log"

    @property
    def postgres_log(self) -> Path:
        return Path(self.cluster_dir) / "postgres.log"


# --- PostgreSQL -----------------------------------------------------------------------------


def postgres_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: on the PATH, else Debian's newest version."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    folders = Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/"))
    installed = [f for f in folders if (f / "initdb").is_file() and (f / "pg_ctl").is_file()]
    if installed:
        return sorted(installed, key=lambda f: int(f.parent.name) if f.parent.name.isdigit() else 0)[-1]
    raise StackError(
        "PostgreSQL server programs (initdb, pg_ctl) not found on the PATH or in "
        f"{POSTGRES_BIN_GLOB}. Install them: Debian/Ubuntu 'apt-get install postgresql', "
        "macOS 'brew install postgresql'."
    )


def _service_account() -> pwd.struct_passwd | None:
    """None when we are not root (PostgreSQL runs as us), else the account it runs as."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        raise StackError(
            f"PostgreSQL refuses to run as root and there is no '{SERVICE_ACCOUNT}' user "
            "to run it as: run this as an ordinary user, or install Debian's "
            "'postgresql' package, which creates that user."
        ) from None


def check_private_dir(path: Path, account: pwd.struct_passwd | None) -> bool:
    """False if ``path`` is absent, True for a folder (no link) of ``account`` (or ours) only it writes, else raises."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    uid = os.geteuid() if account is None else account.pw_uid
    if stat.S_ISLNK(info.st_mode):
        raise StackError(
            f"{path} is a symbolic link (to {os.readlink(path)}): the tracking stack never follows one. "
            "Remove it (someone may have planted it) and start again."
        )
    if not stat.S_ISDIR(info.st_mode):
        raise StackError(f"{path} exists and is not a folder: remove it and start again.")
    if info.st_uid != uid or info.st_mode & 0o022:
        raise StackError(
            f"{path} already exists but was not made by the tracking stack: it belongs to uid {info.st_uid} "
            f"with mode {stat.S_IMODE(info.st_mode):04o}, not to uid {uid} with mode 0700. "
            "Remove it and start again."
        )
    os.chmod(path, 0o700)  # ours and written by no one else: make it private
    return True


def private_dir(path: Path) -> Path:
    """``path`` created as a private folder of ours, or the one the stack made before."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        check_private_dir(path, None)
    return path


def write_new_file(path: Path, text: str, account: pwd.struct_passwd | None = None) -> None:
    """Create ``path`` (mode 0600, refused if anything, a link included, is already there) and write ``text``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise StackError(
            f"{path} already exists (a file or a link planted there?): remove it and start again."
        ) from None
    with os.fdopen(fd, "w") as file:
        if account is not None:
            os.fchown(file.fileno(), account.pw_uid, account.pw_gid)
        file.write(text)


def _as_account(account: pwd.struct_passwd | None) -> dict:
    """subprocess arguments that run a command as ``account`` (nothing to change when None)."""
    if account is None:
        return {}
    return {
        "user": account.pw_uid,
        "group": account.pw_gid,
        "extra_groups": [],
        "cwd": tempfile.gettempdir(),
        "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": account.pw_dir},
    }


def _run(command: list[str], account: pwd.struct_passwd | None, what: str, timeout: int = 90) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **_as_account(account))
    except subprocess.TimeoutExpired:
        raise StackError(f"{what} did not finish within {timeout} s: {' '.join(command)}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-800:]
        raise StackError(f"{what} failed (exit {result.returncode}): {detail}")
    return result.stdout


def _init_cluster(cluster: Path, password: str, account: pwd.struct_passwd | None) -> None:
    """initdb in ``cluster``; the password file is written while the folder is still ours."""
    bin_dir = postgres_bin_dir()
    password_file = cluster / "initial-password"
    write_new_file(password_file, password + "\n", account)
    if account is not None:
        os.chown(cluster, account.pw_uid, account.pw_gid)
    try:
        command = [str(bin_dir / "initdb"), "--pgdata", str(cluster / "data"), "--username", DB_USER, "--pwfile"]
        command += [str(password_file), "--auth", "scram-sha-256", "--encoding", "UTF8", "--no-instructions"]
        _run(command, account, "initdb")
    finally:
        password_file.unlink(missing_ok=True)


def _pg_ctl(cluster: Path, account: pwd.struct_passwd | None, *args: str, what: str) -> str:
    return _run([str(postgres_bin_dir() / "pg_ctl"), "--pgdata", str(cluster / "data"), *args], account, what)


def _postgres_running(cluster: Path, account: pwd.struct_passwd | None) -> bool:
    if not (cluster / "data" / "postmaster.pid").exists():
        return False
    try:
        _pg_ctl(cluster, account, "status", what="pg_ctl status")
    except StackError:
        return False
    return True


def _start_postgres(state: StackState, account: pwd.struct_passwd | None) -> None:
    # Loopback TCP only; the unix socket goes in the cluster folder, not the shared /var/run.
    options = f"-c listen_addresses={HOST} -c port={state.postgres_port} -c unix_socket_directories={state.cluster_dir}"
    arguments = ["--log", str(state.postgres_log), "--options", options, "--wait", "--timeout", "60", "start"]
    _pg_ctl(Path(state.cluster_dir), account, *arguments, what="PostgreSQL start")


def _create_database(state: StackState) -> None:
    try:
        import psycopg2
    except ModuleNotFoundError:
        raise StackError(
            "The tracking stack needs the 'scale' extra (psycopg2): .venv/bin/pip install -e '.[scale]'"
        ) from None
    login = {"host": HOST, "port": state.postgres_port, "user": DB_USER, "password": state.password}
    connection = psycopg2.connect(**login, dbname="postgres", connect_timeout=10)
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        connection.close()


# --- The tracking server --------------------------------------------------------------------


def free_port(host: str = HOST) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something listens on ``port`` (a closed port's TIME_WAIT leftovers do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
        return False


def _start_server(state: StackState) -> subprocess.Popen:
    private_dir(state.artifacts_dir)
    command = [sys.executable, "-m", "mlflow", "server", "--host", HOST, "--port", str(state.server_port)]
    command += ["--workers", str(SERVER_WORKERS), "--serve-artifacts"]
    command += ["--artifacts-destination", str(state.artifacts_dir)]
    # The store URI holds the password: pass it in the environment, not on the command line.
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": state.backend_store_uri}
    env.pop("MLFLOW_TRACKING_URI", None)
    fd = os.open(state.server_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "ab") as log:
        # A session of its own, so stop() can end the server and its workers as one group.
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=state.state_dir, start_new_session=True
        )


def server_healthy(state: StackState) -> bool:
    try:
        with urllib.request.urlopen(f"{state.tracking_uri}/health", timeout=2) as response:
            return response.status == 200
    except OSError:  # URLError included: nothing listens yet
        return False


def _wait_for_server(state: StackState, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"mlflow server exited with code {process.returncode}:\n{_tail(state.server_log)}")
        if server_healthy(state):
            return
        time.sleep(0.5)
    raise StackError(
        f"mlflow server did not answer {state.tracking_uri}/health within {timeout:.0f} s:\n{_tail(state.server_log)}"
    )


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _server_alive(state: StackState) -> bool:
    """True when ``server_pid`` is still our server (a pid can be reused by another program)."""
    import psutil

    try:
        command = " ".join(psutil.Process(state.server_pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return "mlflow" in command and "server" in command and str(state.server_port) in command


def _stop_server(state: StackState, timeout: float) -> bool:
    """SIGTERM to the server's process group (the server and its workers), SIGKILL after ``timeout``; was it running?"""
    import psutil

    if not _server_alive(state):
        return False
    server = psutil.Process(state.server_pid)
    members = [server, *server.children(recursive=True)]
    os.killpg(state.server_pid, signal.SIGTERM)
    # wait_procs also reaps the server when this process started it, so no zombie is left.
    _, still_running = psutil.wait_procs(members, timeout=timeout)
    for process in still_running:
        process.kill()
    psutil.wait_procs(still_running, timeout=5)
    return True


# --- Start, status, stop --------------------------------------------------------------------


def load_state(paths: config.WorkspacePaths) -> StackState | None:
    path = paths.tracking_stack_dir / STATE_FILE
    return StackState(**json.loads(path.read_text())) if path.exists() else None


def _save_state(state: StackState, paths: config.WorkspacePaths) -> None:
    with atomic_path(paths.tracking_stack_dir / STATE_FILE, private=True) as tmp:  # it holds the password
        tmp.write_text(json.dumps(asdict(state), indent=2))


def status(paths: config.WorkspacePaths) -> StackState | None:
    """The running stack's state, or None when it is not (fully) running."""
    state = load_state(paths)
    return state if state and _server_alive(state) and server_healthy(state) else None


def start(paths: config.WorkspacePaths, port: int = DEFAULT_PORT, timeout: float = START_TIMEOUT_S) -> StackState:
    """Start PostgreSQL and the tracking server (or return the running stack). ``port=0``: any free port."""
    if (running := status(paths)) is not None:
        return running
    if port and port_in_use(port):
        raise StackError(f"port {port} on {HOST} is in use; pass --port N (0 picks a free port).")
    account = _service_account()
    paths.tracking_stack_dir.parent.mkdir(parents=True, exist_ok=True)
    private_dir(paths.tracking_stack_dir)
    previous = load_state(paths)
    if previous is not None:
        stop(paths)  # whatever half of it still runs: start again from a clean slate
    cluster = Path(previous.cluster_dir) if previous else None
    if cluster is None or not check_private_dir(cluster, account):  # absent: its temp folder was cleaned (a reboot)
        # As root a random mkdtemp folder: the service account may not enter the workspace, and no one
        # can guess the name and create it first; it is handed over once ready.
        cluster = (
            private_dir(paths.tracking_stack_dir / "postgres")
            if account is None
            else Path(tempfile.mkdtemp(prefix="kobe-mlops-pg-"))
        )
    state = StackState(
        state_dir=str(paths.tracking_stack_dir),
        cluster_dir=str(cluster),
        postgres_port=free_port(),
        server_port=port or free_port(),
        server_pid=0,
        password=previous.password if previous else secrets.token_urlsafe(24),
    )
    if not (cluster / "data" / "PG_VERSION").exists():
        _init_cluster(cluster, state.password, account)
    _save_state(state, paths)  # before anything runs, so stop() can always clean up
    try:
        _start_postgres(state, account)
        _create_database(state)
        process = _start_server(state)
        state.server_pid = process.pid
        _save_state(state, paths)
        _wait_for_server(state, process, timeout)
    except BaseException:
        stop(paths)
        raise
    return state


def stop(paths: config.WorkspacePaths, purge: bool = False, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the server, then PostgreSQL (``purge``: delete runs, registry and artifacts too); was anything running?"""
    state = load_state(paths)
    if state is None:
        return False
    was_running = _stop_server(state, timeout)
    account = _service_account()
    cluster = Path(state.cluster_dir)
    # Checked first: never pg_ctl or delete through a planted link.
    if check_private_dir(cluster, account) and _postgres_running(cluster, account):
        was_running = True
        _pg_ctl(
            cluster, account, "--mode", "fast", "--wait", "--timeout", str(int(timeout)), "stop", what="PostgreSQL stop"
        )
    if purge:
        shutil.rmtree(cluster, ignore_errors=True)
        shutil.rmtree(paths.tracking_stack_dir, ignore_errors=True)
    return was_running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kobe_mlops.tracking_stack", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workspace", help="whose tracking-stack/ folder to use (default: $KOBE_WORKSPACE or the project root)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start", help="start PostgreSQL and the tracking server")
    start_parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"tracking server port on {HOST} (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    commands.add_parser("status", help="say whether the stack runs, and its MLFLOW_TRACKING_URI")
    stop_parser = commands.add_parser("stop", help="stop the tracking server and PostgreSQL")
    stop_parser.add_argument("--purge", action="store_true", help="also delete the runs, registry and artifacts")
    args = parser.parse_args(argv)
    paths = config.workspace_paths(args.workspace)
    try:
        if args.command == "start":
            state = start(paths, port=args.port)
            print(
                f"Tracking server {state.tracking_uri} (PostgreSQL on {HOST}:{state.postgres_port}, "
                f"artifacts in {state.artifacts_dir}). Point the pipeline at it with:"
            )
            print(f"export MLFLOW_TRACKING_URI={state.tracking_uri}")
        elif args.command == "status":
            state = status(paths)
            if state is None:
                print(f"not running (state in {paths.tracking_stack_dir})")
                return 3  # like 'systemctl status' for a stopped service
            print(f"running: server log {state.server_log}, PostgreSQL log {state.postgres_log}")
            print(f"export MLFLOW_TRACKING_URI={state.tracking_uri}")
        else:
            stopped = stop(paths, purge=args.purge)
            print(("stopped" if stopped else "was not running") + (" and purged" if args.purge else ""))
    except StackError as exc:
        print(f"tracking_stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
