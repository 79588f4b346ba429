"""What `make run` starts (python -m assistant.ops.launcher), as a process of its own:
two Rasa workers sharing the port, a worker that dies is reported and replaced
while the other keeps answering, and SIGTERM stops every process it started,
even a worker that ignores it."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import List

import pytest

from assistant.ops.launcher import DEFAULT_WORKERS, Settings, process_tree
from tests.helpers.processes import Launched
from tests.helpers.rest import say, texts


@pytest.mark.services  # real Rasa workers on the trained model
def test_make_run_serves_with_two_workers_and_replaces_a_lost_one(tmp_path: Path) -> None:
    launched = Launched(tmp_path)
    started: List[int] = []
    try:
        launched.wait_ready()
        started = process_tree(launched.process.pid)
        workers = launched.workers()
        assert len(workers) == DEFAULT_WORKERS == 2
        assert texts(say(launched, "launcher-1", "does it hurt?"))

        os.kill(workers[0], signal.SIGKILL)
        launched.wait_for("the lost worker's report",
                          lambda: f"Rasa worker {workers[0]} stopped" in launched.stderr.read_text(), 10)
        assert "starting a replacement" in launched.stderr.read_text()
        for n in range(5):  # the other worker answers every message meanwhile
            assert texts(say(launched, f"launcher-{n}", "how long does a session take"))
        launched.wait_for("a replacement worker", lambda: len(launched.workers()) == 2, 10)
        replacement = (set(launched.workers()) - set(workers)).pop()
        started.append(replacement)
        time.sleep(8)  # it loads the model, then takes its share of the turns again
        for n in range(8):
            assert texts(say(launched, f"launcher-after-{n}", "does it hurt?"))
    finally:
        code = launched.stop()
    assert code == 0, launched.stderr.read_text()
    alive = [pid for pid in started if process_tree(pid)]
    assert not alive, f"processes left running after SIGTERM: {alive}"


@pytest.mark.services
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_shutdown_kills_a_worker_that_ignores_sigterm(tmp_path: Path, signum: int) -> None:
    """A worker stuck in a busy loop never handles SIGTERM (issue 16: orphaned
    workers kept the port). A stopped process stands in for it here. SIGHUP
    (the terminal closed) stops everything the same way."""
    launched = Launched(tmp_path, {"STOP_GRACE_SECONDS": "3"})
    launched.wait_ready()
    everything = process_tree(launched.process.pid)
    stuck = launched.workers()[0]
    os.kill(stuck, signal.SIGSTOP)
    started = time.monotonic()
    code = launched.stop(signum)
    seconds = time.monotonic() - started
    assert code == 0, launched.stderr.read_text()
    deadline = time.monotonic() + 5
    while [pid for pid in everything if process_tree(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in everything if process_tree(pid)], "processes left after SIGTERM"
    assert seconds < 3 + 10, f"stopping took {seconds:.1f} s"
    # nothing listens on the port: the next `make run` can start (as Sanic does,
    # with SO_REUSEADDR, which still refuses a port some process listens on)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", launched.port))
        probe.listen()


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
