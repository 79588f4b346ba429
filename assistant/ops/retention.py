"""Delete what the clinic no longer needs to keep.

    make retention                      # uses retention_days from clinic.yml
    make retention ARGS="--days 30"

Removes conversations with no activity for that many days from the tracker
store (the one endpoints.yml configures: SQLite by default, PostgreSQL in the
production profile) and call-back requests that are marked done and older than
that. Open requests are kept, however old: they are work still to do.
Run it daily (cron or a systemd timer).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import List, Optional
from unittest import mock

from rasa.core.utils import read_endpoints_from_path

from assistant.callback_requests.store import CallbackStore, StoreUnavailable, store_url, utcnow
from assistant.ops.launcher import Settings
from assistant.paths import PROJECT_ROOT
from assistant.rasa_server.tracker_store import PrivacySQLTrackerStore
from assistant.settings.clinic import ClinicConfigError, load_clinic
from assistant.shared.private_files import private_umask


def tracker_store(endpoints: Path) -> PrivacySQLTrackerStore:
    """The tracker store exactly as the Rasa server builds it from endpoints.yml."""
    # Rasa expands every ${VAR} of the file, so the launcher's defaults are needed.
    defaults = Settings.from_env()
    # Rasa expands every ${VAR} of the file; the action server is not needed here.
    # Set only while reading it: the process's environment (and anything this
    # process starts afterwards, a test's servers say) stays as it was.
    fill_in = {"TRACKER_DB": str(defaults.tracker_db), "LOCK_DB": str(defaults.lock_db),
               "ACTION_SERVER_URL": "http://unused.invalid/webhook", "ACTION_SERVER_TOKEN": "unused"}
    with mock.patch.dict(os.environ, {k: v for k, v in fill_in.items() if k not in os.environ}):
        config = read_endpoints_from_path(str(endpoints)).tracker_store
    if config is None or not config.type or not config.type.endswith("PrivacySQLTrackerStore"):
        raise SystemExit(
            f"{endpoints}: tracker_store must be assistant.rasa_server.tracker_store.PrivacySQLTrackerStore")
    return PrivacySQLTrackerStore(host=config.url, **config.kwargs)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Delete old conversations and closed call-back requests.")
    parser.add_argument("--days", type=int,
                        help="keep this many days (default: retention_days in clinic.yml)")
    parser.add_argument("--endpoints", type=Path, default=PROJECT_ROOT / "endpoints.yml")
    args = parser.parse_args(argv)
    try:
        days = args.days or load_clinic().retention_days
    except ClinicConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if days < 1:
        print("--days must be at least 1", file=sys.stderr)
        return 2
    cutoff = utcnow() - timedelta(days=days)
    try:
        with private_umask():  # a store it has to create is private, as the bot's are
            store = tracker_store(args.endpoints)
            requests = CallbackStore(store_url())
            conversations = store.delete_inactive_before(cutoff.timestamp())
            closed = requests.delete_closed_before(cutoff)
    except StoreUnavailable as error:
        print(f"The request database is unavailable: {error}", file=sys.stderr)
        return 2
    print(f"Deleted {conversations} conversation(s) inactive for {days}+ days "
          f"and {closed} closed call-back request(s) older than that.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
