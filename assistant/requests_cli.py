"""Staff command for call-back requests.

    make requests                          # list open requests
    make requests ARGS="--all"             # include done ones
    make requests ARGS="export out.csv"    # CSV for a spreadsheet (all requests)
    make requests ARGS="done 12"           # mark request CB-12 as done

Reads the same database as the bot (REQUESTS_DB_URL, default var/requests.db).

The CSV is opened by staff in a spreadsheet, and its cells hold what visitors
typed. A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return would be run as a formula (``=HYPERLINK(...)``, ``=cmd|...``), so such a
cell gets a leading apostrophe, which spreadsheets show as text; phone numbers
(``+61...``) are written the same way, so they stay text instead of becoming a
number or a formula. The file is private to the user who wrote it (mode 600).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import List, Optional

from assistant.callbacks import CallbackRequest, CallbackStore, StoreUnavailable, store_url
from assistant.private_files import PRIVATE_FILE_MODE, private_umask

COLUMNS = ["reference", "created_at", "status", "name", "contact", "contact_type",
           "preferred_time", "reason"]
# What makes a spreadsheet treat a cell as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """The cell as text: a leading apostrophe when it could be read as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def write_csv(path: Path, requests: List[CallbackRequest]) -> None:
    with private_umask(), path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows([spreadsheet_safe(cell) for cell in row(r)] for r in requests)
    path.chmod(PRIVATE_FILE_MODE)  # also when the file existed before


def row(request: CallbackRequest) -> List[str]:
    return [
        f"CB-{request.id}",
        request.created_at.strftime("%Y-%m-%d %H:%M UTC") if request.created_at else "",
        request.status,
        request.name,
        request.contact,
        request.contact_type,
        request.preferred_time,
        request.reason or "",
    ]


def print_table(requests: List[CallbackRequest]) -> None:
    if not requests:
        print("No call-back requests.")
        return
    rows = [COLUMNS] + [row(r) for r in requests]
    widths = [min(40, max(len(r[i]) for r in rows)) for i in range(len(COLUMNS))]
    for values in rows:
        print("  ".join(v[:40].ljust(w) for v, w in zip(values, widths, strict=True)).rstrip())


def print_pending_deliveries(store: CallbackStore) -> None:
    """Warn staff when the clinic's webhook has not accepted some requests yet."""
    pending = [m for m in store.pending_deliveries() if m.attempts > 0]
    if pending:
        last = pending[-1]
        print(f"\n{len(pending)} request(s) not yet accepted by the clinic's webhook; retrying "
              f"(last error: {last.last_error}, {last.attempts} attempt(s)).")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="List, export and close call-back requests.")
    parser.add_argument("--all", action="store_true", help="include requests marked done")
    commands = parser.add_subparsers(dest="command")
    export = commands.add_parser("export", help="write all requests to a CSV file")
    export.add_argument("file", type=Path)
    done = commands.add_parser("done", help="mark a request as done")
    done.add_argument("reference", help="CB-12 or 12")
    args = parser.parse_args(argv)

    store = CallbackStore(store_url())
    try:
        if args.command == "export":
            write_csv(args.file, store.requests())
            print(f"wrote {args.file}")
        elif args.command == "done":
            reference = args.reference.upper().removeprefix("CB-")
            if not reference.isdigit() or not store.mark_done(int(reference)):
                print(f"No request {args.reference}.", file=sys.stderr)
                return 1
            print(f"CB-{reference} marked done.")
        else:
            print_table(store.requests(None if args.all else "open"))
            print_pending_deliveries(store)
    except StoreUnavailable as error:
        print(f"The request database is unavailable: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
