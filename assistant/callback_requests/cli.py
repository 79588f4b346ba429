"""Staff command for call-back requests.

    make requests                          # list open requests
    make requests ARGS="--all"             # include done ones
    make requests ARGS="export out.csv"    # CSV for a spreadsheet (all requests)
    make requests ARGS="done 12"           # mark request CB-12 as done
    make requests ARGS="done 12 --note 'booked for Tue'"
    make requests ARGS="called 12"         # phoned, waiting for an outcome
    make requests ARGS="reopen 12"

Reads the same database as the bot (REQUESTS_DB_URL, default var/requests.db)
and shows requests exactly as the staff console does (assistant/staff/
formatting.py: the clinic's time, the national phone format, the full note,
who changed it and when); a change made here is recorded as the terminal's
user "(command line)" in the same audit trail.

The CSV is written by the console's code too (assistant/staff/export.py):
cells that a spreadsheet would run as a formula get a leading apostrophe, and
the file is private to the user who wrote it (mode 600).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional
from zoneinfo import ZoneInfo

from assistant.callback_requests.store import CallbackStore, store_url
from assistant.settings.clinic import ClinicConfigError, load_clinic
from assistant.shared.private_files import PRIVATE_FILE_MODE, private_umask
from assistant.staff.export import COLUMNS, FORMULA_STARTS, spreadsheet_safe, write_rows
from assistant.staff.formatting import CALLED, DONE, OPEN, RequestView, describe_change, parse_reference
from assistant.staff.inbox import (
    EXPORTED,
    SHOW_ALL,
    SHOW_OPEN,
    Filters,
    Inbox,
    command_line_user,
    run_staff_command,
)

__all__ = ["COLUMNS", "FORMULA_STARTS", "main", "spreadsheet_safe"]
# make requests ARGS="<command> 12": the status each command sets.
STATUS_COMMANDS = {"done": DONE, "called": CALLED, "reopen": OPEN}


def write_csv(path: Path, items: List[RequestView]) -> None:
    with private_umask(), path.open("w", newline="", encoding="utf-8") as handle:
        write_rows(handle, items)
    path.chmod(PRIVATE_FILE_MODE)  # also when the file existed before


def print_requests(items: List[RequestView]) -> None:
    """One block per request, nothing cut short."""
    if not items:
        print("No call-back requests.")
        return
    for item in items:
        print(f"{item.reference}  {item.status:<6}  {item.received} ({item.age})  "
              f"{item.name}  {item.contact}")
        print(f"    preferred time: {item.preferred_time}")
        if item.note:
            print(f"    note: {item.note}")
        change = describe_change(item)
        if change:
            print(f"    {change}")


def print_pending_deliveries(store: CallbackStore) -> None:
    """Warn staff when the clinic's webhook has not accepted some requests yet."""
    pending = [m for m in store.pending_deliveries() if m.attempts > 0]
    if pending:
        last = pending[-1]
        print(f"\n{len(pending)} request(s) not yet accepted by the clinic's webhook; retrying "
              f"(last error: {last.last_error}, {last.attempts} attempt(s)).")


def run(args: argparse.Namespace, store: CallbackStore, zone: ZoneInfo) -> int:
    inbox = Inbox(store)
    if args.command == "export":
        write_csv(args.file, inbox.views(zone, Filters(show=SHOW_ALL)))
        inbox.record(command_line_user(), EXPORTED)
        print(f"wrote {args.file}")
    elif args.command in STATUS_COMMANDS:
        request_id = parse_reference(args.reference)
        if request_id is None or not inbox.set_status(
                request_id, STATUS_COMMANDS[args.command], command_line_user(), args.note):
            print(f"No request {args.reference}.", file=sys.stderr)
            return 1
        print(f"CB-{request_id} marked {STATUS_COMMANDS[args.command]}.")
    else:
        print_requests(inbox.views(zone, Filters(show=SHOW_ALL if args.all else SHOW_OPEN)))
        print_pending_deliveries(store)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="List, export and close call-back requests.")
    parser.add_argument("--all", action="store_true", help="include requests marked done")
    commands = parser.add_subparsers(dest="command")
    export = commands.add_parser("export", help="write all requests to a CSV file")
    export.add_argument("file", type=Path)
    for name, status in STATUS_COMMANDS.items():
        change = commands.add_parser(name, help=f"set a request's status to {status!r}")
        change.add_argument("reference", help="CB-12 or 12")
        change.add_argument("--note", default="", help="what was agreed, for the other staff")
    args = parser.parse_args(argv)

    try:
        zone = ZoneInfo(load_clinic().timezone)
    except ClinicConfigError as error:
        print(error, file=sys.stderr)
        return 2
    store = CallbackStore(store_url())
    return run_staff_command(lambda: run(args, store, zone))


if __name__ == "__main__":
    sys.exit(main())
