"""Where things are: the project, the trained model and the run-time files.

One home for them, so that a tool need not import the knowledge module just to
find the repository (it did), and the model path is written once (it was
written four times). The launcher exports TRACKER_DB; the files that live
beside the tracker store (secrets, rate-limit counters) follow it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"
DOMAIN_FILE = PROJECT_ROOT / "domain.yml"
# After-session reports and look-alikes the learned warning-sign model is trained on.
REPORT_SETS = PROJECT_ROOT / "data" / "safety"
MODEL = PROJECT_ROOT / "models" / "dry-needling.tar.gz"
VAR_DIR = PROJECT_ROOT / "var"
TRACKER_DB = VAR_DIR / "tracker.db"


def tracker_db(env: Optional[Mapping[str, str]] = None) -> Path:
    """The conversation store's SQLite file: TRACKER_DB, else var/tracker.db."""
    env = os.environ if env is None else env
    return Path(env.get("TRACKER_DB") or TRACKER_DB)


def beside_tracker_db(name: str, env: Optional[Mapping[str, str]] = None) -> Path:
    """A run-time file kept next to the tracker store (var/ by default)."""
    return tracker_db(env).with_name(name)
