"""E-mail the clinic about each new call-back request, from the outbox.

Small clinics have no system to take the webhook: the receptionist needs an
e-mail. The bot's form action writes the request and, when clinic.yml sets
``notify_email``, an e-mail outbox row in the same transaction
(assistant/callback_requests/store.py), and answers the visitor at once. The notifier
process (assistant/callback_requests/notifier.py) runs ``EmailAlerts.deliver_due`` on each pass:

* one message per request, to every ``notify_email`` address at once, with
  the reference, name, contact, preferred time, note and a link to the request
  in the staff console, as plain text and as (escaped) HTML;
* a refused connection, a timeout or a 4xx/5xx reply is recorded and retried
  with the webhook's back-off (5 s, 10 s, 20 s ... at most hourly); nothing is
  dropped, and the row is marked delivered only when the server accepted it;
* each attempt is claimed atomically, so two notifiers never send it twice.

A crash between the server accepting the message and the row being marked
delivered means it is sent again once the claim's lease runs out. That copy
carries the same ``Message-ID`` (derived from the outbox row and the request's
unique key, see ``message_id``), so mail programs that de-duplicate (Gmail,
Outlook) show it once and anyone else can tell it is a repeat.

Logs name the request (CB-12), never the visitor's details.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from html import escape
from typing import List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

import phonenumbers

from assistant.callback_requests.notifier import Backoff, Clock
from assistant.callback_requests.store import CallbackRequest, CallbackStore, EmailOutboxMessage, utcnow
from assistant.settings.clinic import Clinic
from assistant.settings.smtp import SmtpSettings
from assistant.shared.mailer import send
from assistant.shared.staff_email import StaffEmail, compose

logger = logging.getLogger("assistant.callback_requests.email_alerts")

REFERENCE_PREFIX = "CB-"
# Where the staff console shows one request (assistant/staff/routes.py, issue 18
# part A): its inbox (``Paths.inbox``) searched for the reference, whatever the
# request's status, scrolled to its row (each row's id is its reference). The
# console has no page per request; should it get one, only this line changes.
STAFF_REQUEST_PATH = "/staff/requests?show=all&q={reference}#{reference}"
DEFAULT_BACKOFF = Backoff()  # the webhook's: 5 s, 10 s, 20 s ... at most hourly


def request_link(base_url: str, request_id: int) -> str:
    return base_url.rstrip("/") + STAFF_REQUEST_PATH.format(reference=f"{REFERENCE_PREFIX}{request_id}")


def message_id(kind: str, row_id: int, unique: str, domain: str) -> str:
    """The same Message-ID on every attempt for one outbox row, unguessable from
    outside (it hashes the row's unique key) and different across databases."""
    digest = hashlib.sha256(f"{kind}:{row_id}:{unique}".encode()).hexdigest()[:20]
    return f"<{kind}.{row_id}.{digest}@{domain}>"


def _as_utc(moment: Optional[datetime]) -> datetime:
    if moment is None:
        return utcnow()
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def shown_contact(request: CallbackRequest, region: str) -> Tuple[str, str]:
    """(what staff dial or type, its tel:/mailto: link): a phone in the clinic's
    country in national format ("0412 345 678"), any other in international."""
    contact = str(request.contact)
    if request.contact_type != "phone":
        return contact, f"mailto:{contact}"
    try:
        parsed = phonenumbers.parse(contact, None)
    except phonenumbers.NumberParseException:
        return contact, f"tel:{contact}"
    local = phonenumbers.region_code_for_number(parsed) == region
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL if local
                                      else phonenumbers.PhoneNumberFormat.INTERNATIONAL), f"tel:{contact}"


def compose_alert(request: CallbackRequest, clinic: Clinic, settings: SmtpSettings, base_url: str,
                  recipients: Sequence[str], outbox_id: int) -> EmailMessage:
    reference = f"{REFERENCE_PREFIX}{request.id}"
    received = _as_utc(request.created_at).astimezone(ZoneInfo(clinic.timezone))
    when = received.strftime("%a %d %b %Y, %H:%M %Z")
    contact, contact_href = shown_contact(request, clinic.region)
    link = request_link(base_url, int(request.id))
    note = str(request.reason or "")
    fields = [("Reference", reference), ("Name", str(request.name)),
              ("Contact", f"{contact} ({request.contact_type})"),
              ("Preferred time", str(request.preferred_time)), ("Note", note or "-"), ("Received", when)]

    return compose(StaffEmail(
        subject=f"New call-back request {reference}", to=", ".join(recipients),
        message_id=message_id("callback", outbox_id, str(request.request_key), settings.sender_domain),
        intro=f"A visitor to the chat on your website asked {clinic.name} to call back.",
        text_fields=fields,
        html_fields=[
            ("Name", escape(str(request.name))),
            ("Contact", f"<a href='{escape(contact_href)}'>{escape(contact)}</a>"),
            ("Preferred time", escape(str(request.preferred_time))),
            ("Note", escape(note) if note else "-"),
            ("Received", escape(when)),
        ],
        link=link, link_label="Open it in the staff console",
        link_html_label=f"Open {reference} in the staff console", setting="notify_email",
        html_heading=reference), settings)


class EmailAlerts:
    """One pass over the due e-mail alerts (the notifier calls `deliver_due`)."""

    label = "e-mail alert"

    def __init__(self, store: CallbackStore, clinic: Clinic, settings: SmtpSettings, base_url: str,
                 backoff: Backoff = DEFAULT_BACKOFF, clock: Clock = utcnow) -> None:
        if not clinic.notify_email:
            raise ValueError("the clinic has no notify_email")
        self.store = store
        self.clinic = clinic
        self.recipients: List[str] = list(clinic.notify_email)
        self.settings = settings
        self.base_url = base_url
        self.backoff = backoff
        self.clock = clock
        # a claimed attempt is someone else's until it has had time to finish
        self.lease = timedelta(seconds=settings.timeout * 3 + 30)

    def describe(self) -> str:
        return (f"e-mailing call-back requests to {len(self.recipients)} address(es) via "
                f"{self.settings.host}:{self.settings.port} ({self.settings.security})")

    def deliver_due(self) -> int:
        """Send every due alert once; returns how many the SMTP server accepted."""
        delivered = 0
        now = self.clock()
        for outbox_id, request in self.store.due_notifications(now, outbox=EmailOutboxMessage):
            if not self.store.claim(outbox_id, now, self.lease, outbox=EmailOutboxMessage):
                continue  # another notifier took it
            message = compose_alert(request, self.clinic, self.settings, self.base_url,
                                    self.recipients, outbox_id)
            error = send(self.settings, message)
            if error is None:
                self.store.mark_delivered(outbox_id, self.clock(), outbox=EmailOutboxMessage)
                logger.info("call-back request %s%s e-mailed to the clinic", REFERENCE_PREFIX, request.id)
                delivered += 1
                continue
            attempts = self.store.mark_failed(outbox_id, error, self.clock(), self.backoff.after,
                                              outbox=EmailOutboxMessage)
            logger.warning("e-mail alert for call-back request %s%s failed (%s, attempt %d); retrying in %ds",
                           REFERENCE_PREFIX, request.id, error, attempts,
                           self.backoff.after(attempts).total_seconds())
        return delivered
