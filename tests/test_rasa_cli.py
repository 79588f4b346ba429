"""Rasa's own checks: data validation and the test stories against the trained model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from assistant.paths import PROJECT_ROOT

RASA = str(Path(sys.executable).parent / "rasa")


def rasa(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [RASA, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def test_rasa_data_validate_passes_with_fail_on_warnings() -> None:
    result = rasa("data", "validate", "--fail-on-warnings")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Issue found" not in output, output[-4000:]


def test_test_stories_pass_without_prediction_errors(tmp_path: Path, model_path: Path) -> None:
    result = rasa(
        "test", "core", "--e2e",
        "--model", str(model_path),
        "--stories", "tests/test_stories.yml",
        "--fail-on-prediction-errors",
        "--out", str(tmp_path),
    )
    failed = tmp_path / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:] + details
