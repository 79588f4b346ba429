"""The receptionist's walk-through, end to end in a real browser (Debian's Chromium
through Playwright) against a stack of its own, with no shortcut into a database:

1. a patient asks for a call-back in the chat widget on the demo page and confirms it;
2. the e-mail alert arrives at a real SMTP server on loopback (aiosmtpd);
3. the receptionist follows the e-mail's link, signs in, sees the request in the
   clinic's time and dialling format, and marks it done with a note;
4. the manager opens this period's report and finds that conversation in it.

Screenshots of every step go to test-artifacts/walkthrough-*.png.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Iterator, List
from zoneinfo import ZoneInfo

import pytest

from assistant.ops.launcher import Stack, free_port
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import load_clinic
from assistant.staff.routes import Paths
from tests.conftest import ARTIFACTS
from tests.helpers.processes import stack_settings
from tests.helpers.staff import EMAIL, PASSWORD, add_account, sign_in
from tests.helpers.widget import WIDGET, ask, open_chat, wait_for_reply
from tests.smtp_receiver import SmtpReceiver

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser

CLINIC = load_clinic(PROJECT_ROOT / "clinic.yml")
ZONE = ZoneInfo(CLINIC.timezone)
SENDER = "Harbourside chat <bot@harbourside-physio.example>"
ALERTED = "reception@clinic.example"  # notify_email; also the receptionist's account (EMAIL)
MANAGER, MANAGER_PASSWORD = "manager@clinic.example", "manager test password"

# The patient's answers. The number is used by no other test (one open request per contact).
NAME = "Jordan Walkthrough"
PHONE_TYPED, PHONE_E164, PHONE_SHOWN = "0491 570 159", "+61491570159", "0491 570 159"
BEST_TIME = "Weekday afternoons after 3pm"
NOTE = "Stiff neck since the weekend; happy to come in on a Saturday"
DONE_NOTE = "Booked Sat 9:30 with Alex"


@dataclass
class Walkthrough:
    stack: Stack
    smtp: SmtpReceiver

    @property
    def url(self) -> str:
        return self.stack.url


@pytest.fixture(scope="module")
def walkthrough_stack(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[Walkthrough]:
    """Its own Rasa server, action server and notifier (started because clinic.yml sets
    notify_email) with fresh SQLite stores, e-mailing a real SMTP server on loopback."""
    workdir = tmp_path_factory.mktemp("walkthrough")
    rasa_port = free_port()
    with SmtpReceiver() as smtp:
        settings = stack_settings(
            workdir, model_path, clinic_extra=f"\nnotify_email:\n  - {ALERTED}\n",
            rasa_port=rasa_port, NOTIFIER_POLL_SECONDS="0.5", SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp.port), SMTP_SECURITY="none", SMTP_FROM=SENDER, SMTP_USERNAME="",
            SMTP_PASSWORD="", SMTP_CA_FILE="",
            STAFF_BASE_URL=f"http://127.0.0.1:{rasa_port}")
        assert load_clinic(Path(settings.extra_env["CLINIC_CONFIG"])).notify_email == [ALERTED]
        running = Stack(settings, log_dir=workdir / "logs").start()
        try:
            assert "notifier" in running.supervised, "the notifier was not started for notify_email"
            yield Walkthrough(running, smtp)
        finally:
            running.stop()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"walkthrough-{name}.png"), full_page=True)


def clock_minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


def minutes_apart(a: str, b: str) -> int:
    difference = abs(clock_minutes(a) - clock_minutes(b))
    return min(difference, 24 * 60 - difference)


# ---- the steps -------------------------------------------------------------------

def patient_requests_a_call_back(browser: Any, site: Walkthrough) -> int:
    """Step 1, in the widget on the demo page; the CB number the bot gives."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/webchat/")
        open_chat(page)
        assert "minutes" in ask(page, "how long does a dry needling session take?")
        reply = ask(page, "i'd like to book an appointment")
        assert CLINIC.phone in reply
        before = page.locator(f"{WIDGET} .message.bot").count()
        page.locator(f"{WIDGET} .message.bot").last.locator("button.button", has_text="call-back").click()
        wait_for_reply(page, before)
        assert "name" in page.locator(f"{WIDGET} .message.bot").last.inner_text().lower()
        for answer in (NAME, PHONE_TYPED, BEST_TIME):
            ask(page, answer)
        summary = ask(page, NOTE)
        lines = [line.strip() for line in summary.splitlines()]
        assert "Shall I send it" in summary, summary
        for field in (f"Name: {NAME}", f"Contact: {PHONE_E164}", f"Best time: {BEST_TIME}", f"Note: {NOTE}"):
            assert any(line.endswith(field) for line in lines), (field, lines)
        shot(page, "1-widget-summary")
        before = page.locator(f"{WIDGET} .message.bot").count()
        page.locator(f"{WIDGET} .message.bot").last.locator("button.button", has_text="Yes, send it").click()
        wait_for_reply(page, before)
        saved = page.locator(f"{WIDGET} .message.bot").last.inner_text()
        found = re.search(r"saved \(reference CB-(\d+)\)", saved)
        assert found, saved
        shot(page, "1-widget-saved")
        return int(found.group(1))
    finally:
        context.close()


def the_alert(site: Walkthrough, reference: str, timeout: float = 60) -> EmailMessage:
    """Step 2: the one e-mail about `reference`, once the notifier has sent it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        received = list(site.smtp.received)
        if received:
            break
        time.sleep(0.2)
    else:
        logs = site.stack.log_dir / "notifier.log" if site.stack.log_dir else None
        pytest.fail(f"no e-mail within {timeout:.0f} s; notifier log: "
                    f"{logs.read_text()[-2000:] if logs and logs.exists() else '(none)'}")
    time.sleep(1.5)  # three more polls: a duplicate would arrive by now
    received = list(site.smtp.received)
    assert len(received) == 1, [entry["message"]["Subject"] for entry in received]
    [entry] = received
    assert entry["rcpt_tos"] == [ALERTED] and entry["mail_from"] == "bot@harbourside-physio.example"
    message = entry["message"]
    assert message["Subject"] == f"New call-back request {reference}"
    return message


def body_parts(message: EmailMessage) -> tuple:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def receptionist_handles_it(browser: Any, site: Walkthrough, reference: str, alert: EmailMessage) -> None:
    """Step 3: from the e-mail's link to the request marked done."""
    text, html = body_parts(alert)
    link = f"{site.url}{Paths.inbox}?show=all&q={reference}#{reference}"
    assert f"Open it in the staff console: {link}" in text.splitlines(), text
    for expected in (NAME, f"{PHONE_SHOWN} (phone)", BEST_TIME, NOTE):
        assert expected in text, (expected, text)
    received = re.search(r"^Received:\s+\w{3} \d\d \w{3} \d{4}, (\d\d:\d\d) [A-Z]+\s*$", text, re.MULTILINE)
    assert received, text
    emailed_time = received.group(1)

    context = browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        page = context.new_page()
        problems: List[str] = []
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        # The e-mail, as her mail program shows it; she clicks its link.
        page.set_content(html)
        email_link = page.locator("a", has_text=f"Open {reference} in the staff console")
        assert email_link.get_attribute("href") == link
        assert page.locator(f"a[href='tel:{PHONE_E164}']").inner_text() == PHONE_SHOWN
        shot(page, "2-email")
        email_link.click()
        page.wait_for_url(re.compile(re.escape(Paths.signin) + r"\?next="))
        assert f"q%3D{reference}" in page.url  # the request she asked for is remembered
        shot(page, "3-signin")
        page.fill("#email", EMAIL)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(re.escape(f"{Paths.inbox}?show=all&q={reference}")))

        card = page.locator(f"article#{reference}")
        card.wait_for()
        assert page.locator("article.request").count() == 1  # the link's search finds just this one
        content = card.inner_text()
        for expected in (NAME, BEST_TIME, NOTE):
            assert expected in content, (expected, content)
        assert (card.locator(".status").text_content() or "").strip() == "open"
        phone = card.locator("a[href^='tel:']")
        assert phone.inner_text() == PHONE_SHOWN and phone.get_attribute("href") == f"tel:{PHONE_E164}"
        # Received in the clinic's time zone, the same minute as the e-mail says, and now.
        shown = card.locator("h3 time")
        when = re.fullmatch(r"today (\d\d:\d\d)", shown.inner_text())
        assert when, shown.inner_text()
        assert minutes_apart(when.group(1), emailed_time) <= 1, (when.group(1), emailed_time)
        assert minutes_apart(when.group(1), datetime.now(ZONE).strftime("%H:%M")) <= 10
        assert (shown.get_attribute("title") or "").endswith(datetime.now(ZONE).strftime("%Z"))
        assert "UTC" not in content
        shot(page, "4-request")

        card.locator("input[name=note]").fill(DONE_NOTE)
        card.locator("button[value=done]").click()
        done = page.locator(f"article#{reference}")
        expect(done.locator(".status")).to_have_text("done", timeout=30_000)
        change = done.locator(".change").inner_text()
        by_her = rf"done by {re.escape(EMAIL)}, today \d\d:\d\d: {re.escape(DONE_NOTE)}"
        assert re.fullmatch(by_her, change), change
        assert done.locator("button[value=reopen]").count() == 1
        assert page.locator("#open-count").inner_text().strip() == "0"  # nothing left to call
        shot(page, "5-done")
        assert not problems, problems  # the console works under its own CSP
    finally:
        context.close()


def card_value(frame: Any, label: str) -> str:
    card = frame.locator(".cards .card", has_text=label)
    assert card.count() == 1, label
    return str(card.locator("b").inner_text())


def funnel_row(frame: Any, label: str) -> List[str]:
    row = frame.locator("tr", has=frame.locator("td", has_text=label))
    return [cell.strip() for cell in row.locator("td").all_inner_texts()]


def manager_reads_the_report(browser: Any, site: Walkthrough) -> None:
    """Step 4: this month's report in the console shows that conversation."""
    add_account(site.stack, MANAGER, MANAGER_PASSWORD)
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    try:
        page = context.new_page()
        sign_in(page, site.stack, MANAGER, MANAGER_PASSWORD)
        page.wait_for_url(re.compile(re.escape(Paths.inbox) + "$"))
        page.click(f"a[href='{Paths.report}']")
        page.wait_for_url(re.compile(re.escape(Paths.report) + "$"))
        frame = page.frame_locator("iframe.report")
        frame.locator("h1").wait_for(timeout=120_000)
        period = frame.locator(".period").inner_text()
        assert CLINIC.name in period and datetime.now(ZONE).strftime("%Y-%m-%d") in period, period
        # This stack served one conversation: the patient's, which sent the request.
        assert card_value(frame, "conversations") == "1"
        assert card_value(frame, "call-back requests sent") == "1"
        assert card_value(frame, "messages from visitors") != "0"
        assert funnel_row(frame, "Got an answer to a question")[1:] == ["1", "100%"]
        assert funnel_row(frame, "Started a call-back request")[1:] == ["1", "100%"]
        assert funnel_row(frame, "Sent a call-back request")[1:] == ["1", "100%"]
        report = frame.locator("body").inner_text()
        # Her name, number and note stay out of the report.
        assert NAME not in report and "0491" not in report and NOTE not in report
        shot(page, "6-report")
        funnel = frame.locator("table", has_text="Sent a call-back request")
        funnel.scroll_into_view_if_needed()
        funnel.screenshot(path=str(ARTIFACTS / "walkthrough-7-report-funnel.png"))
    finally:
        context.close()


def test_a_call_back_request_goes_from_the_widget_to_done_and_into_the_report(
        browser: Any, walkthrough_stack: Walkthrough) -> None:
    site = walkthrough_stack
    add_account(site.stack, EMAIL, PASSWORD)
    number = patient_requests_a_call_back(browser, site)
    reference = f"CB-{number}"
    alert = the_alert(site, reference)
    receptionist_handles_it(browser, site, reference, alert)
    manager_reads_the_report(browser, site)
