"""The staff console in a real browser (Debian's Chromium through Playwright, never a
download) against the real server of the session's `stack`, as a receptionist
uses it: sign in, see a new request arrive without reloading, mark it done with a
note, reopen it, export, delete; a wrong password; throttling. The console's own
Content-Security-Policy stays on (no bypass): the page must work under it.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import csv
import io
import re
import uuid
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from assistant.callback_requests.store import CallbackDraft, CallbackRequest, store_for
from assistant.staff.routes import Paths
from assistant.staff.sessions import FAILURES_PER_ACCOUNT
from tests.conftest import ARTIFACTS
from tests.helpers.staff import EMAIL, PASSWORD, add_account, sign_in

playwright_api = pytest.importorskip("playwright.sync_api")

NOTE = "Left knee, worse on stairs since the weekend; asks for the physio who saw her last year"


def store_request(stack: Any, name: str, contact: str = "+61491570156",
                  reason: str = NOTE) -> CallbackRequest:
    """A confirmed request, written the way the bot's action writes it."""
    store = store_for(stack.settings.extra_env["REQUESTS_DB_URL"])
    request, _ = store.submit(CallbackDraft(uuid.uuid4().hex, f"conv-{uuid.uuid4().hex[:8]}", name, contact,
                                            "phone" if contact.startswith("+") else "email",
                                            "weekday mornings", reason), notify=False)
    return request


@pytest.fixture
def page(browser: Any, stack: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    tab.problems = []  # console errors, e.g. a CSP violation
    tab.on("console", lambda message: message.type == "error" and tab.problems.append(message.text))
    yield tab
    context.close()


def card(page: Any, reference: str) -> Any:
    return page.locator(f"article#{reference}")


def test_a_receptionist_handles_a_request_from_arrival_to_done_and_back(page: Any, stack: Any) -> None:
    add_account(stack, EMAIL, PASSWORD)
    first = store_request(stack, "Robin Example")
    sign_in(page, stack, EMAIL, PASSWORD)
    page.wait_for_url(re.compile(r"/staff/requests$"))
    robin = card(page, f"CB-{first.id}")
    robin.wait_for()
    text = robin.inner_text()
    assert "Robin Example" in text and NOTE in text and "weekday mornings" in text
    assert re.search(r"today \d\d:\d\d", text) and "UTC" not in text
    phone = robin.locator("a[href^='tel:']")
    assert phone.inner_text() == "0491 570 156" and phone.get_attribute("href") == "tel:+61491570156"
    page.screenshot(path=str(ARTIFACTS / "staff-inbox.png"), full_page=True)

    # A new request appears, and the count goes up, without a reload.
    count_before = int(page.locator("#open-count").inner_text())
    second = store_request(stack, "Sam Newcomer", contact="sam@mail.example", reason="")
    card(page, f"CB-{second.id}").wait_for(timeout=30_000)
    assert int(page.locator("#open-count").inner_text()) == count_before + 1
    newest_first = page.locator("article.request").first.get_attribute("id")
    assert newest_first == f"CB-{second.id}"
    assert card(page, f"CB-{second.id}").locator("a[href^='mailto:']").inner_text() == "sam@mail.example"

    # Done with a note: who and when are recorded; it leaves the open list.
    robin.locator("input[name=note]").fill("Booked Tue 9:00 with Alex")
    robin.locator("button[value=done]").click()
    page.wait_for_load_state()
    assert card(page, f"CB-{first.id}").count() == 0
    page.select_option("#show", "done")
    page.click("form.filters button[type=submit]")
    done = card(page, f"CB-{first.id}")
    change = done.locator(".change").inner_text()
    assert change.startswith(f"done by {EMAIL}, today ") and change.endswith("Booked Tue 9:00 with Alex")
    page.screenshot(path=str(ARTIFACTS / "staff-done.png"), full_page=True)

    # Reopen: back among the open ones, the filter kept.
    done.locator("button[value=reopen]").click()
    page.wait_for_load_state()
    assert "show=done" in page.url and card(page, f"CB-{first.id}").count() == 0
    page.select_option("#show", "open")
    page.click("form.filters button[type=submit]")
    assert "reopened by" in card(page, f"CB-{first.id}").locator(".change").inner_text()

    # Search narrows the list (a national-format number finds the stored E.164 one).
    page.fill("#q", "0491 570")
    page.click("form.filters button[type=submit]")
    assert card(page, f"CB-{first.id}").count() == 1 and card(page, f"CB-{second.id}").count() == 0

    # Export: the same rows, safe for a spreadsheet.
    page.select_option("#show", "all")
    page.fill("#q", "")
    page.click("form.filters button[type=submit]")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    header, body = rows[0], rows[1:]
    by_reference = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    robin_row = by_reference[f"CB-{first.id}"]
    assert robin_row["contact"] == "'+61491570156" and robin_row["reason"] == NOTE
    assert robin_row["status"] == "open" and robin_row["changed_by"] == EMAIL

    # Delete (a patient asked by phone to be forgotten): gone; the audit keeps the number only.
    sam = card(page, f"CB-{second.id}")
    sam.locator("summary").click()
    sam.locator("button.danger").click()
    page.wait_for_load_state()
    assert card(page, f"CB-{second.id}").count() == 0
    page.click(f"a[href='{Paths.audit}']")
    audit = page.locator("table").inner_text()
    assert "deleted" in audit and f"CB-{second.id}" in audit and "Sam Newcomer" not in audit
    assert "signed_in" in audit and "status_done" in audit and "exported" in audit
    page.screenshot(path=str(ARTIFACTS / "staff-audit.png"), full_page=True)

    # Sign out: the console is closed again.
    page.click("header button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/signin\?signed_out=1$"))
    page.goto(f"{stack.url}{Paths.inbox}")
    assert page.url.endswith(Paths.signin)
    assert not page.problems, page.problems  # no CSP violation, no script error


def test_a_wrong_password_is_refused(page: Any, stack: Any) -> None:
    add_account(stack, EMAIL, PASSWORD)
    sign_in(page, stack, EMAIL, PASSWORD + "?")
    assert page.locator("[role=alert]").inner_text() == "Wrong e-mail or password."
    assert page.url.endswith(Paths.signin) and page.locator("#email").input_value() == EMAIL
    page.screenshot(path=str(ARTIFACTS / "staff-wrong-password.png"))


def test_repeated_failures_are_throttled_even_for_the_right_password(page: Any, stack: Any) -> None:
    email = "throttled@clinic.example"
    add_account(stack, email, PASSWORD)
    allowed = int(FAILURES_PER_ACCOUNT.split()[0])
    messages: List[str] = []
    for _ in range(allowed):
        sign_in(page, stack, email, "not the password at all")
        messages.append(page.locator("[role=alert]").inner_text())
    assert messages == ["Wrong e-mail or password."] * allowed
    sign_in(page, stack, email, PASSWORD)  # right, but too late
    alert = page.locator("[role=alert]").inner_text()
    assert alert.startswith("Too many failed sign-ins. Please try again in ")
    assert page.url.endswith(Paths.signin)
    page.screenshot(path=str(ARTIFACTS / "staff-throttled.png"))
    # Another account is not locked out by it.
    sign_in(page, stack, EMAIL, PASSWORD)
    page.wait_for_url(re.compile(r"/staff/requests$"))


def test_the_inbox_fits_a_phone_screen(browser: Any, stack: Any) -> None:
    add_account(stack, EMAIL, PASSWORD)
    store_request(stack, "Alex Phone-Screen")
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        tab = context.new_page()
        sign_in(tab, stack, EMAIL, PASSWORD)
        tab.wait_for_url(re.compile(r"/staff/requests$"))
        tab.locator("article.request").first.wait_for()
        assert tab.evaluate("document.documentElement.scrollWidth") <= 360  # nothing off the side
        tab.screenshot(path=str(ARTIFACTS / "staff-inbox-phone.png"), full_page=True)
    finally:
        context.close()
