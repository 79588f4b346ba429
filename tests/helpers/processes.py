"""The launcher as `make run` starts it, in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional

from assistant.ops.launcher import Settings, free_port, process_tree
from assistant.paths import PROJECT_ROOT

ALLOWED_ORIGIN = "https://www.allowed-clinic.example"  # the website channel's CORS list in tests


def clinic_file(folder: Path, extra: str = "") -> Path:
    """The shipped clinic.yml plus `extra` (YAML), written into `folder`."""
    clinic = folder / "clinic.yml"
    clinic.write_text((PROJECT_ROOT / "clinic.yml").read_text(encoding="utf-8") + extra, encoding="utf-8")
    return clinic


def stack_settings(workdir: Path, model: Path, clinic_extra: Optional[str] = None,
                   data: Optional[Path] = None, rasa_port: Optional[int] = None, **env: str) -> Settings:
    """A stack of a test's own on free ports: fresh SQLite stores in `data` (default
    `workdir`), the shipped clinic.yml plus `clinic_extra`, and `env` on top."""
    data = data or workdir
    extra_env = {"REQUESTS_DB_URL": f"sqlite:///{data / 'requests.db'}",
                 "WEBCHAT_ALLOWED_ORIGINS": ALLOWED_ORIGIN}
    if clinic_extra is not None:
        extra_env["CLINIC_CONFIG"] = str(clinic_file(workdir, clinic_extra))
    return Settings(rasa_port=rasa_port or free_port(), actions_port=free_port(),
                    tracker_db=data / "tracker.db", model=model, extra_env={**extra_env, **env})


class Launched:
    def __init__(self, tmp_path: Path, extra_env: Optional[Dict[str, str]] = None) -> None:
        self.port = free_port()
        self.actions_port = free_port()
        env = {**os.environ, "RASA_PORT": str(self.port), "ACTIONS_PORT": str(self.actions_port),
               "TRACKER_DB": str(tmp_path / "tracker.db"),
               "REQUESTS_DB_URL": f"sqlite:///{tmp_path / 'requests.db'}", **(extra_env or {})}
        env.pop("SANIC_WORKERS", None)  # the default
        self.stderr = tmp_path / "stderr.log"
        with open(self.stderr, "wb") as errors, open(tmp_path / "stdout.log", "wb") as output:
            self.process = subprocess.Popen([sys.executable, "-m", "assistant.ops.launcher"],
                                            cwd=PROJECT_ROOT,
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

    def child_pid(self, module: str) -> int:
        """The launcher's child whose command runs `module`."""
        for pid in process_tree(self.process.pid)[1:]:
            if module.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        raise AssertionError(f"no {module} among the launcher's processes")

    def rasa_pid(self) -> int:
        return self.child_pid("assistant.rasa_server.main")

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}: {self.stderr.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=60)

    def workers(self) -> List[int]:
        return process_tree(self.rasa_pid())[1:]
