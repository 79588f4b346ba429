"""What `make run` starts (python -m assistant.launcher), as a process of its own:
two Rasa workers sharing the port, a worker that dies is reported while the
other keeps answering, and SIGTERM stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import List

import pytest

from assistant.knowledge import PROJECT_ROOT
from assistant.launcher import DEFAULT_WORKERS, Settings, free_port, process_tree
from tests.test_e2e_rest import say, texts


class Launched:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "RASA_PORT": str(self.port), "ACTIONS_PORT": str(free_port()),
               "TRACKER_DB": str(tmp_path / "tracker.db"),
               "REQUESTS_DB_URL": f"sqlite:///{tmp_path / 'requests.db'}"}
        env.pop("SANIC_WORKERS", None)  # the default
        self.stderr = tmp_path / "stderr.log"
        with open(self.stderr, "wb") as errors, open(tmp_path / "stdout.log", "wb") as output:
            self.process = subprocess.Popen([sys.executable, "-m", "assistant.launcher"], cwd=PROJECT_ROOT,
                                            env=env, stdout=output, stderr=errors)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr.read_text()
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("make run's assistant did not answer")

    def rasa_pid(self) -> int:
        """The Rasa server: the launcher's child whose command runs assistant.server."""
        for pid in process_tree(self.process.pid)[1:]:
            if b"assistant.server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        raise AssertionError("no Rasa server among the launcher's processes")

    def workers(self) -> List[int]:
        return process_tree(self.rasa_pid())[1:]


def test_make_run_serves_with_two_workers_and_survives_losing_one(tmp_path: Path) -> None:
    launched = Launched(tmp_path)
    started: List[int] = []
    try:
        launched.wait_ready()
        started = process_tree(launched.process.pid)
        workers = launched.workers()
        assert len(workers) == DEFAULT_WORKERS == 2
        assert texts(say(launched, "launcher-1", "does it hurt?"))

        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while "Warning: a Rasa worker process stopped" not in launched.stderr.read_text():
            assert time.monotonic() < deadline, "the lost worker was not reported"
            time.sleep(0.2)
        assert "1 of 2 keep answering" in launched.stderr.read_text()
        for n in range(5):  # the other worker answers every message
            assert texts(say(launched, f"launcher-{n}", "how long does a session take"))
    finally:
        launched.process.send_signal(signal.SIGTERM)
        code = launched.process.wait(timeout=60)
    assert code == 0, launched.stderr.read_text()
    alive = [pid for pid in started if process_tree(pid)]
    assert not alive, f"processes left running after SIGTERM: {alive}"


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_number_of_workers_stops_with_a_clear_message(
        value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("SANIC_WORKERS", value)
    with pytest.raises(SystemExit) as stopped:
        Settings.from_env()
    assert stopped.value.code == 2
    assert f"SANIC_WORKERS must be a whole number of at least 1, not '{value}'" in capsys.readouterr().err


def test_the_number_of_workers_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANIC_WORKERS", "3")
    assert Settings.from_env().environment()["SANIC_WORKERS"] == "3"
    monkeypatch.delenv("SANIC_WORKERS")
    assert Settings.from_env().workers == DEFAULT_WORKERS
