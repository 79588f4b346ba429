"""The CSV export of call-back requests, for ``make requests ARGS="export ..."`` and the console.

The CSV is opened by staff in a spreadsheet, and its cells hold what visitors
typed. A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return would be run as a formula (``=HYPERLINK(...)``, ``=cmd|...``), so such a
cell gets a leading apostrophe, which spreadsheets show as text; phone numbers
(``+61...``) are written the same way, so they stay text instead of becoming a
number or a formula. Both outlets write through ``write_rows``, so neither can
forget it. Times are the clinic's (assistant/staff/formatting.py).
"""

from __future__ import annotations

import csv
import io
from typing import Iterable, List, TextIO

from assistant.staff.formatting import RequestView

COLUMNS = ["reference", "created_at", "status", "name", "contact", "contact_type",
           "preferred_time", "reason", "changed_by", "changed_at", "change_note"]
# What makes a spreadsheet treat a cell as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def spreadsheet_safe(value: str) -> str:
    """The cell as text: a leading apostrophe when it could be read as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def row(item: RequestView) -> List[str]:
    return [item.reference, item.received_full, item.status, item.name, item.contact_stored,
            item.contact_type, item.preferred_time, item.note, item.changed_by,
            item.changed_at_full, item.change_note]


def write_rows(handle: TextIO, items: Iterable[RequestView]) -> None:
    """In reference order (oldest first), as a spreadsheet is read, whatever the list's order."""
    writer = csv.writer(handle)
    writer.writerow(COLUMNS)
    writer.writerows([spreadsheet_safe(cell) for cell in row(item)]
                     for item in sorted(items, key=lambda item: item.id))


def csv_text(items: Iterable[RequestView]) -> str:
    buffer = io.StringIO()
    write_rows(buffer, items)
    return buffer.getvalue()
