"""The chat widget in a real browser: Debian's Chromium driven by Playwright,
against the real bot (the session's `stack`) serving its demo page.

Chromium comes from the `chromium` package (`make browser` installs it); no
browser is ever downloaded. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, List
from urllib.parse import urlparse

import pytest

from assistant.kb.knowledge import KnowledgeBase
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import load_clinic
from tests.conftest import ARTIFACTS
from tests.helpers.rest import filled
from tests.helpers.widget import SHADOW, WIDGET, ask, open_chat, wait_for_reply

playwright_api = pytest.importorskip("playwright.sync_api")

CLINIC = load_clinic(PROJECT_ROOT / "clinic.yml")
# JavaScript reaching into the widget's (open) shadow root.


@pytest.fixture
def page(browser: Any, stack: Any) -> Iterator[Any]:
    """A fresh visitor (own sessionStorage) on the demo page; every request it makes is recorded."""
    # The demo page's CSP (checked in test_website_channel.py) is bypassed so the
    # widget itself is tested, e.g. that it never turns text into markup, and
    # so Playwright may evaluate its waits in the page.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    tab = context.new_page()
    tab.requested = []
    tab.on("request", lambda request: tab.requested.append(request.url))
    tab.goto(f"{stack.url}/webchat/")
    yield tab
    context.close()


def bot_messages(page: Any) -> List[str]:
    return [text.replace("Assistant: ", "", 1) for text in
            page.locator(f"{WIDGET} .message.bot .bubble").all_inner_texts()]


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_a_typed_question_gets_the_articles_answer_and_nothing_leaves_the_site(
        page: Any, stack: Any, kb: KnowledgeBase) -> None:
    open_chat(page)
    assert "not medical advice" in bot_messages(page)[0]
    answer = ask(page, "how long does a dry needling session take?")
    assert flat(kb.topics["session_length"].answer)[:60] in flat(answer)
    page.screenshot(path=str(ARTIFACTS / "widget-desktop.png"))
    bot_host = urlparse(stack.url).netloc
    strangers = [url for url in page.requested if urlparse(url).netloc != bot_host
                 and not url.startswith("data:")]
    assert page.requested and not strangers, strangers


def test_a_quick_reply_asks_its_topic(page: Any, kb: KnowledgeBase) -> None:
    open_chat(page)
    ask(page, "how long does a session take")
    quick = page.locator(f"{WIDGET} .message.bot >> nth=-1 >> button.button").first
    title = quick.inner_text()
    [topic] = [t for t in kb.topics.values() if t.title == title]
    before = page.locator(f"{WIDGET} .message.bot").count()
    answered = page.locator(f"{WIDGET} .message.bot").last.element_handle()
    quick.click()
    wait_for_reply(page, before)
    assert page.locator(f"{WIDGET} .message.user .bubble").last.inner_text().endswith(title)
    assert flat(topic.answer)[:60] in flat(bot_messages(page)[before])
    # Earlier messages stay in place (a screen reader announces only the new
    # ones) and lose their quick replies; their links stay.
    assert answered.evaluate("node => node.isConnected")
    assert answered.evaluate("node => node.querySelectorAll('button.button').length") == 0
    # its thumbs up / down stay: an earlier answer can still be rated
    assert answered.evaluate("node => node.querySelectorAll('.feedback button').length") == 2


def test_call_and_booking_buttons_are_links_with_the_clinics_details(page: Any) -> None:
    open_chat(page)
    reply = ask(page, "i'd like to book an appointment")
    assert CLINIC.phone in reply
    last = page.locator(f"{WIDGET} .message.bot").last
    assert last.locator(f'a.button[href="{CLINIC.phone_link}"]').count() == 1
    assert last.locator(f'a.button[href="{CLINIC.booking_url}"]').count() == 1
    # The call-back request is a quick reply (a message to the bot), not a link.
    assert last.locator("button.button", has_text="call-back").count() == 1
    # A tap on the booking link is reported to the bot, for the clinic's report.
    with page.expect_response(lambda r: r.url.endswith("/webhooks/website/handoff")) as tapped, \
            page.context.expect_page() as booking_tab:
        last.locator(f'a.button[href="{CLINIC.booking_url}"]').click()
    assert tapped.value.status == 204
    booking_tab.value.close()


def test_the_conversation_survives_a_reload_and_a_new_chat_starts_afresh(page: Any) -> None:
    open_chat(page)
    ask(page, "does dry needling hurt")
    sender = page.evaluate("Object.entries(sessionStorage)[0][1]")
    transcript = bot_messages(page)
    page.reload()
    page.locator(f"{WIDGET} #dnw-input").wait_for(state="visible")  # still open
    assert bot_messages(page) == transcript
    assert page.evaluate("Object.entries(sessionStorage)[0][1]") == sender
    page.locator(f"{WIDGET} button.restart").click()
    assert len(bot_messages(page)) == 1  # just the welcome
    assert page.evaluate("JSON.parse(Object.entries(sessionStorage)[0][1]).sender") != \
        page.evaluate(f"JSON.parse({sender!r}).sender")


def test_markup_in_a_message_is_shown_as_text_and_runs_nothing(page: Any) -> None:
    dialogs: List[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_chat(page)
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    ask(page, hostile)
    assert page.locator(f"{WIDGET} .message.user .bubble").last.inner_text().endswith(hostile)
    assert page.evaluate(f"{SHADOW}.querySelectorAll('.log img, .log script').length") == 0
    assert dialogs == []


def test_when_the_bot_is_unreachable_the_visitor_gets_the_phone_number_and_can_retry(page: Any) -> None:
    open_chat(page)
    page.route("**/webhooks/website/webhook", lambda route: route.abort("connectionrefused"))
    reply = ask(page, "how long does a session take")
    assert "can't reach" in reply
    error = page.locator(f"{WIDGET} .message.error").last
    assert error.locator(f'a[href="{CLINIC.phone_link}"]').inner_text() == CLINIC.phone
    page.unroute("**/webhooks/website/webhook")
    before = page.locator(f"{WIDGET} .message.bot").count()
    error.locator("button", has_text="Try again").click()
    wait_for_reply(page, before)
    assert "minutes" in bot_messages(page)[-1]


def test_a_typing_indicator_shows_while_the_bot_is_answering(page: Any) -> None:
    held: List[Any] = []
    page.route("**/webhooks/website/webhook", lambda route: held.append(route))  # hold it
    open_chat(page)
    page.locator(f"{WIDGET} #dnw-input").fill("does it hurt")
    page.locator(f"{WIDGET} #dnw-input").press("Enter")
    page.wait_for_function(f"{SHADOW}.querySelector('.typing').hidden === false")
    assert page.locator(f"{WIDGET} .typing").inner_text().strip() != ""
    assert page.locator(f"{WIDGET} button.send").is_disabled()
    held[0].continue_()
    wait_for_reply(page, 1)
    assert page.locator(f"{WIDGET} .typing").is_hidden()


def test_keyboard_only(page: Any) -> None:
    """Tab to the chat button, open it with Enter, ask, then Escape back."""
    on_launcher = (f"document.activeElement.id === 'dry-needling-chat' && {SHADOW}.activeElement !== null"
                   f" && {SHADOW}.activeElement.classList.contains('launcher')")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate(on_launcher):
            break
    else:
        pytest.fail("the chat button is not reachable with Tab")
    page.keyboard.press("Enter")
    assert page.evaluate(f"{SHADOW}.activeElement.id") == "dnw-input"
    before = page.locator(f"{WIDGET} .message.bot").count()
    page.keyboard.type("is dry needling the same as acupuncture")
    page.keyboard.press("Enter")
    wait_for_reply(page, before)
    assert "acupuncture" in bot_messages(page)[-1].lower()
    page.keyboard.press("Shift+Tab")  # onto the latest quick reply: reachable without a mouse
    assert page.evaluate(f"{SHADOW}.activeElement.tagName") in ("BUTTON", "A")
    page.keyboard.press("Escape")
    assert page.evaluate(f"{SHADOW}.activeElement.classList.contains('launcher')")
    assert page.locator(f"{WIDGET} #dnw-panel").is_hidden()


def test_accessible_names_and_live_region(page: Any) -> None:
    open_chat(page)
    log = page.locator(f"{WIDGET} .log")
    assert log.get_attribute("aria-live") == "polite" and log.get_attribute("role") == "log"
    assert page.get_by_label("Type your question").count() == 1
    assert page.locator(f"{WIDGET} button.close").get_attribute("aria-label") == "Close chat"
    assert f"emergency call {CLINIC.emergency_number}." in page.locator(f"{WIDGET} .note").inner_text()


@pytest.fixture
def phone(browser: Any, stack: Any) -> Iterator[Any]:
    """A fresh visitor on a 360-pixel touch screen, the chat already open."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True,
                                  has_touch=True, bypass_csp=True)
    tab = context.new_page()
    tab.goto(f"{stack.url}/webchat/")
    open_chat(tab)
    yield tab
    context.close()


def test_works_on_a_360_pixel_phone_screen(phone: Any) -> None:
    ask(phone, "can dry needling help my tennis elbow")
    box = phone.locator(f"{WIDGET} #dnw-panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    phone.screenshot(path=str(ARTIFACTS / "widget-360px.png"))


def test_on_a_phone_a_sore_patient_and_warning_signs_get_the_right_answers(
        phone: Any, kb: KnowledgeBase) -> None:
    """Issue 15's acceptance as a new visitor on a phone: a sore patient asks "is that
    normal?" then "how long will that last?", and warning signs typed the way people
    type get the emergency reply or "see a doctor today"."""
    soreness = flat(filled(kb.topics["soreness_after"].answer))
    report = "had dry needling in my calf yesterday and its pretty sore today"
    assert soreness[:80] in flat(ask(phone, report))
    assert soreness[:80] in flat(ask(phone, "is that normal?"))
    assert soreness[:80] in flat(ask(phone, "how long will that last?"))
    breath = "cant get a full breath since the needles near my shoulder blade this morning"
    assert f"call {CLINIC.emergency_number} now" in flat(ask(phone, breath))
    urgent = flat(ask(phone, "the needle spot on my calf is red and hot and the redness is spreading"))
    assert "needs a doctor's check today" in urgent
    phone.screenshot(path=str(ARTIFACTS / "widget-360px-warning.png"))


def stored_state(page: Any) -> Any:
    return page.evaluate("JSON.parse(Object.entries(sessionStorage)[0][1])")


def test_the_conversation_token_is_kept_and_an_unknown_tab_starts_a_new_conversation(page: Any) -> None:
    open_chat(page)
    with page.expect_response(lambda r: r.url.endswith("/webhooks/website/webhook")) as first:
        ask(page, "does dry needling hurt")
    state = stored_state(page)
    assert state["token"] and state["token"] == first.value.headers["x-conversation-token"]
    assert "minutes" in ask(page, "how long does a session take")  # sent with the token
    # A tab whose token the bot does not accept (say, kept from before an
    # update) carries on in a new conversation instead of failing.
    page.evaluate("""() => {
        const [key, value] = Object.entries(sessionStorage)[0];
        const state = JSON.parse(value); state.token = "not-the-token";
        sessionStorage.setItem(key, JSON.stringify(state)); }""")
    page.reload()
    page.locator(f"{WIDGET} #dnw-input").wait_for(state="visible")
    assert "minutes" in ask(page, "how long does a session take")
    assert stored_state(page)["sender"] != state["sender"]
    assert stored_state(page)["token"] not in (None, "not-the-token")


def test_over_a_rate_limit_the_visitor_gets_a_friendly_note_and_can_retry(browser: Any, stack: Any) -> None:
    """Through a proxy that reports one address (X-Forwarded-For), more new
    conversations than the default limit allows (10 a minute)."""
    context = browser.new_context(bypass_csp=True, extra_http_headers={"X-Forwarded-For": "192.0.2.77"})
    tab = context.new_page()
    try:
        tab.goto(f"{stack.url}/webchat/")
        open_chat(tab)
        replies = []
        for _ in range(11):
            tab.locator(f"{WIDGET} button.restart").click()
            replies.append(ask(tab, "hello"))
        assert all("too quickly" not in reply and "faster than" not in reply for reply in replies[:10])
        note = replies[10]
        assert "faster than I can answer" in note and "wait a moment" in note
        error = tab.locator(f"{WIDGET} .message.error").last
        assert error.locator(f'a[href="{CLINIC.phone_link}"]').inner_text() == CLINIC.phone
        assert error.locator("button", has_text="Try again").count() == 1
        tab.screenshot(path=str(ARTIFACTS / "widget-rate-limited.png"))
    finally:
        context.close()


# ---- issue 19: welcome screen, buttons, settings from the bot ------------------

def test_the_welcome_screen_offers_the_clinics_top_questions(page: Any, kb: KnowledgeBase) -> None:
    open_chat(page)
    starters = page.locator(f"{WIDGET} .message.bot").first.locator("button.button")
    titles = starters.all_inner_texts()
    assert titles == [kb.topics[t].title for t in CLINIC.widget.starters]
    page.screenshot(path=str(ARTIFACTS / "widget-welcome.png"))
    starters.nth(1).click()
    wait_for_reply(page, 1)
    topic = kb.topics[CLINIC.widget.starters[1]]
    assert flat(topic.answer)[:60] in flat(bot_messages(page)[1])
    # once asked, the welcome's starters are gone
    assert page.locator(f"{WIDGET} .message.bot").first.locator("button").count() == 0


def test_link_buttons_match_the_others_and_the_text_does_not_repeat_the_link(page: Any) -> None:
    open_chat(page)
    reply = ask(page, "i'd like to book an appointment")
    assert CLINIC.booking_url not in reply and CLINIC.phone in reply  # the Book button carries it
    last = page.locator(f"{WIDGET} .message.bot").last
    boxes = [b.bounding_box() for b in last.locator(".buttons > .button").all()]
    assert len(boxes) == 3 and max(b["height"] for b in boxes) - min(b["height"] for b in boxes) < 1, boxes
    # each label's text sits in the middle of its button
    off_centre = last.locator(".buttons > .button").evaluate_all("""buttons => buttons.map(b => {
        const range = document.createRange(); range.selectNodeContents(b);
        const text = range.getBoundingClientRect(), box = b.getBoundingClientRect();
        return Math.abs((text.top + text.bottom) / 2 - (box.top + box.bottom) / 2); })""")
    assert max(off_centre) < 2, off_centre
    last.screenshot(path=str(ARTIFACTS / "widget-link-buttons.png"))


def test_the_embed_is_one_tag_that_reads_its_settings_from_the_bot(page: Any, stack: Any) -> None:
    assert page.evaluate("document.querySelector('script[src$=\"widget.js\"]').attributes.length") == 2
    open_chat(page)
    assert page.locator(f"{WIDGET} #dnw-title").inner_text() == CLINIC.widget.title
    assert CLINIC.name in bot_messages(page)[0]
    assert f"emergency call {CLINIC.emergency_number}." in page.locator(f"{WIDGET} .note").inner_text()
    # a data- attribute still overrides the bot's setting
    custom = f"{stack.url}/webchat/?embed=custom"
    page.route(custom, lambda route: route.fulfill(content_type="text/html", body=(
        '<!doctype html><html lang="en"><title>t</title><body><script src="/webchat/widget.js" defer '
        'data-title="Questions? Ask us" data-emergency="112"></script></body></html>')))
    page.evaluate("sessionStorage.clear()")
    page.goto(custom)
    open_chat(page)
    assert page.locator(f"{WIDGET} #dnw-title").inner_text() == "Questions? Ask us"
    assert "emergency call 112." in page.locator(f"{WIDGET} .note").inner_text()
    assert CLINIC.name in bot_messages(page)[0]  # the rest still from the bot


def test_thumbs_down_is_kept_with_the_conversation_and_tops_the_report(
        page: Any, stack: Any, tmp_path: Any) -> None:
    import json
    import sqlite3

    from assistant.insights import cli
    open_chat(page)
    ask(page, "how long does a dry needling session take?")
    thumbs = page.locator(f"{WIDGET} .message.bot").last.locator(".feedback button")
    assert [t.get_attribute("aria-label") for t in thumbs.all()] == ["Helpful", "Not helpful"]
    with page.expect_response(lambda r: r.url.endswith("/webhooks/website/feedback")) as sent:
        thumbs.nth(1).click()
    assert sent.value.status == 204
    assert thumbs.nth(1).get_attribute("aria-pressed") == "true"
    assert thumbs.nth(0).get_attribute("aria-pressed") == "false"
    sender = stored_state(page)["sender"]
    copy = tmp_path / "tracker.db"
    with sqlite3.connect(copy) as db:
        db.execute("ATTACH DATABASE ? AS bot", (str(stack.settings.tracker_db),))
        db.execute("CREATE TABLE events AS SELECT * FROM bot.events WHERE sender_id = ?", (sender,))
        slots = [json.loads(data) for (data,) in db.execute(
            "SELECT data FROM events WHERE type_name = 'slot' AND action_name = 'answer_feedback'")]
    assert [s["value"] for s in slots] == ["down:utter_faq/session_length"]
    assert cli.report(["--db", f"sqlite:///{copy}", "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    [worst] = report["feedback"]["most_thumbs_down"]
    assert (worst["label"], worst["down"]) == ("How long is a session?", 1)
    assert "Answers visitors said didn't help" in (tmp_path / "out" / "report.html").read_text()


def test_a_call_back_request_in_the_widget_is_never_left_looking_sent(page: Any) -> None:
    open_chat(page)
    ask(page, "i'd like to book an appointment")
    before = page.locator(f"{WIDGET} .message.bot").count()
    page.locator(f"{WIDGET} .message.bot").last.locator("button.button", has_text="call-back").click()
    wait_for_reply(page, before)
    # a number no other test of the shared stack leaves an open request for (one per contact)
    for answer in ("Robin Example", "0491 570 158", "Evenings"):
        ask(page, answer)
    summary = ask(page, "skip")
    lines = summary.splitlines()
    assert "Shall I send it" in summary and any(line.endswith("Name: Robin Example") for line in lines)
    assert any(line.endswith("Contact: +61491570158") for line in lines), lines
    before = page.locator(f"{WIDGET} .message.bot").count()
    ask(page, "thanks! how long is a session?")
    page.wait_for_function(f"{SHADOW}.querySelectorAll('.message.bot').length >= {before + 3}")
    said = bot_messages(page)[before:]
    assert "30 minutes" in said[0] and "NOT sent yet" in said[1] and "Shall I send it" in said[2], said
    page.screenshot(path=str(ARTIFACTS / "widget-callback-not-sent-yet.png"))
    # thumbs up / down under the answer only, not under the form's own messages
    rated = [m.locator(".feedback").count() for m in page.locator(f"{WIDGET} .message.bot").all()[before:]]
    assert rated == [1, 0, 0], rated
    before = page.locator(f"{WIDGET} .message.bot").count()
    page.locator(f"{WIDGET} .message.bot").last.locator("button.button", has_text="Yes, send it").click()
    wait_for_reply(page, before)
    assert "saved (reference CB-" in bot_messages(page)[-1]


def test_deleting_the_conversation_asks_first_and_follows_the_tapped_answer(page: Any) -> None:
    open_chat(page)
    ask(page, "how long does a session take")
    for tap, said in (("No, keep it", "haven't deleted anything"),
                      ("Yes, delete it", "deleted this conversation")):
        assert "can't be undone" in ask(page, "please delete my data")
        before = page.locator(f"{WIDGET} .message.bot").count()
        page.locator(f"{WIDGET} .message.bot >> nth=-1 >> button.button", has_text=tap).click()
        wait_for_reply(page, before)
        assert said in bot_messages(page)[before]
