"""E-mail alerts and the weekly summary: a real SMTP server on loopback (aiosmtpd,
tests/smtp_receiver.py), a real SQLite store, a controllable clock."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from datetime import datetime, time, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Dict, Iterator, Optional
from zoneinfo import ZoneInfo

import pytest

from assistant.callback_requests.email_alerts import EmailAlerts, message_id, shown_contact
from assistant.callback_requests.notifier import channels_for, run
from assistant.callback_requests.store import (
    CallbackDraft,
    CallbackRequest,
    CallbackStore,
    EmailOutboxMessage,
    OutboxMessage,
)
from assistant.insights.generate import generate
from assistant.ops import launcher
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import Clinic, ClinicConfigError, load_clinic
from assistant.settings.email import WeeklySummarySchedule
from assistant.settings.smtp import SmtpConfigError, SmtpSettings, smtp_settings
from assistant.staff.weekly_summary import WeeklySummary, due_week
from tests.helpers.callbacks import Clock
from tests.smtp_receiver import PASSWORD, USERNAME, SmtpReceiver, free_port, self_signed_certificate

STAFF = ["reception@harbourside-physio.example", "ana@harbourside-physio.example"]
BASE_URL = "https://bot.harbourside-physio.example"
SENDER = "Harbourside chat <bot@harbourside-physio.example>"
SYDNEY = ZoneInfo("Australia/Sydney")
MONDAY_8AM = WeeklySummarySchedule(weekday=0, at=time(8, 0), to="manager@clinic.example")


def clinic_with_email(**changes: object) -> Clinic:
    clinic = load_clinic(PROJECT_ROOT / "clinic.yml")
    return Clinic(**{**clinic.__dict__, "notify_email": STAFF, **changes})


def plain_settings(port: int, **env: str) -> SmtpSettings:
    settings = smtp_settings({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
                              "SMTP_FROM": SENDER, **env})
    return dataclasses.replace(settings, timeout=5.0)


def draft(n: int, **changes: Optional[str]) -> CallbackDraft:
    fields: Dict[str, Optional[str]] = dict(
        request_key=f"key-{n}", conversation_id=f"conv-{n}", name=f"Visitor {n}", contact="+61412345678",
        contact_type="phone", preferred_time="weekday mornings", reason="sore neck since Monday")
    fields.update(changes)
    return CallbackDraft(**fields)  # type: ignore[arg-type]


def text_and_html(message: EmailMessage) -> tuple:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


@pytest.fixture()
def store(tmp_path: Path) -> CallbackStore:
    return CallbackStore(f"sqlite:///{tmp_path / 'requests.db'}")


@pytest.fixture()
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as running:
        yield running


def test_exactly_one_email_per_request_with_both_parts(store: CallbackStore, smtp: SmtpReceiver) -> None:
    first, _ = store.submit(draft(1, name="Sam <script>alert(1)</script> O'Neil"), notify=False, email=True)
    store.submit(draft(1), notify=False, email=True)  # the same confirmation again: stored once
    second, _ = store.submit(draft(2, contact="sam@mail.example", contact_type="email", reason=None),
                             notify=False, email=True)
    clock = Clock()
    alerts = EmailAlerts(store, clinic_with_email(), plain_settings(smtp.port), BASE_URL, clock=clock)

    assert alerts.deliver_due() == 2
    clock.advance(hours=3)
    assert alerts.deliver_due() == 0  # delivered means never again
    assert store.outbox(EmailOutboxMessage)[0].delivered_at is not None
    assert store.outbox(OutboxMessage) == []  # no webhook configured: no webhook row

    [one, two] = sorted(smtp.received, key=lambda entry: entry["message"]["Subject"])
    assert sorted(one["rcpt_tos"]) == sorted(STAFF) and one["mail_from"] == "bot@harbourside-physio.example"
    alert = one["message"]
    assert alert["Subject"] == f"New call-back request CB-{first.id}"
    assert alert["Message-ID"] == message_id("callback", store.outbox(EmailOutboxMessage)[0].id, "key-1",
                                             "harbourside-physio.example")
    text, html = text_and_html(alert)
    for expected in (f"CB-{first.id}", "Sam <script>alert(1)</script> O'Neil", "0412 345 678",
                     "weekday mornings", "sore neck since Monday",
                     f"{BASE_URL}/staff/requests?show=all&q=CB-{first.id}#CB-{first.id}"):
        assert expected in text
    assert "<script>" not in html and "Sam &lt;script&gt;alert(1)&lt;/script&gt; O&#x27;Neil" in html
    assert "href='tel:+61412345678'" in html
    assert f"href='{BASE_URL}/staff/requests?show=all&amp;q=CB-{first.id}#CB-{first.id}'" in html
    text, html = text_and_html(two["message"])
    assert "sam@mail.example (email)" in text and "Note:           -" in text
    assert "mailto:sam@mail.example" in html and f"q=CB-{second.id}#CB-{second.id}'" in html


def test_phones_are_shown_as_staff_dial_them() -> None:
    def shown(contact: str, kind: str = "phone") -> tuple:
        return shown_contact(CallbackRequest(contact=contact, contact_type=kind), "AU")

    assert shown("+61412345678") == ("0412 345 678", "tel:+61412345678")
    assert shown("+447700900123") == ("+44 7700 900123", "tel:+447700900123")  # another country
    assert shown("sam@mail.example", "email") == ("sam@mail.example", "mailto:sam@mail.example")


def test_the_form_action_queues_one_email_and_forget_me_cancels_it(
    store: CallbackStore, smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the bot's own action: a confirmation (and a repeat) queues one alert,
    in the same transaction as the request; a visitor who asks to be forgotten
    before it went out is never e-mailed about."""
    from actions import callback as callback_actions
    from tests.helpers.callbacks import FILLED, finish

    monkeypatch.setattr(callback_actions, "current_store", lambda: store)
    monkeypatch.setattr(callback_actions, "current_clinic", clinic_with_email)
    finish(FILLED)
    finish(FILLED)
    assert len(store.outbox(EmailOutboxMessage)) == 1 and store.outbox(OutboxMessage) == []
    alerts = EmailAlerts(store, clinic_with_email(), plain_settings(smtp.port), BASE_URL)
    assert alerts.deliver_due() == 1 and alerts.deliver_due() == 0
    assert len(smtp.messages()) == 1

    store.submit(draft(2, conversation_id="visitor-1"), notify=False, email=True)  # not sent yet
    assert len(store.outbox(EmailOutboxMessage)) == 2
    store.delete_conversation("visitor-1")
    assert store.outbox(EmailOutboxMessage) == [] and store.requests() == []
    assert alerts.deliver_due() == 0 and len(smtp.messages()) == 1


def test_smtp_down_is_retried_later_and_delivered_once(store: CallbackStore) -> None:
    port = free_port()  # nothing listens there yet: the mail server is down
    request, _ = store.submit(draft(1), notify=False, email=True)
    clock = Clock()
    alerts = EmailAlerts(store, clinic_with_email(), plain_settings(port), BASE_URL, clock=clock)

    assert alerts.deliver_due() == 0
    [row] = store.outbox(EmailOutboxMessage)
    assert row.attempts == 1 and row.delivered_at is None and row.last_error

    with SmtpReceiver(port=port) as smtp:
        smtp.reply = "451 4.3.0 Try again later"  # up, but refusing for now
        clock.advance(seconds=5)
        assert alerts.deliver_due() == 0
        [row] = store.outbox(EmailOutboxMessage)
        assert row.attempts == 2 and row.last_error == "SMTPDataError 451"

        smtp.reply = None
        clock.advance(seconds=9)  # not hammered: the back-off (10 s) has not passed
        assert alerts.deliver_due() == 0 and store.outbox(EmailOutboxMessage)[0].attempts == 2
        clock.advance(seconds=2)
        assert alerts.deliver_due() == 1
        clock.advance(hours=2)
        assert alerts.deliver_due() == 0
        assert len(smtp.messages()) == 1
        assert smtp.messages()[0]["Subject"] == f"New call-back request CB-{request.id}"
    [row] = store.outbox(EmailOutboxMessage)
    assert row.attempts == 3 and row.delivered_at is not None and row.last_error is None
    assert len(store.requests()) == 1


def test_a_crash_before_marking_resends_with_the_same_message_id(
    store: CallbackStore, smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.submit(draft(1), notify=False, email=True)
    clock = Clock()
    alerts = EmailAlerts(store, clinic_with_email(), plain_settings(smtp.port), BASE_URL, clock=clock)
    with monkeypatch.context() as crash:
        crash.setattr(store, "mark_delivered", lambda *a, **k: (_ for _ in ()).throw(SystemExit(1)))
        with pytest.raises(SystemExit):
            alerts.deliver_due()  # sent, then "killed" before recording it
    assert len(smtp.messages()) == 1
    assert alerts.deliver_due() == 0  # still claimed: nobody sends it meanwhile
    clock.advance(seconds=alerts.lease.total_seconds() + 1)
    assert alerts.deliver_due() == 1
    first, again = smtp.messages()
    assert first["Message-ID"] == again["Message-ID"]  # recognisably the same message
    clock.advance(hours=1)
    assert alerts.deliver_due() == 0 and len(smtp.messages()) == 2


def test_starttls_with_a_self_signed_certificate_trusted_through_smtp_ca_file(
    store: CallbackStore, tmp_path: Path
) -> None:
    certificate = self_signed_certificate(tmp_path)
    with SmtpReceiver(certificate=certificate) as smtp:
        env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_SECURITY": "starttls",
               "SMTP_USERNAME": USERNAME, "SMTP_PASSWORD": PASSWORD, "SMTP_FROM": SENDER}
        request, _ = store.submit(draft(1), notify=False, email=True)
        clock = Clock()

        # the system's certificate authorities don't know it: refused, kept, retried
        untrusted = EmailAlerts(store, clinic_with_email(), smtp_settings(env), BASE_URL, clock=clock)
        assert untrusted.deliver_due() == 0
        [row] = store.outbox(EmailOutboxMessage)
        assert row.delivered_at is None and row.last_error and smtp.received == []

        clock.advance(seconds=10)
        trusted = EmailAlerts(store, clinic_with_email(),
                              smtp_settings({**env, "SMTP_CA_FILE": str(certificate[0])}), BASE_URL,
                              clock=clock)
        assert trusted.deliver_due() == 1
        [entry] = smtp.received
        assert entry["tls"] and entry["authenticated"]
        assert entry["message"]["Subject"] == f"New call-back request CB-{request.id}"


BAD_SETTINGS = [
    ({}, "SMTP_HOST and SMTP_FROM are not set"),
    ({"SMTP_FROM": SENDER}, "SMTP_HOST is not set"),
    ({"SMTP_HOST": "mail.example", "SMTP_FROM": SENDER, "SMTP_SECURITY": "ssl"},
     "SMTP_SECURITY 'ssl' must be one of starttls, tls, none"),
    ({"SMTP_HOST": "mail.example", "SMTP_FROM": SENDER, "SMTP_PORT": "smtp"},
     "SMTP_PORT 'smtp' must be a port number"),
    ({"SMTP_HOST": "mail.example", "SMTP_FROM": "the clinic"}, "SMTP_FROM 'the clinic' is not an e-mail"),
    ({"SMTP_HOST": "mail.example", "SMTP_FROM": SENDER, "SMTP_USERNAME": "bot"},
     "SMTP_USERNAME and SMTP_PASSWORD must be set together"),
    ({"SMTP_HOST": "mail.example", "SMTP_FROM": SENDER, "SMTP_SECURITY": "none", "SMTP_USERNAME": "bot",
      "SMTP_PASSWORD": "x"}, "would send the password unencrypted to mail.example"),
    ({"SMTP_HOST": "mail.example", "SMTP_FROM": SENDER, "SMTP_CA_FILE": "/nonexistent/ca.pem"},
     "SMTP_CA_FILE '/nonexistent/ca.pem' is not a readable PEM certificate file"),
    ({"SMTP_HOST": "mail.example", "SMTP_FROM": SENDER, "STAFF_BASE_URL": "bot.clinic.example"},
     "STAFF_BASE_URL 'bot.clinic.example' must be a full URL"),
]


def write_clinic(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "clinic.yml"
    path.write_text((PROJECT_ROOT / "clinic.yml").read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


@pytest.mark.parametrize(("env", "message"), BAD_SETTINGS)
def test_bad_settings_stop_start_up_with_a_clear_message(
    env: Dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM",
                 "SMTP_CA_FILE", "STAFF_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLINIC_CONFIG", str(write_clinic(tmp_path, f"notify_email: {STAFF[0]}\n")))
    problem = launcher.check_configuration()
    assert problem is not None and problem.startswith("e-mail settings: ") and message in problem
    # the launcher stops before starting anything
    assert launcher.supervise("assistant", lambda: pytest.fail("started"), lambda: None, lambda: None,
                              lambda: "") == 2
    assert "Cannot start: e-mail settings: " in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "started"), [
    ("", False),
    (f"notify_email: {STAFF[0]}\n", True),
    ("weekly_summary: {day: monday, time: '08:00', to: m@clinic.example}\n", True),
])
def test_the_launcher_starts_the_notifier_for_email_alone(
    extra: str, started: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = launcher.Stack(launcher.Settings(extra_env={"CLINIC_CONFIG": str(write_clinic(tmp_path, extra))}))
    spawned: list = []
    monkeypatch.setattr(stack, "_spawn", lambda name, command, *a, **k: spawned.append(command))
    stack.start_notifier()
    assert spawned == ([[sys.executable, "-m", "assistant.callback_requests.notifier"]] if started else [])


def test_without_email_in_clinic_yml_the_smtp_settings_are_not_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_HOST", raising=False)
    monkeypatch.setenv("CLINIC_CONFIG", str(write_clinic(tmp_path, "")))
    assert launcher.check_configuration() is None


@pytest.mark.parametrize(("extra", "message"), [
    ("notify_email: reception\n", "'notify_email[0]' 'reception' is not a valid e-mail address"),
    ("notify_email: {a: b}\n", "'notify_email' must be an e-mail address or a list of them"),
    ("weekly_summary: {day: someday, time: '08:00', to: m@clinic.example}\n",
     "'weekly_summary.day' 'someday' must be one of monday"),
    ("weekly_summary: {day: monday, time: soon, to: m@clinic.example}\n",
     "'weekly_summary.time' 'soon' must be a time like"),
    ("weekly_summary: {day: monday, time: '08:00'}\n", "'weekly_summary' needs to"),
    ("weekly_summary: {day: monday, time: '08:00', to: m@clinic.example, cc: x@y.example}\n",
     "'weekly_summary' has unknown key(s) cc"),
])
def test_bad_email_fields_in_clinic_yml_name_the_field(extra: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ClinicConfigError, match="clinic config: ") as error:
        load_clinic(write_clinic(tmp_path, extra))
    assert message in str(error.value)


def test_email_fields_in_clinic_yml(tmp_path: Path) -> None:
    clinic = load_clinic(write_clinic(tmp_path, (
        f"notify_email:\n  - {STAFF[0]}\n  - {STAFF[1]}\n  - {STAFF[0].upper()}\n"
        "weekly_summary:\n  day: Monday\n  time: 8:30\n  to: manager@harbourside-physio.example\n")))
    assert clinic.notify_email == STAFF  # the same address twice is one address
    assert clinic.weekly_summary == WeeklySummarySchedule(
        weekday=0, at=time(8, 30), to="manager@harbourside-physio.example")


def test_the_notifier_runs_every_configured_channel(store: CallbackStore, smtp: SmtpReceiver) -> None:
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_SECURITY": "none",
           "SMTP_FROM": SENDER, "STAFF_BASE_URL": BASE_URL + "/"}
    clinic = clinic_with_email(weekly_summary=MONDAY_8AM)
    labels = [channel.label for channel in channels_for(clinic, store, env)]
    assert labels == ["e-mail alert", "weekly summary"]
    with pytest.raises(SmtpConfigError, match="SMTP_HOST"):
        channels_for(clinic, store, {"SMTP_FROM": SENDER})

    request, _ = store.submit(draft(1), notify=False, email=True)
    [alerts] = channels_for(clinic_with_email(), store, env)
    stop = threading.Event()
    worker = threading.Thread(target=run, args=([alerts], 0.05, stop))
    worker.start()
    try:
        for _ in range(100):
            if smtp.received:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        worker.join(timeout=10)
    text, _ = text_and_html(smtp.messages()[0])
    # no double slash
    link = f"{BASE_URL}/staff/requests?show=all&q=CB-{request.id}#CB-{request.id}"
    assert f"Open it in the staff console: {link}" in text.splitlines()


def test_the_notifier_process_emails_a_request(tmp_path: Path, smtp: SmtpReceiver) -> None:
    """The notifier as the launcher starts it (python -m), from the environment alone."""
    requests_db = f"sqlite:///{tmp_path / 'requests.db'}"
    request, _ = CallbackStore(requests_db).submit(draft(1), notify=False, email=True)
    clinic_yml = write_clinic(tmp_path, f"notify_email: {STAFF[0]}\n")
    env = {"PATH": "/usr/bin:/bin", "CLINIC_CONFIG": str(clinic_yml),
           "REQUESTS_DB_URL": requests_db, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port),
           "SMTP_SECURITY": "none", "SMTP_FROM": SENDER, "STAFF_BASE_URL": BASE_URL}
    command = [sys.executable, "-m", "assistant.callback_requests.notifier"]
    process = subprocess.Popen([*command, "--poll", "0.2"], cwd=PROJECT_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):  # up to a minute: a busy machine imports slowly
            if smtp.received or process.poll() is not None:
                break
            threading.Event().wait(0.1)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert [m["Subject"] for m in smtp.messages()] == [f"New call-back request CB-{request.id}"], output
    assert "e-mailed to the clinic" in output and "Visitor 1" not in output  # logs name the reference only

    env.pop("SMTP_HOST")
    failed = subprocess.run(command, cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "SMTP_HOST is not set" in failed.stderr


# ---- the weekly summary -------------------------------------------------------------


def sydney(*args: int) -> datetime:
    return datetime(*args, tzinfo=SYDNEY).astimezone(timezone.utc)


def test_the_summary_is_due_after_its_moment_in_the_clinic_time_zone() -> None:
    assert due_week(sydney(2026, 9, 28, 7, 59), MONDAY_8AM, SYDNEY) is None
    week = due_week(sydney(2026, 9, 28, 8, 0), MONDAY_8AM, SYDNEY)
    assert week is not None and week.key == "2026-W40"
    assert (str(week.first_day), str(week.last_day)) == ("2026-09-21", "2026-09-27")
    assert week.since == sydney(2026, 9, 21, 0, 0) and week.until == sydney(2026, 9, 28, 0, 0)
    later = due_week(sydney(2026, 10, 4, 23, 59), MONDAY_8AM, SYDNEY)  # still that week, on Sunday night
    assert later is not None and later.key == "2026-W40"


def test_the_weekly_summary_is_sent_once_a_week_even_across_restarts(
    store: CallbackStore, smtp: SmtpReceiver, tmp_path: Path
) -> None:
    tracker = tmp_path / "tracker.db"
    clinic = clinic_with_email(weekly_summary=MONDAY_8AM)
    expected = generate(tracker, 40, clinic.phone_link, clinic.booking_url, days=5)  # from Mon 21 Sep 2026
    clock = Clock()

    def notifier() -> WeeklySummary:
        return WeeklySummary(store, clinic, plain_settings(smtp.port), BASE_URL,
                             tracker=f"sqlite:///{tracker}", clock=clock)

    clock.now = sydney(2026, 9, 28, 7, 30)
    summary = notifier()
    assert summary.deliver_due() == 0 and smtp.received == []  # not yet
    clock.now = sydney(2026, 9, 28, 8, 0, 5)
    assert summary.deliver_due() == 1
    clock.advance(hours=5)
    assert summary.deliver_due() == 0
    clock.advance(days=2)
    assert notifier().deliver_due() == 0  # a restart later that week: already sent
    assert summary.sent_weeks() == ["2026-W40"]

    [entry] = smtp.received
    assert entry["rcpt_tos"] == ["manager@clinic.example"]
    text, html = text_and_html(entry["message"])
    assert "Mon 21 Sep to Sun 27 Sep 2026" in text
    assert "Conversations:" in text and f"{expected.conversations} from {expected.visitors} visitors" in text
    assert f"{BASE_URL}/staff/report?since=2026-09-21&until=2026-09-27" in text
    assert f"href='{BASE_URL}/staff/report?since=2026-09-21&amp;until=2026-09-27'" in html

    clock.now = sydney(2026, 10, 5, 8, 1)  # next Monday
    assert notifier().deliver_due() == 1
    assert summary.sent_weeks() == ["2026-W40", "2026-W41"] and len(smtp.received) == 2


def test_a_weekly_summary_that_fails_is_retried_with_back_off(store: CallbackStore) -> None:
    port = free_port()
    clock = Clock()
    clock.now = sydney(2026, 9, 28, 9, 0)
    summary = WeeklySummary(store, clinic_with_email(weekly_summary=MONDAY_8AM), plain_settings(port),
                            BASE_URL, tracker="sqlite:////nonexistent/tracker.db", clock=clock)
    assert summary.deliver_due() == 0  # the mail server is down
    clock.advance(seconds=3)
    assert summary.deliver_due() == 0  # backing off: not even tried
    with SmtpReceiver(port=port) as smtp:
        clock.advance(seconds=3)
        assert summary.deliver_due() == 1
        clock.advance(seconds=30)
        assert summary.deliver_due() == 0
        [message] = smtp.messages()
    assert "0 from 0 visitors" in text_and_html(message)[0]  # no conversations yet: zeros, not an error
