"""The call-back inbox: listing, searching and changing requests, with the audit trail.

Used by the console (assistant/staff/routes.py) and by ``make requests``, so a
request marked done in one shows who and when in the other. Every change
writes a status row (who, when, the note) and an audit row in the same
transaction; a deletion ("forget me" by phone) removes the request, its
outbox row and its status notes, scrubs them from the SQLite file
(assistant/shared/sqlite_hygiene.py), and leaves only "CB-12 deleted by ..." in the audit.

The list is small (a clinic's open requests), so the text search runs over the
formatted rows: "0491 570" finds a number stored as +61491570...
"""

from __future__ import annotations

import getpass
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Callable, Dict, List, Optional, Tuple, Type

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.callback_requests.store import CallbackRequest, CallbackStore, StoreUnavailable, utcnow
from assistant.shared.sqlite_hygiene import scrub
from assistant.staff.formatting import (
    DONE,
    OPEN,
    OPEN_STATUSES,
    REFERENCE_PREFIX,
    RequestView,
    StatusChange,
    as_utc,
    parse_reference,
    view,
)
from assistant.staff.tables import AuditEntry, RequestUpdate, ensure_tables

MAX_NOTE_CHARS = 1000
# A search that is a phone number, or part of one, in any format.
PHONE_QUERY = re.compile(r"\+?[\d ()-]*\d[\d ()-]*")
# Filter values of the list's status menu.
SHOW_OPEN = "open"
SHOW_DONE = "done"
SHOW_ALL = "all"
SHOW_CHOICES = (SHOW_OPEN, SHOW_DONE, SHOW_ALL)
# Audit actions.
SIGNED_IN = "signed_in"
SIGN_IN_FAILED = "sign_in_failed"
SIGNED_OUT = "signed_out"
STATUS_SET = "status_"  # + the new status: status_called, status_done, status_open
DELETED = "deleted"
EXPORTED = "exported"


def command_line_user() -> str:
    """Who made a change from the server's terminal (make requests / make staff)."""
    return f"{getpass.getuser()} (command line)"


def run_staff_command(command: Callable[[], int], refused: Tuple[Type[Exception], ...] = ()) -> int:
    """A staff command's exit code, never a traceback: a refusal (`refused`) is one
    line and 1, the request database being down is one line and 2."""
    try:
        return command()
    except refused as error:
        print(f"Not done: {error}.", file=sys.stderr)
        return 1
    except StoreUnavailable as error:
        print(f"The request database is unavailable: {error}", file=sys.stderr)
        return 2


@dataclass(frozen=True)
class Filters:
    show: str = SHOW_OPEN
    text: str = ""
    since: Optional[date] = None  # clinic dates, inclusive
    until: Optional[date] = None


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    staff: str
    action: str
    request_id: Optional[int]
    detail: str


def _start_of(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def _matches(item: RequestView, text: str) -> bool:
    """A phone number in any format ("0491 570 156", "+61 491..."); else every word
    is in the request, and a reference ("CB-12") must be that one (not CB-120)."""
    if PHONE_QUERY.fullmatch(text.strip()):
        digits = re.sub(r"\D", "", text)
        return digits in re.sub(r"\D", "", item.contact) or digits in re.sub(r"\D", "", item.contact_stored)
    haystack = " ".join([item.name, item.contact, item.contact_stored,
                         item.preferred_time, item.note, item.change_note]).lower()
    for word in text.lower().split():
        if word.startswith(REFERENCE_PREFIX.lower()) and parse_reference(word) is not None:
            if parse_reference(word) != item.id:
                return False
        elif word not in haystack:
            return False
    return True


class Inbox:
    def __init__(self, store: CallbackStore) -> None:
        self.store = store
        self.engine = ensure_tables(store)

    def _session(self) -> Session:
        return Session(self.engine, future=True, expire_on_commit=False)

    # ---- reading ------------------------------------------------------------

    def views(self, zone: tzinfo, filters: Filters = Filters(),
              now: Optional[datetime] = None) -> List[RequestView]:
        """Open requests first, newest at the top (then done ones, newest first)."""
        now = now or utcnow()
        query = select(CallbackRequest)
        if filters.show == SHOW_OPEN:
            query = query.where(CallbackRequest.status.in_(OPEN_STATUSES))
        elif filters.show == SHOW_DONE:
            query = query.where(CallbackRequest.status == DONE)
        if filters.since is not None:
            query = query.where(CallbackRequest.created_at >= as_utc(_start_of(filters.since, zone)))
        if filters.until is not None:
            end = _start_of(filters.until + timedelta(days=1), zone)
            query = query.where(CallbackRequest.created_at < as_utc(end))
        with self._session() as session:
            requests = list(session.scalars(query))
            changes = self._latest_changes(session, [int(r.id) for r in requests])
        requests.sort(key=lambda r: (r.status not in OPEN_STATUSES, -as_utc(r.created_at).timestamp(),
                                     -int(r.id)))
        items = [view(r, changes.get(int(r.id)), zone, now) for r in requests]
        return [item for item in items if _matches(item, filters.text)] if filters.text.strip() else items

    def view_of(self, request_id: int, zone: tzinfo) -> Optional[RequestView]:
        with self._session() as session:
            request = session.get(CallbackRequest, request_id)
            if request is None:
                return None
            change = self._latest_changes(session, [request_id]).get(request_id)
        return view(request, change, zone, utcnow())

    @staticmethod
    def _latest_changes(session: Session, ids: List[int]) -> Dict[int, StatusChange]:
        if not ids:
            return {}
        rows = session.scalars(select(RequestUpdate).where(RequestUpdate.request_id.in_(ids))
                               .order_by(RequestUpdate.id))
        return {int(u.request_id): StatusChange(str(u.status), str(u.staff), u.at, u.note) for u in rows}

    def summary(self) -> Dict[str, int]:
        """What the console's poll needs: how many are open and the newest reference."""
        with self._session() as session:
            open_count = session.scalar(select(func.count()).select_from(CallbackRequest)
                                        .where(CallbackRequest.status.in_(OPEN_STATUSES)))
            latest = session.scalar(select(func.max(CallbackRequest.id)))
        return {"open": int(open_count or 0), "latest": int(latest or 0)}

    def audit(self, limit: int = 200) -> List[AuditLine]:
        with self._session() as session:
            rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
            return [AuditLine(r.at, str(r.staff), str(r.action), r.request_id, str(r.detail or ""))
                    for r in rows]

    # ---- changing -------------------------------------------------------------

    def record(self, staff: str, action: str, request_id: Optional[int] = None,
               detail: Optional[str] = None, client: Optional[str] = None) -> None:
        with self._session() as session, session.begin():
            session.add(AuditEntry(at=utcnow(), staff=staff, action=action, request_id=request_id,
                                   detail=detail, client=client))

    def set_status(self, request_id: int, status: str, staff: str, note: str = "",
                   client: Optional[str] = None) -> bool:
        """Mark a request called, done or open again; False when there is no such request."""
        if status not in (OPEN,) + OPEN_STATUSES + (DONE,):
            raise ValueError(f"unknown status {status!r}")
        now = utcnow()
        with self._session() as session, session.begin():
            request = session.get(CallbackRequest, request_id)
            if request is None:
                return False
            request.status = status
            request.closed_at = now if status == DONE else None
            session.add(RequestUpdate(request_id=request_id, at=now, staff=staff, status=status,
                                      note=note.strip()[:MAX_NOTE_CHARS] or None))
            session.add(AuditEntry(at=now, staff=staff, action=STATUS_SET + status,
                                   request_id=request_id, client=client))
        return True

    def delete(self, request_id: int, staff: str, client: Optional[str] = None) -> bool:
        """Forget a request (and its notes); the audit keeps only its number."""
        with self._session() as session, session.begin():
            request = session.get(CallbackRequest, request_id)
            if request is None:
                return False
            CallbackStore._delete(session, request)  # with its outbox rows and notes, as "forget me"
            session.add(AuditEntry(at=utcnow(), staff=staff, action=DELETED, request_id=request_id,
                                   client=client))
        scrub(self.engine)
        return True

