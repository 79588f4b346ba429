"""Start the action server and the Rasa server together, and stop them together.

    python -m assistant.ops.launcher            # what `make run` does
    python -m assistant.ops.launcher --shell    # talk to the bot in the terminal

Ports, storage and the number of Rasa worker processes come from the
environment, with the embedded defaults:

    RASA_PORT=5005  ACTIONS_PORT=5055  TRACKER_DB=var/tracker.db  SANIC_WORKERS=2
    RASA_INTERFACE=127.0.0.1  ACTIONS_HOST=127.0.0.1  STOP_GRACE_SECONDS=10

The Rasa server forks SANIC_WORKERS processes that share its port (one Python
process uses one CPU core); they share conversation locks through an SQLite
file next to the tracker store (``locks.db``, assistant/rasa_server/lock_store.py).

Both servers listen on loopback unless told otherwise: the Rasa server is meant
to sit behind the clinic's reverse proxy (README, Deployment), and the action
server only ever talks to the Rasa server, with a shared secret
(assistant/shared/action_secret.py).

Each server runs in a process group of its own. Stopping sends SIGTERM to each
group and, after STOP_GRACE_SECONDS, SIGKILL to whatever is left in it, so no
worker is left behind holding the port (a worker stuck in a busy loop ignores
SIGTERM). A server that dies is restarted with back-off (assistant/shared/backoff.py)
while the others go on: FAQ answers need no action server. So is one that
stops answering: every HEALTH_CHECK_SECONDS (default 5) the launcher asks each
server for its health page, and after 3 unanswered checks in a row (a server
that answered before, so not one still loading its model) it kills the
server's group and starts it again. Two workers stuck at 100% CPU used to
leave the bot silent with the launcher none the wiser (issue 16).

The same ``Stack`` class is used by the end-to-end tests, so what they test is
exactly what ``make run`` starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Callable, Dict, List, Optional

from assistant.paths import MODEL, PROJECT_ROOT, TRACKER_DB, tracker_db
from assistant.shared.backoff import next_failures, restart_delay
from assistant.shared.private_files import PRIVATE_UMASK, make_private_dir, secure_directory

# Sanic lets in-flight requests finish for SANIC_GRACEFUL_SHUTDOWN_TIMEOUT (we
# set 5 s; a turn takes well under a second); then the group gets SIGKILL.
STOP_GRACE_SECONDS = 10
SANIC_DRAIN_SECONDS = 5
LOOPBACK = "127.0.0.1"
HEALTH_CHECK_SECONDS = 5
HEALTH_CHECK_MISSES = 3  # unanswered checks in a row before a restart
PUBLIC_MAX_BODY_BYTES = 64 * 1024
# Two workers use both cores of a small server; the second adds about 330 MB of
# memory (the code and the libraries are shared; see README, Performance).
DEFAULT_WORKERS = 2


@dataclass
class Settings:
    rasa_port: int = 5005
    actions_port: int = 5055
    tracker_db: Path = TRACKER_DB
    model: Path = MODEL
    extra_env: Dict[str, str] = field(default_factory=dict)
    endpoints: Path = PROJECT_ROOT / "endpoints.yml"
    stock_rasa: bool = False  # plain `rasa`, without our speed-ups (the benchmark baseline)
    workers: int = DEFAULT_WORKERS  # Rasa's own SANIC_WORKERS; stock Rasa keeps 1 with its in-memory locks
    interface: str = LOOPBACK  # where the Rasa server listens (RASA_INTERFACE); its reverse proxy reaches it
    actions_host: str = LOOPBACK  # where the action server listens (ACTIONS_HOST)
    stop_grace: float = STOP_GRACE_SECONDS
    health_interval: float = HEALTH_CHECK_SECONDS
    action_secret: Optional[Path] = None  # default: next to the tracker store

    @property
    def lock_db(self) -> Path:
        return self.tracker_db.with_name("locks.db")

    @property
    def action_secret_file(self) -> Path:
        from assistant.shared.action_secret import SECRET_FILE_NAME

        return self.action_secret or self.tracker_db.with_name(SECRET_FILE_NAME)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            rasa_port=_whole_number("RASA_PORT", 5005),
            actions_port=_whole_number("ACTIONS_PORT", 5055),
            tracker_db=tracker_db(),
            workers=_whole_number("SANIC_WORKERS", DEFAULT_WORKERS),
            interface=os.environ.get("RASA_INTERFACE") or LOOPBACK,
            actions_host=os.environ.get("ACTIONS_HOST") or LOOPBACK,
            stop_grace=_whole_number("STOP_GRACE_SECONDS", STOP_GRACE_SECONDS),
            health_interval=_whole_number("HEALTH_CHECK_SECONDS", HEALTH_CHECK_SECONDS),
        )

    def environment(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(
            RASA_PORT=str(self.rasa_port),
            ACTIONS_PORT=str(self.actions_port),
            ACTIONS_HOST=self.actions_host,
            TRACKER_DB=str(self.tracker_db),
            LOCK_DB=str(self.lock_db),
            SANIC_WORKERS=str(self.workers),
            RASA_TELEMETRY_ENABLED="false",
            SQLALCHEMY_SILENCE_UBER_WARNING="1",
            TF_CPP_MIN_LOG_LEVEL="2",
            # Rasa 3.6's dependencies print pages of DeprecationWarnings at start-up.
            PYTHONWARNINGS="ignore::DeprecationWarning",
            # errors Sanic raises itself (e.g. 413) are JSON, like ours
            SANIC_FALLBACK_ERROR_FORMAT="json",
            SANIC_GRACEFUL_SHUTDOWN_TIMEOUT=str(SANIC_DRAIN_SECONDS),
        )
        env.update(self.extra_env)
        return env


def _whole_number(name: str, default: int) -> int:
    value = os.environ.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        print(f"Cannot start: {name} must be a whole number of at least 1, not {value!r}", file=sys.stderr)
        raise SystemExit(2)  # the exit code of a bad clinic.yml too
    return int(value)


def free_port() -> int:
    """A loopback port nobody listens on right now (tests and the benchmark)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree(pid: int) -> List[int]:
    """A living process and its living descendants (Linux /proc): a Rasa server
    and its workers. A dead worker its parent has not reaped yet (a zombie) is
    left out."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            if Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                continue
            tree.append(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return tree


def connect_host(address: str) -> str:
    """Where to reach a server that listens on `address` from this machine."""
    if address in ("", "0.0.0.0", "::"):
        return LOOPBACK
    return f"[{address}]" if ":" in address else address


def answers(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _wait_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Poll `url` until it answers; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to a process group; False when no process is left in it."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # only a zombie (or a reused id we don't own) is left
        return False


def group_alive(pgid: int) -> bool:
    return signal_group(pgid, 0)


def stop_groups(processes: List[subprocess.Popen], grace: float) -> None:
    """SIGTERM to each process's group (each was started as a group leader),
    then, once all are gone or after `grace` seconds, SIGKILL to what is left:
    a worker whose parent exited (an orphan) is still in its group."""
    for process in processes:
        signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for process in processes:
            process.poll()  # reap the leaders
        if not any(process.poll() is None or group_alive(process.pid) for process in processes):
            break
        time.sleep(0.1)
    for process in processes:
        signal_group(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait()


@dataclass
class Supervised:
    """A server the stack started, and how to start it again."""

    name: str
    command: List[str]
    env: Dict[str, str]
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    quick_failures: int = 0
    restart_at: Optional[float] = None
    health_url: Optional[str] = None  # checked while it runs (see `heal`)
    answered: bool = False  # since its last start: it has finished loading
    misses: int = 0
    next_check: float = 0.0


class Stack:
    """The action server + the Rasa server (+ the notifier), as child processes."""

    def __init__(self, settings: Settings, log_dir: Optional[Path] = None) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.supervised: Dict[str, Supervised] = {}
        self._action_token: Optional[str] = None

    @property
    def processes(self) -> List[subprocess.Popen]:
        return [entry.process for entry in self.supervised.values()]

    @property
    def rasa(self) -> Optional[subprocess.Popen]:
        entry = self.supervised.get("rasa")
        return entry.process if entry else None

    @property
    def url(self) -> str:
        return f"http://{connect_host(self.settings.interface)}:{self.settings.rasa_port}"

    @property
    def action_token(self) -> str:
        """The action server's secret (assistant/shared/action_secret.py), read or created once."""
        if self._action_token is None:
            from assistant.shared.action_secret import action_secret

            env = {**os.environ, **self.settings.extra_env}
            self._action_token = action_secret(self.settings.action_secret_file, env)
        return self._action_token

    def environment(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        from assistant.shared.action_secret import SECRET_ENV

        return {**self.settings.environment(), SECRET_ENV: self.action_token, **(extra or {})}

    def _popen(self, name: str, command: List[str], env: Dict[str, str]) -> subprocess.Popen:
        log: Optional[Path] = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = self.log_dir / f"{name}.log"
        with open(log if log else os.devnull, "ab") as output:
            return subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=self.environment(env),
                # without a log dir the servers write to this terminal
                stdout=output if log else None,
                stderr=subprocess.STDOUT if log else None,
                # a process group of its own: Ctrl-C reaches us, and we stop it
                # and every worker it forked together (stop_groups)
                start_new_session=True,
                # every file the servers create (databases, their -wal files,
                # the conversation secret) is private: assistant/shared/private_files.py
                umask=PRIVATE_UMASK,
            )

    def _spawn(self, name: str, command: List[str], env: Optional[Dict[str, str]] = None,
               health_url: Optional[str] = None) -> subprocess.Popen:
        process = self._popen(name, command, env or {})
        self.supervised[name] = Supervised(name, command, env or {}, process, health_url=health_url)
        return process

    def actions_command(self) -> List[str]:
        return [sys.executable, "-m", "assistant.action_server.app",
                "--port", str(self.settings.actions_port), "--host", self.settings.actions_host]

    def start_actions(self, timeout: float = 60) -> None:
        health = f"http://{connect_host(self.settings.actions_host)}:{self.settings.actions_port}/health"
        process = self._spawn("actions", self.actions_command(), health_url=health)
        _wait_http(health, process, timeout)

    def rasa_command(self, subcommand: str) -> List[str]:
        rasa = ([str(Path(sys.executable).parent / "rasa")] if self.settings.stock_rasa
                else [sys.executable, "-m", "assistant.rasa_server.main"])  # `rasa` + our speed-ups
        return [
            *rasa, subcommand,
            "--model", str(self.settings.model),
            "--endpoints", str(self.settings.endpoints),
            "--credentials", "credentials.yml",
        ]

    def spawn_rasa(self, port: int, name: str = "rasa") -> subprocess.Popen:
        """Start a Rasa server on `port` without waiting for it (see `wait_rasa`)."""
        self.settings.tracker_db.parent.mkdir(parents=True, exist_ok=True)
        command = self.rasa_command("run") + ["--port", str(port), "--interface", self.settings.interface]
        # The public server refuses request bodies over 64 KB with 413 before
        # reading them (Sanic's default is 100 MB). Not the action server: the
        # trackers Rasa sends it are bigger than that.
        return self._spawn(name, command, env={"SANIC_REQUEST_MAX_SIZE": str(PUBLIC_MAX_BODY_BYTES)},
                           health_url=self.rasa_health_url(port))

    def rasa_health_url(self, port: int) -> str:
        return f"http://{connect_host(self.settings.interface)}:{port}/"

    def wait_rasa(self, process: subprocess.Popen, port: int, timeout: float = 120) -> None:
        _wait_http(self.rasa_health_url(port), process, timeout)

    def start_rasa(self, timeout: float = 120) -> None:
        port = self.settings.rasa_port
        self.wait_rasa(self.spawn_rasa(port), port, timeout)

    def rasa_workers(self) -> int:
        """How many worker processes the Rasa server runs now (itself, with one)."""
        rasa = self.rasa
        if rasa is None or rasa.poll() is not None:
            return 0
        return len(process_tree(rasa.pid)) - 1 if self.settings.workers > 1 else 1

    def start_notifier(self) -> None:
        """The outbox worker; only when the clinic configured a webhook or e-mail."""
        from assistant.callback_requests.notifier import needs_notifier
        from assistant.settings.clinic import load_clinic

        clinic_config = self.settings.environment().get("CLINIC_CONFIG")
        clinic = load_clinic(Path(clinic_config) if clinic_config else None)
        if needs_notifier(clinic):
            self._spawn("notifier", [sys.executable, "-m", "assistant.callback_requests.notifier"])

    def start(self) -> Stack:
        # var/ (or TRACKER_DB's folder) 700 and its files 600, also when an
        # earlier version made them 755/644
        secure_directory(make_private_dir(self.settings.tracker_db.parent))
        try:
            self.start_actions()
            self.start_rasa()
            self.start_notifier()
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self, name: str) -> None:
        """SIGKILL a server's whole group, as a crash would (tests)."""
        process = self.supervised[name].process
        signal_group(process.pid, signal.SIGKILL)
        process.wait()

    def _check_health(self, entry: Supervised, now: float) -> Optional[str]:
        """Kill a running server that stopped answering; what to tell the user."""
        if entry.health_url is None or now < entry.next_check:
            return None
        interval = self.settings.health_interval
        entry.next_check = now + interval
        if answers(entry.health_url, timeout=interval):
            entry.answered, entry.misses = True, 0
            return None
        if not entry.answered:  # still starting (loading the model)
            return None
        entry.misses += 1
        if entry.misses < HEALTH_CHECK_MISSES:
            return None
        signal_group(entry.process.pid, signal.SIGKILL)
        entry.process.wait()
        return (f"The {entry.name} process stopped answering ({entry.misses} checks in a row); "
                "killed it.")

    def heal(self) -> List[str]:
        """Restart every server that died or stopped answering, with back-off;
        what to tell the user.

        A dead server's group is killed first: a Rasa server's orphaned
        workers would otherwise keep its port."""
        news: List[str] = []
        now = time.monotonic()
        for entry in self.supervised.values():
            if entry.process.poll() is None:
                hung = self._check_health(entry, now)
                if hung is None:
                    continue
                news.append(hung)
            if entry.restart_at is None:
                signal_group(entry.process.pid, signal.SIGKILL)
                entry.quick_failures = next_failures(entry.quick_failures, now - entry.started)
                delay = restart_delay(entry.quick_failures)
                entry.restart_at = now + delay
                news.append(f"The {entry.name} process stopped (exit code {entry.process.returncode}); "
                            f"restarting it{f' in {delay:.0f} s' if delay else ''}.")
            if now >= entry.restart_at:
                entry.process = self._popen(entry.name, entry.command, entry.env)
                entry.started, entry.restart_at = time.monotonic(), None
                entry.answered, entry.misses, entry.next_check = False, 0, 0.0
        return news

    def stop(self) -> None:
        stop_groups(self.processes, self.settings.stop_grace)
        self.supervised.clear()


def _banner(settings: Settings) -> str:
    url = f"http://localhost:{settings.rasa_port}"
    where = ("loopback only: put the clinic's reverse proxy in front" if settings.interface == LOOPBACK
             else f"interface {settings.interface}")
    return (
        "\n"
        f"  The assistant is running ({where}).\n"
        f"    chat widget:   {url}/webchat/  (demo page)\n"
        f"    REST webhook:  POST {url}/webhooks/rest/webhook\n"
        f"    try:           curl -s {url}/webhooks/rest/webhook "
        "-H 'Content-Type: application/json' -d '{\"sender\":\"me\",\"message\":\"does it hurt?\"}'\n"
        f"    conversations: {settings.tracker_db}\n"
        "  Press Ctrl-C to stop.\n"
    )


def check_configuration() -> Optional[str]:
    """Validate clinic.yml (and, when it asks for e-mail, the SMTP_* settings) before
    starting anything; the error names the bad field or variable."""
    from assistant.settings.clinic import ClinicConfigError, load_clinic
    from assistant.settings.smtp import email_settings_problem

    try:
        clinic = load_clinic()
    except ClinicConfigError as error:
        return str(error)
    return email_settings_problem(clinic.notify_email, clinic.weekly_summary)


def supervise(name: str, start: Callable[[], object], crashed: Callable[[], Optional[str]],
              stop: Callable[[], None], banner: Callable[[], str]) -> int:
    """What `make run` and `make cluster` share: check clinic.yml, start, print the
    banner, then wait for Ctrl-C / SIGTERM and stop everything. `crashed()` is
    called twice a second: it heals what it can and returns a message only when
    the whole thing must stop. The exit code."""
    problem = check_configuration()
    if problem:
        print(f"Cannot start: {problem}", file=sys.stderr)
        return 2
    stopping = False

    def request_stop(signum: int, frame: Optional[FrameType]) -> None:
        nonlocal stopping
        stopping = True

    # SIGHUP too: closing the terminal would otherwise end the launcher alone
    # and leave the servers (in sessions of their own) running.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, request_stop)
    try:
        start()
    except (RuntimeError, TimeoutError) as error:
        print(f"Could not start the {name}: {error}", file=sys.stderr)
        stop()
        return 1
    print(banner(), flush=True)
    exit_code = 0
    while not stopping:
        failure = crashed()
        if failure:
            print(failure, file=sys.stderr)
            exit_code = 1
            break
        time.sleep(0.5)
    print(f"Stopping the {name}...", flush=True)
    stop()
    return exit_code


def run_forever(settings: Settings) -> int:
    stack = Stack(settings)

    def crashed() -> Optional[str]:
        # Nothing is fatal once running: a server that died is restarted (and a
        # Rasa worker replaced, by assistant/rasa_server/worker_pool.py) while the rest answers.
        for news in stack.heal():
            print(news, file=sys.stderr, flush=True)
        return None

    return supervise("assistant", stack.start, crashed, stack.stop, lambda: _banner(settings))


def run_shell(settings: Settings) -> int:
    stack = Stack(settings)
    secure_directory(make_private_dir(settings.tracker_db.parent))
    stack.start_actions()
    try:
        # One process: every worker would read this terminal.
        env = stack.environment({"SANIC_WORKERS": "1"})
        return subprocess.call(stack.rasa_command("shell"), cwd=PROJECT_ROOT, env=env, umask=PRIVATE_UMASK)
    finally:
        stack.stop()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run the assistant.")
    parser.add_argument("--shell", action="store_true", help="talk to it in this terminal")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    return run_shell(settings) if args.shell else run_forever(settings)


if __name__ == "__main__":
    sys.exit(main())
