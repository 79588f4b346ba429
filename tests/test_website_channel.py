"""The website channel and the limits every channel shares, through the real
server: validation (4xx with a JSON error, never a 5xx or a hang), CORS by
configured origin, and the widget's files and demo page."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional

import pytest
import requests

from assistant.paths import PROJECT_ROOT
from assistant.rasa_server.website_channel import WebsiteConfigError, parse_origins
from assistant.settings.clinic import load_clinic
from tests.conftest import ALLOWED_ORIGIN, conversation_token
from tests.helpers.rest import new_sender

CLINIC = load_clinic(PROJECT_ROOT / "clinic.yml")
CHANNELS = ["rest", "website"]
JSON = {"Content-Type": "application/json"}
ONE_MEGABYTE_OF_WORDS = "word " * 210_000


def webhook(stack: Any, channel: str) -> str:
    return f"{stack.url}/webhooks/{channel}/webhook"


def post(stack: Any, channel: str, data: Any, headers: Optional[Dict[str, str]] = None) -> requests.Response:
    return requests.post(webhook(stack, channel), data=data, headers=headers or JSON, timeout=60)


# ---- validation, on every channel --------------------------------------------------

@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (json.dumps({"sender": "a", "message": "hi"}), {"Content-Type": "text/plain"}, 415),
        (json.dumps({"sender": "a", "message": "hi"}), {"Content-Type": "multipart/form-data"}, 415),
        ("{not json", JSON, 400),
        (json.dumps({"message": "hi"}), JSON, 400),
        (json.dumps({"sender": "a"}), JSON, 400),
        (json.dumps({"sender": "bad sender!", "message": "hi"}), JSON, 400),
        (json.dumps({"sender": "a", "message": "x" * 1001}), JSON, 413),
    ],
)
def test_bad_input_gets_a_4xx_with_a_json_error(stack: Any, channel: str, body: str,
                                                headers: Dict[str, str], status: int) -> None:
    reply = post(stack, channel, body, headers)
    assert reply.status_code == status
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["error"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_one_megabyte_message_is_refused_with_413(stack: Any, channel: str) -> None:
    reply = post(stack, channel, json.dumps({"sender": "big", "message": ONE_MEGABYTE_OF_WORDS}))
    assert reply.status_code == 413
    assert reply.json()


def test_oversized_messages_do_not_stall_other_conversations(stack: Any) -> None:
    """Ten 1 MB messages on the plain REST webhook while a visitor asks a question:
    every big one is refused and the visitor gets the real answer."""
    big = json.dumps({"sender": "flood", "message": ONE_MEGABYTE_OF_WORDS})
    question = json.dumps({"sender": new_sender("calm"), "message": "how long does a session take"})
    with ThreadPoolExecutor(max_workers=11) as pool:
        floods = [pool.submit(post, stack, "rest", big) for _ in range(10)]
        answer = pool.submit(post, stack, "website", question)
        assert [f.result().status_code for f in floods] == [413] * 10
        reply = answer.result()
    assert reply.status_code == 200 and "minutes" in reply.json()[0]["text"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_good_message_gets_the_bots_messages_with_buttons(stack: Any, channel: str) -> None:
    reply = post(stack, channel, json.dumps({"sender": new_sender(channel), "message": "how do i book"}))
    assert reply.status_code == 200
    [message] = reply.json()
    assert CLINIC.phone in message["text"]
    assert [b["payload"] for b in message["buttons"]][:2] == [CLINIC.phone_link, CLINIC.booking_url]


# ---- CORS: configured origins only ---------------------------------------------------

def test_an_allowed_origin_may_call_the_webhook(stack: Any) -> None:
    preflight = requests.options(webhook(stack, "website"), timeout=10, headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    reply = post(stack, "website", json.dumps({"sender": new_sender("cors"), "message": "hello"}),
                 {**JSON, "Origin": ALLOWED_ORIGIN})
    assert reply.status_code == 200
    assert reply.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_another_origin_is_refused_and_gets_no_cors_header(stack: Any) -> None:
    stranger = "https://evil.example"
    preflight = requests.options(webhook(stack, "website"), timeout=10, headers={
        "Origin": stranger, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    reply = post(stack, "website", json.dumps({"sender": new_sender("cors"), "message": "hello"}),
                 {**JSON, "Origin": stranger})
    assert reply.status_code == 403 and reply.json()["error"]
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_the_bots_own_pages_are_always_allowed(stack: Any) -> None:
    reply = post(stack, "website", json.dumps({"sender": new_sender("own"), "message": "hello"}),
                 {**JSON, "Origin": stack.url})
    assert reply.status_code == 200


@pytest.mark.parametrize("value", ["*", "www.clinic.example", "https://clinic.example/page", "ftp://clinic.example"])
def test_an_invalid_allowed_origin_stops_the_start(value: str) -> None:
    with pytest.raises(WebsiteConfigError, match="allowed_origins"):
        parse_origins([value])


def test_origins_are_normalised() -> None:
    assert parse_origins(["https://WWW.Clinic.example/", " http://localhost:8000 ", ""]) == (
        "https://www.clinic.example", "http://localhost:8000")


# ---- the widget's files and the demo page --------------------------------------------

def test_the_demo_page_shows_the_clinic_and_embeds_the_widget(stack: Any) -> None:
    reply = requests.get(f"{stack.url}/webchat/", timeout=10)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    page = reply.text
    assert '<script src="/webchat/widget.js"' in page
    assert f'tel:{CLINIC.phone_e164}' in page
    assert CLINIC.name.replace("(", "").split()[0] in page and "$clinic" not in page
    assert "data-" not in page  # the embed is one plain tag: the widget asks the bot for the rest


def test_the_widget_settings_come_from_the_clinic_and_only_allowed_sites_may_read_them(stack: Any) -> None:
    reply = requests.get(f"{stack.url}/webchat/settings.json", timeout=10)
    assert reply.status_code == 200 and "Access-Control-Allow-Origin" not in reply.headers
    settings = reply.json()
    assert (settings["phone"], settings["phoneE164"], settings["emergency"]) == (
        CLINIC.phone, CLINIC.phone_e164, CLINIC.emergency_number)
    assert [b["payload"] for b in settings["starters"]] == [f"/faq/{t}" for t in CLINIC.widget.starters]
    allowed = requests.get(f"{stack.url}/webchat/settings.json", headers={"Origin": ALLOWED_ORIGIN},
                           timeout=10)
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    other = requests.get(f"{stack.url}/webchat/settings.json",
                         headers={"Origin": "https://elsewhere.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in other.headers


def test_a_website_reply_leaves_out_the_link_its_button_carries(stack: Any) -> None:
    reply = requests.post(f"{stack.url}/webhooks/website/webhook", timeout=30,
                          json={"sender": f"links-{uuid.uuid4().hex[:6]}", "message": "i want to book"})
    [message] = reply.json()
    assert CLINIC.booking_url in [b["payload"] for b in message["buttons"]]
    assert CLINIC.booking_url not in message["text"] and "book online" in message["text"]
    assert CLINIC.phone in message["text"]


def test_a_starter_question_is_taken_as_its_topic_from_a_new_conversation(stack: Any, kb: Any) -> None:
    first = CLINIC.widget.starters[1]
    reply = requests.post(f"{stack.url}/webhooks/website/webhook", timeout=30,
                          json={"sender": f"starter-{uuid.uuid4().hex[:6]}", "message": f"/faq/{first}"})
    assert reply.status_code == 200 and reply.json()[0]["text"] == kb.topics[first].answer


@pytest.mark.parametrize(("name", "kind"), [("widget.js", "text/javascript"), ("widget.css", "text/css")])
def test_the_widget_files_are_served(stack: Any, name: str, kind: str) -> None:
    reply = requests.get(f"{stack.url}/webchat/{name}", timeout=10)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith(kind)
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["demo.html", "..%2Fcredentials.yml", "secrets.txt"])
def test_nothing_else_is_served_from_the_widget_folder(stack: Any, path: str) -> None:
    assert requests.get(f"{stack.url}/webchat/{path}", timeout=10).status_code == 404


# ---- the widget's hand-off taps (for the report's funnel) --------------------

def handoff(stack: Any, body: Any, headers: Optional[Dict[str, str]] = None) -> requests.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    return requests.post(stack.url + "/webhooks/website/handoff", data=data,
                         headers={**JSON, **(headers or {})}, timeout=30)


def test_a_tap_on_the_clinic_phone_or_booking_link_is_recorded_once_per_tap(stack: Any) -> None:
    import sqlite3

    sender = new_sender("tap")
    first = requests.post(webhook(stack, "website"), json={"sender": sender, "message": "how do i book"},
                          timeout=30)
    assert first.status_code == 200
    token = first.headers["X-Conversation-Token"]
    for payload in (CLINIC.phone_link, CLINIC.booking_url, "https://elsewhere.example/", "tel:000"):
        reply = handoff(stack, {"sender": sender, "payload": payload, "token": token},
                        {"Origin": ALLOWED_ORIGIN})
        assert reply.status_code == 204
        assert reply.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    with sqlite3.connect(stack.settings.tracker_db) as store:
        rows = store.execute("SELECT data FROM events WHERE sender_id = ? AND action_name = 'handoff_choice'",
                             (sender,)).fetchall()
    assert [json.loads(data)["value"] for (data,) in rows] == ["call", "book_online"]


def test_a_tap_for_an_unknown_conversation_creates_nothing(stack: Any) -> None:
    import sqlite3

    sender = new_sender("tap")
    body = {"sender": sender, "payload": CLINIC.phone_link, "token": conversation_token(stack, sender)}
    assert handoff(stack, body, {"Origin": ALLOWED_ORIGIN}).status_code == 204
    with sqlite3.connect(stack.settings.tracker_db) as store:
        assert store.execute("SELECT COUNT(*) FROM events WHERE sender_id = ?", (sender,)).fetchone() == (0,)


@pytest.mark.parametrize("body, status", [
    ("not json", 400), ({"sender": "a b", "payload": "tel:1"}, 400), ({"sender": "ok"}, 400),
    ({"sender": "ok", "payload": 5}, 400)])
def test_bad_taps_get_a_4xx_with_a_json_error(stack: Any, body: Any, status: int) -> None:
    reply = handoff(stack, body)
    assert reply.status_code == status and "error" in reply.json()


def test_taps_from_other_sites_are_refused(stack: Any) -> None:
    evil = {"Origin": "https://evil.example"}
    assert handoff(stack, {"sender": "x", "payload": CLINIC.phone_link}, evil).status_code == 403
    preflight = requests.options(stack.url + "/webhooks/website/handoff", timeout=30, headers={
        **evil, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 403
    allowed = requests.options(stack.url + "/webhooks/website/handoff", timeout=30, headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204 and allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_feedback_needs_the_widget_the_token_and_a_known_answer(stack: Any) -> None:
    import sqlite3

    sender = f"feedback-{uuid.uuid4().hex[:6]}"
    answer = requests.post(f"{stack.url}/webhooks/website/webhook", timeout=30,
                           json={"sender": sender, "message": "i want to book"}).json()[0]["text"]
    token = conversation_token(stack, sender)
    url = stack.url + "/webhooks/website/feedback"
    body = {"sender": sender, "token": token, "rating": "down", "answer": answer}
    origin = {**JSON, "Origin": ALLOWED_ORIGIN}
    assert requests.post(url, json=body, timeout=30).status_code == 403  # no Origin: not the widget
    assert requests.post(url, data=json.dumps({**body, "token": "forged"}), headers=origin,
                         timeout=30).status_code == 403
    assert requests.post(url, data=json.dumps({**body, "rating": "meh"}), headers=origin,
                         timeout=30).status_code == 400
    assert requests.post(url, data=json.dumps({**body, "answer": "never said"}), headers=origin,
                         timeout=30).status_code == 204  # accepted, but nothing to record
    reply = requests.post(url, data=json.dumps(body), headers=origin, timeout=30)
    assert reply.status_code == 204 and reply.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    with sqlite3.connect(stack.settings.tracker_db) as db:
        values = [json.loads(data)["value"] for (data,) in db.execute(
            "SELECT data FROM events WHERE sender_id = ? AND action_name = 'answer_feedback'", (sender,))]
    assert values == ["down:utter_handoff"]
