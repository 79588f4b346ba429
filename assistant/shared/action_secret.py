"""The secret the Rasa server shows the action server on every call.

The action server used to listen on every interface with no authentication: a
hand-made POST to its /webhook stored a call-back request without any
validation, ran "forget me" for someone else's conversation, and /actions
listed every action (issue 16). Now it listens on loopback by default and
refuses any request without ``Authorization: Bearer <secret>`` (401 without it,
403 with a wrong one); endpoints.yml makes Rasa send it.

The secret comes from ``ACTION_SERVER_TOKEN`` (set the same value on every
machine of a cluster that spans machines), else from the file
``action-server.key`` next to the tracker store (``var/`` by default), which
the launcher creates with mode 600 on first run.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Mapping, Optional

SECRET_ENV = "ACTION_SERVER_TOKEN"
SECRET_FILE_NAME = "action-server.key"
AUTH_SCHEME = "Bearer"
MIN_SECRET_CHARS = 32
# A header value Rasa's endpoints.yml can carry: no spaces, no `$` (Rasa expands ${VAR}).
_SECRET_CHARS = re.compile(r"[A-Za-z0-9._~+/=-]+")


class SecretError(RuntimeError):
    """The secret is unusable; the message says why."""


def check_secret(value: str, where: str) -> str:
    value = value.strip()
    if len(value) < MIN_SECRET_CHARS:
        raise SecretError(f"{where} must be at least {MIN_SECRET_CHARS} characters")
    if not _SECRET_CHARS.fullmatch(value):
        raise SecretError(f"{where} may hold only letters, digits and . _ ~ + / = -")
    return value


def read_or_create(path: Path) -> str:
    """The secret in `path`, created (mode 600, atomically) when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            pass
        else:
            with os.fdopen(descriptor, "w", encoding="ascii") as output:
                output.write(secrets.token_urlsafe(48))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return check_secret(path.read_text(encoding="ascii"), str(path))


def action_secret(default_file: Path, env: Optional[Mapping[str, str]] = None) -> str:
    """From the environment when set there, else from (or into) `default_file`."""
    env = os.environ if env is None else env
    if env.get(SECRET_ENV):
        return check_secret(env[SECRET_ENV], SECRET_ENV)
    return read_or_create(default_file)
