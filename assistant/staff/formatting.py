"""How a call-back request is shown to staff, in the console and in ``make requests``.

Both used to disagree with the clinic: times in UTC although clinic.yml names
the clinic's time zone, phones as ``+61491570156``, notes cut at 40 characters,
"done" without who or when. Both now build a ``RequestView`` here, so they show
the same thing:

* times in the clinic's zone: "today 14:05", "yesterday 09:10", "Mon 3 Nov"
  (and the year when it is not this year), with the age ("2 h ago");
* a phone in the national format ("0491 570 156") with a ``tel:`` link in
  E.164, or the e-mail address with a ``mailto:`` link;
* the full preferred time and note;
* the latest status change: who, when, and their note.

Stored times are UTC; SQLite gives them back without a zone, so a naive time is
taken as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Optional

import phonenumbers

from assistant.callback_requests.store import CallbackRequest

# Request statuses. "called" is still waiting for an outcome, so it counts as open.
OPEN = "open"
CALLED = "called"
DONE = "done"
STATUSES = (OPEN, CALLED, DONE)
OPEN_STATUSES = (OPEN, CALLED)
PHONE = "phone"
REFERENCE_PREFIX = "CB-"


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def reference(request_id: int) -> str:
    return f"{REFERENCE_PREFIX}{request_id}"


def parse_reference(text: str) -> Optional[int]:
    """12 from "CB-12", "cb-12" or "12"; None for anything else."""
    digits = text.strip().upper().removeprefix(REFERENCE_PREFIX)
    return int(digits) if digits.isdigit() else None


def clinic_time(moment: datetime, zone: tzinfo, now: datetime) -> str:
    """ "today 14:05", "yesterday 09:10", "Mon 3 Nov", "Mon 3 Nov 2025"."""
    local = as_utc(moment).astimezone(zone)
    today = as_utc(now).astimezone(zone).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return f"today {clock}"
    if local.date() == today - timedelta(days=1):
        return f"yesterday {clock}"
    day = f"{local:%a} {local.day} {local:%b}"
    return day if local.year == today.year else f"{day} {local.year}"


def clinic_timestamp(moment: datetime, zone: tzinfo) -> str:
    """The full local time, for a tooltip and the CSV: "2026-11-03 14:05 AEDT"."""
    return as_utc(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def clinic_date(moment: datetime, zone: tzinfo) -> date:
    return as_utc(moment).astimezone(zone).date()


def age(moment: datetime, now: datetime) -> str:
    """How long ago, roughly: "just now", "12 min", "3 h", "2 days"."""
    seconds = max(0, int((as_utc(now) - as_utc(moment)).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return f"{days} day{'s' if days > 1 else ''} ago"


def national_phone(e164: str) -> str:
    """ "0491 570 156" for "+61491570156" (the stored number as given when it can't be parsed)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


@dataclass(frozen=True)
class StatusChange:
    """The latest change of a request's status, as stored (callback_request_updates)."""

    status: str
    staff: str
    at: datetime
    note: Optional[str]


@dataclass(frozen=True)
class RequestView:
    id: int
    reference: str
    status: str
    received: str  # "today 14:05"
    received_full: str  # "2026-11-03 14:05 AEDT"
    age: str
    name: str
    contact: str  # as staff dial or type it
    contact_href: str  # tel:+61... or mailto:...
    contact_stored: str  # E.164 or the normalised e-mail (CSV)
    contact_type: str
    preferred_time: str
    note: str
    changed_by: str
    changed_at: str
    changed_at_full: str
    change_note: str

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def view(request: CallbackRequest, change: Optional[StatusChange], zone: tzinfo,
         now: datetime) -> RequestView:
    created = request.created_at or now
    phone = request.contact_type == PHONE
    return RequestView(
        id=int(request.id),
        reference=reference(int(request.id)),
        status=str(request.status),
        received=clinic_time(created, zone, now),
        received_full=clinic_timestamp(created, zone),
        age=age(created, now),
        name=str(request.name),
        contact=national_phone(request.contact) if phone else str(request.contact),
        contact_href=f"tel:{request.contact}" if phone else f"mailto:{request.contact}",
        contact_stored=str(request.contact),
        contact_type=str(request.contact_type),
        preferred_time=str(request.preferred_time),
        note=str(request.reason or ""),
        changed_by=change.staff if change else "",
        changed_at=clinic_time(change.at, zone, now) if change else "",
        changed_at_full=clinic_timestamp(change.at, zone) if change else "",
        change_note=(change.note or "") if change else "",
    )


def describe_change(item: RequestView) -> str:
    """ "done by ana@clinic.example, today 14:05: left a message" (or "")."""
    if not item.changed_by:
        return ""
    text = f"{item.status if item.status != OPEN else 'reopened'} by {item.changed_by}, {item.changed_at}"
    return f"{text}: {item.change_note}" if item.change_note else text
