"""Files that hold visitors' data are readable by the bot's own user only.

Conversations, call-back requests, locks, rate-limit counters, the conversation
secret and staff exports all live under ``var/`` or wherever staff write an
export. Before this, ``var/`` was 755 and the databases, their WAL files and
CSV exports 644: any local user could read every conversation. Now:

* every process the launcher starts runs with umask 077, so each file SQLite
  creates later (``-wal``, ``-shm``, journals) is 600 and each directory 700;
* ``secure_directory`` tightens what an earlier version left behind (at start);
* exports (``make requests ARGS="export ..."``, ``make report``, ``make review``)
  are written private too (``private_umask``, ``write_private``).
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and directories created inside are private to this user."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def make_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing; the directory itself ends up 700."""
    with private_umask():
        path.mkdir(parents=True, exist_ok=True)
    path.chmod(PRIVATE_DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a staff export readable by its owner only (also over an older 644 file)."""
    with private_umask():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    path.chmod(PRIVATE_FILE_MODE)


def secure_directory(directory: Path) -> None:
    """Make `directory` 700 and the files directly in it 600 (what an earlier
    version created 755/644). Subdirectories are left alone: `make cluster`'s
    own PostgreSQL and nginx under var/cluster/ run as other users, and that
    code sets their modes. Symbolic links are never followed."""
    if not directory.is_dir() or directory.is_symlink():
        return
    directory.chmod(PRIVATE_DIR_MODE)
    for path in directory.iterdir():
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode) and stat.S_IMODE(mode) & 0o077:
            path.chmod(PRIVATE_FILE_MODE)
