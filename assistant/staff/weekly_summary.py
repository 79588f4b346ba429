"""The practice manager's weekly e-mail: last week's headline figures and a link to the report.

Scheduled by the notifier itself (no cron): on each pass ``WeeklySummary.deliver_due``
asks whether this week's moment (``weekly_summary`` in clinic.yml: a day and a
time in the clinic's time zone) has passed and this week's summary is not sent
yet. The figures cover the seven days before that day, in the clinic's time
zone, from the same analysis as ``make report`` (assistant/insights/).

Sent once per week, across restarts and with several notifiers: the week is
recorded in the requests database (``weekly_summary_sent``, keyed by ISO week),
claimed before sending (a conditional insert/update, like the outbox) and
marked sent afterwards. A failed send is retried with the outbox's back-off
while the week lasts. A crash between sending and marking means one more copy
after the lease, with the same ``Message-ID`` (from the week and the clinic's
address), which mail programs recognise as a repeat. A bot that was off at the
scheduled moment sends the summary when it starts later that week; a week it
was off entirely is skipped rather than sent late.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from functools import cache
from html import escape
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from assistant.callback_requests.email_alerts import DEFAULT_BACKOFF, message_id
from assistant.callback_requests.notifier import Backoff, Clock
from assistant.callback_requests.store import CallbackStore, utcnow
from assistant.insights.analyse import Analyser
from assistant.insights.events import default_store_url, read_events
from assistant.kb.knowledge import cached_knowledge
from assistant.settings.clinic import Clinic
from assistant.settings.email import WeeklySummarySchedule
from assistant.settings.smtp import SmtpSettings
from assistant.shared.mailer import send
from assistant.shared.private_files import private_umask
from assistant.shared.staff_email import StaffEmail, compose

logger = logging.getLogger("assistant.staff.weekly_summary")

# Where the staff console shows the report for a period (assistant/staff/, issue 18
# part A); since/until are the first and last day, both included, as `make report`.
STAFF_REPORT_PATH = "/staff/report"
TOP_TOPICS = 3

metadata = MetaData()
SENT = Table(
    "weekly_summary_sent", metadata,
    Column("week", String(10), primary_key=True),  # ISO week in the clinic's zone: "2026-W49"
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),  # claimed until / retry at
    Column("sent_at", DateTime(timezone=True)),
    Column("last_error", Text),
)


@dataclass(frozen=True)
class SummaryWeek:
    key: str  # "2026-W49"
    first_day: date  # the seven days covered, in the clinic's zone
    last_day: date
    since: datetime  # the same, as aware datetimes: [since, until)
    until: datetime


def due_week(now: datetime, schedule: WeeklySummarySchedule, zone: ZoneInfo) -> Optional[SummaryWeek]:
    """This week's summary if its moment has passed (clinic time), else None."""
    local = now.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    day = monday + timedelta(days=schedule.weekday)
    if local < datetime.combine(day, schedule.at, tzinfo=zone):
        return None
    year, week, _ = day.isocalendar()
    first = day - timedelta(days=7)
    return SummaryWeek(key=f"{year}-W{week:02d}", first_day=first, last_day=day - timedelta(days=1),
                       since=datetime.combine(first, time(0), tzinfo=zone),
                       until=datetime.combine(day, time(0), tzinfo=zone))


def tracker_url() -> str:
    """The conversations' store, as `make report` reads it."""
    return os.environ.get("REPORT_DB_URL") or default_store_url()


def headline_figures(clinic: Clinic, url: str, since: datetime, until: datetime) -> Dict[str, Any]:
    analyser = Analyser(cached_knowledge(), clinic.phone_link, clinic.booking_url, ZoneInfo(clinic.timezone))
    for row in read_events(url, since, until):
        analyser.add(row)
    return analyser.summary()


def report_link(base_url: str, week: SummaryWeek) -> str:
    return (f"{base_url.rstrip('/')}{STAFF_REPORT_PATH}"
            f"?since={week.first_day.isoformat()}&until={week.last_day.isoformat()}")


def _lines(summary: Dict[str, Any]) -> List[Tuple[str, str]]:
    totals, funnel, urgent = summary["totals"], summary["funnel"], summary["escalations"]
    topics = ", ".join(f"{t['label']} ({t['count']})" for t in summary["topics"][:TOP_TOPICS]) or "-"
    return [
        ("Conversations", f"{totals['conversations']} from {totals['visitors']} visitors "
                          f"({totals['returning_visitors']} came back)"),
        ("Messages from visitors",
         f"{totals['messages']}, {100 * totals['unanswered_rate']:.0f}% not answered"),
        ("Call-back requests sent", str(funnel["confirmed_callback"])),
        ("Tapped the phone number", str(funnel["chose_to_call"])),
        ("Opened online booking", str(funnel["chose_to_book_online"])),
        ("Emergency / crisis replies", f"{urgent['emergency']} / {urgent['crisis']}"),
        ("Asked about most", topics),
    ]


def compose_summary(summary: Dict[str, Any], week: SummaryWeek, clinic: Clinic, settings: SmtpSettings,
                    to: str, link: str) -> EmailMessage:
    period = f"{week.first_day:%a %d %b} to {week.last_day:%a %d %b %Y}"
    lines = _lines(summary)
    return compose(StaffEmail(
        subject=f"Chat assistant, week of {week.first_day:%d %b %Y}: {clinic.name}", to=to,
        message_id=message_id("weekly-summary", 0, f"{week.key}:{clinic.email}", settings.sender_domain),
        intro=f"What patients asked the chat assistant of {clinic.name}, {period}:",
        text_fields=lines, html_fields=[(label, escape(value)) for label, value in lines],
        link=link, link_label="The full report", link_html_label="The full report",
        setting="weekly_summary"), settings)


@cache
def _create_table(engine: Engine, url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    with private_umask():
        metadata.create_all(engine)


class WeeklySummary:
    """Sends the manager's summary once per week (the notifier calls `deliver_due`)."""

    label = "weekly summary"

    def __init__(self, store: CallbackStore, clinic: Clinic, settings: SmtpSettings, base_url: str,
                 tracker: Optional[str] = None, backoff: Backoff = DEFAULT_BACKOFF,
                 clock: Clock = utcnow) -> None:
        if clinic.weekly_summary is None:
            raise ValueError("the clinic has no weekly_summary")
        self.schedule: WeeklySummarySchedule = clinic.weekly_summary
        self.store = store
        self.clinic = clinic
        self.zone = ZoneInfo(clinic.timezone)
        self.settings = settings
        self.base_url = base_url
        self.tracker = tracker or tracker_url()
        self.backoff = backoff
        self.clock = clock
        # the analysis of a busy week takes seconds; the send up to the timeout
        self.lease = timedelta(seconds=settings.timeout * 3 + 120)

    def describe(self) -> str:
        return (f"weekly summary on {self.schedule.day_name} at {self.schedule.at:%H:%M} "
                f"({self.clinic.timezone})")

    def _claim(self, week: str, now: datetime) -> bool:
        engine = self.store.engine
        _create_table(engine, self.store.url)
        try:
            with engine.begin() as connection:
                row = connection.execute(select(SENT.c.sent_at).where(SENT.c.week == week)).first()
                if row is None:
                    connection.execute(insert(SENT).values(week=week, attempts=0,
                                                           next_attempt_at=now + self.lease))
                    return True
                if row.sent_at is not None:
                    return False
                result = connection.execute(
                    update(SENT).where(SENT.c.week == week, SENT.c.sent_at.is_(None),
                                       SENT.c.next_attempt_at <= now)
                    .values(next_attempt_at=now + self.lease))
                return bool(result.rowcount == 1)
        except IntegrityError:  # another notifier inserted it first
            return False

    def _record(self, week: str, error: Optional[str]) -> int:
        now = self.clock()
        with self.store.engine.begin() as connection:
            attempts = int(connection.execute(
                select(SENT.c.attempts).where(SENT.c.week == week)).scalar_one()) + 1
            values: Dict[str, Any] = {"attempts": attempts, "last_error": error}
            if error is None:
                values["sent_at"] = now
            else:
                values["next_attempt_at"] = now + self.backoff.after(attempts)
            connection.execute(update(SENT).where(SENT.c.week == week).values(**values))
        return attempts

    def deliver_due(self) -> int:
        """Send this week's summary if it is due and not sent yet; 1 if it was sent now."""
        now = self.clock()
        week = due_week(now, self.schedule, self.zone)
        if week is None or not self._claim(week.key, now):
            return 0
        try:
            summary = headline_figures(self.clinic, self.tracker, week.since, week.until)
            message = compose_summary(summary, week, self.clinic, self.settings, self.schedule.to,
                                      report_link(self.base_url, week))
            error = send(self.settings, message)
        except Exception as failure:  # the tracker store is down: retry like a failed send
            error = f"figures: {type(failure).__name__}"
        attempts = self._record(week.key, error)
        if error is None:
            logger.info("weekly summary for %s e-mailed to the manager", week.key)
            return 1
        logger.warning("weekly summary for %s failed (%s, attempt %d); retrying in %ds", week.key, error,
                       attempts, self.backoff.after(attempts).total_seconds())
        return 0

    def sent_weeks(self) -> List[str]:
        _create_table(self.store.engine, self.store.url)
        with self.store.engine.connect() as connection:
            return [row.week for row in connection.execute(
                select(SENT.c.week).where(SENT.c.sent_at.is_not(None)).order_by(SENT.c.week))]
