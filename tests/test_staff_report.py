"""The insights report in the staff console (Debian's Chromium against the real
server): shown for a chosen period with the warning signs first, downloadable as
the same self-contained file, and built in another process, not on the chat's loop."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import requests

from assistant.staff.routes import Paths
from tests.conftest import ARTIFACTS, report_figure
from tests.helpers.staff import EMAIL, PASSWORD, add_account, http_sign_in, sign_in

playwright_api = pytest.importorskip("playwright.sync_api")

# An emergency, with a phone number the report must not show.
EMERGENCY = "crushing chest pain since an hour, call me on 0491 570 156"


def say(stack: Any, sender: str, message: str) -> List[Any]:
    reply = requests.post(f"{stack.url}/webhooks/rest/webhook", json={"sender": sender, "message": message},
                          timeout=60)
    reply.raise_for_status()
    return list(reply.json())


@pytest.fixture
def page(browser: Any, stack: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    tab.problems = []
    tab.on("console", lambda message: message.type == "error" and tab.problems.append(message.text))
    yield tab
    context.close()


def test_the_report_shows_warning_signs_first_and_downloads_as_one_file(page: Any, stack: Any) -> None:
    sender = f"report-warning-{int(time.time())}"
    reply = " ".join(str(m.get("text", "")) for m in say(stack, sender, EMERGENCY))
    assert "000" in reply  # the emergency reply (clinic.yml's emergency number)
    say(stack, f"{sender}-q", "does dry needling hurt?")
    add_account(stack, EMAIL, PASSWORD)
    sign_in(page, stack, EMAIL, PASSWORD)
    page.wait_for_url(re.compile(r"/staff/requests$"))
    page.click(f"a[href='{Paths.report}']")
    frame = page.frame_locator("iframe.report")
    frame.locator("h1").wait_for(timeout=120_000)
    warnings = frame.locator("section.warnings").inner_text()
    assert "emergency number" in warnings and "crushing chest pain" in warnings
    assert "0491" not in warnings and "[phone]" in warnings  # redacted
    page.screenshot(path=str(ARTIFACTS / "staff-report.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#download-report")
    html = Path(download.value.path()).read_text(encoding="utf-8")
    assert download.value.suggested_filename.startswith("report-") and html.startswith("<!doctype html>")
    assert html.index("Warning signs") < html.index("<h2>Activity</h2>")
    assert "<script" not in html and "src='http" not in html and 'src="http' not in html
    with page.expect_download() as review:
        page.click("#download-review")
    assert Path(review.value.path()).read_text(encoding="utf-8").startswith(
        "# Messages the assistant could not answer")
    assert review.value.suggested_filename.startswith("unanswered-")
    assert not page.problems, page.problems


def test_the_chat_keeps_answering_while_a_report_is_built(stack: Any) -> None:
    """Prints the chat's latencies while the report is being built (no threshold: a figure)."""
    add_account(stack, EMAIL, PASSWORD)
    client, _ = http_sign_in(stack, EMAIL, PASSWORD)
    import threading

    done = threading.Event()

    def build() -> None:
        client.get(f"{stack.url}{Paths.report_file}?since=2000-01-01", timeout=300)
        done.set()

    builder = threading.Thread(target=build)
    builder.start()
    latencies = []
    while not done.is_set() or len(latencies) < 5:
        started = time.perf_counter()
        say(stack, "report-latency", "how long does a session take?")
        latencies.append(time.perf_counter() - started)
    builder.join()
    latencies.sort()
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    report_figure(f"chat while a staff report is built: {len(latencies)} answers, "
                  f"median {1000 * latencies[len(latencies) // 2]:.0f} ms, p95 {1000 * p95:.0f} ms")
