"""Start the action server and the Rasa server together, and stop them together.

    python -m assistant.launcher            # what `make run` does
    python -m assistant.launcher --shell    # talk to the bot in the terminal

Ports, storage and the number of Rasa worker processes come from the
environment, with the embedded defaults:

    RASA_PORT=5005  ACTIONS_PORT=5055  TRACKER_DB=var/tracker.db  SANIC_WORKERS=2

The Rasa server forks SANIC_WORKERS processes that share its port (one Python
process uses one CPU core); they share conversation locks through an SQLite
file next to the tracker store (``locks.db``, assistant/lock_store.py).

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

from assistant.knowledge import PROJECT_ROOT

MODEL = PROJECT_ROOT / "models" / "dry-needling.tar.gz"
STOP_GRACE_SECONDS = 15
PUBLIC_MAX_BODY_BYTES = 64 * 1024
# Two workers use both cores of a small server; the second adds about 330 MB of
# memory (the code and the libraries are shared; see README, Performance).
DEFAULT_WORKERS = 2


@dataclass
class Settings:
    rasa_port: int = 5005
    actions_port: int = 5055
    tracker_db: Path = PROJECT_ROOT / "var" / "tracker.db"
    model: Path = MODEL
    extra_env: Dict[str, str] = field(default_factory=dict)
    endpoints: Path = PROJECT_ROOT / "endpoints.yml"
    stock_rasa: bool = False  # plain `rasa`, without assistant/server.py's speed-ups (benchmark baseline)
    workers: int = DEFAULT_WORKERS  # Rasa's own SANIC_WORKERS; stock Rasa keeps 1 with its in-memory locks

    @property
    def lock_db(self) -> Path:
        return self.tracker_db.with_name("locks.db")

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            rasa_port=_whole_number("RASA_PORT", 5005),
            actions_port=_whole_number("ACTIONS_PORT", 5055),
            tracker_db=Path(os.environ.get("TRACKER_DB", PROJECT_ROOT / "var" / "tracker.db")),
            workers=_whole_number("SANIC_WORKERS", DEFAULT_WORKERS),
        )

    def environment(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(
            RASA_PORT=str(self.rasa_port),
            ACTIONS_PORT=str(self.actions_port),
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


class Stack:
    """The action server + the Rasa server, as child processes."""

    def __init__(self, settings: Settings, log_dir: Optional[Path] = None) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.processes: List[subprocess.Popen] = []
        self.rasa: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.rasa_port}"

    def _spawn(self, name: str, command: List[str],
               env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        log: Optional[Path] = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = self.log_dir / f"{name}.log"
        with open(log if log else os.devnull, "ab") as output:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env={**self.settings.environment(), **(env or {})},
                # without a log dir the servers write to this terminal
                stdout=output if log else None,
                stderr=subprocess.STDOUT if log else None,
                start_new_session=True,  # Ctrl-C reaches us; we stop them in order
            )
        self.processes.append(process)
        return process

    def start_actions(self, timeout: float = 60) -> None:
        process = self._spawn(
            "actions",
            [sys.executable, "-m", "rasa_sdk", "--actions", "actions",
             "--port", str(self.settings.actions_port)],
        )
        _wait_http(f"http://127.0.0.1:{self.settings.actions_port}/health", process, timeout)

    def rasa_command(self, subcommand: str) -> List[str]:
        rasa = ([str(Path(sys.executable).parent / "rasa")] if self.settings.stock_rasa
                else [sys.executable, "-m", "assistant.server"])  # `rasa` + our speed-ups
        return [
            *rasa, subcommand,
            "--model", str(self.settings.model),
            "--endpoints", str(self.settings.endpoints),
            "--credentials", "credentials.yml",
        ]

    def spawn_rasa(self, port: int, name: str = "rasa") -> subprocess.Popen:
        """Start a Rasa server on `port` without waiting for it (see `wait_rasa`)."""
        self.settings.tracker_db.parent.mkdir(parents=True, exist_ok=True)
        command = self.rasa_command("run") + ["--port", str(port)]
        # The public server refuses request bodies over 64 KB with 413 before
        # reading them (Sanic's default is 100 MB). Not the action server: the
        # trackers Rasa sends it are bigger than that.
        return self._spawn(name, command, env={"SANIC_REQUEST_MAX_SIZE": str(PUBLIC_MAX_BODY_BYTES)})

    @staticmethod
    def wait_rasa(process: subprocess.Popen, port: int, timeout: float = 120) -> None:
        _wait_http(f"http://127.0.0.1:{port}/", process, timeout)

    def start_rasa(self, timeout: float = 120) -> None:
        port = self.settings.rasa_port
        self.rasa = self.spawn_rasa(port)
        self.wait_rasa(self.rasa, port, timeout)

    def rasa_workers(self) -> int:
        """How many worker processes the Rasa server runs now (itself, with one)."""
        if self.rasa is None or self.rasa.poll() is not None:
            return 0
        return len(process_tree(self.rasa.pid)) - 1 if self.settings.workers > 1 else 1

    def start_notifier(self) -> None:
        """The webhook outbox worker; only when the clinic configured a webhook."""
        from assistant.clinic import load_clinic

        clinic_config = self.settings.environment().get("CLINIC_CONFIG")
        clinic = load_clinic(Path(clinic_config) if clinic_config else None)
        if clinic.callback_webhook_url:
            self._spawn("notifier", [sys.executable, "-m", "assistant.notifier"])

    def start(self) -> Stack:
        try:
            self.start_actions()
            self.start_rasa()
            self.start_notifier()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def first_exited(self) -> Optional[subprocess.Popen]:
        return next((p for p in self.processes if p.poll() is not None), None)


def _banner(settings: Settings) -> str:
    url = f"http://localhost:{settings.rasa_port}"
    return (
        "\n"
        f"  The assistant is running.\n"
        f"    chat widget:   {url}/webchat/  (demo page)\n"
        f"    REST webhook:  POST {url}/webhooks/rest/webhook\n"
        f"    try:           curl -s {url}/webhooks/rest/webhook "
        "-H 'Content-Type: application/json' -d '{\"sender\":\"me\",\"message\":\"does it hurt?\"}'\n"
        f"    conversations: {settings.tracker_db}\n"
        "  Press Ctrl-C to stop.\n"
    )


def check_configuration() -> Optional[str]:
    """Validate clinic.yml before starting anything; the error names the bad field."""
    from assistant.clinic import ClinicConfigError, load_clinic

    try:
        load_clinic()
    except ClinicConfigError as error:
        return str(error)
    return None


def supervise(name: str, start: Callable[[], object], crashed: Callable[[], Optional[str]],
              stop: Callable[[], None], banner: Callable[[], str]) -> int:
    """What `make run` and `make cluster` share: check clinic.yml, start, print the
    banner, then wait for Ctrl-C / SIGTERM or a crashed server and stop everything.
    `crashed()` returns what to tell the user when something died. The exit code."""
    problem = check_configuration()
    if problem:
        print(f"Cannot start: {problem}", file=sys.stderr)
        return 2
    stopping = False

    def request_stop(signum: int, frame: Optional[FrameType]) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
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

    warned = False

    def crashed() -> Optional[str]:
        nonlocal warned
        process = stack.first_exited()
        if process is not None:
            return f"A server stopped unexpectedly (exit code {process.returncode}); shutting down."
        # Sanic does not replace a worker that died; the others share the port
        # and keep answering, so say so rather than stop answering altogether.
        alive = stack.rasa_workers()
        if not warned and alive < settings.workers:
            print(f"Warning: a Rasa worker process stopped; {alive} of {settings.workers} "
                  "keep answering. Restart the assistant to recover.", file=sys.stderr, flush=True)
            warned = True
        return None

    return supervise("assistant", stack.start, crashed, stack.stop, lambda: _banner(settings))


def run_shell(settings: Settings) -> int:
    stack = Stack(settings)
    stack.start_actions()
    try:
        # One process: every worker would read this terminal.
        env = {**settings.environment(), "SANIC_WORKERS": "1"}
        return subprocess.call(stack.rasa_command("shell"), cwd=PROJECT_ROOT, env=env)
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
