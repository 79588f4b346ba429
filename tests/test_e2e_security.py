"""Application security through the real servers (issue 16, part B): conversation
tokens, the authenticated REST channel, only offered payloads, rate limits and
the call-back request limits, and what a deletion leaves on disk.

A second stack (`guarded`) runs with low limits and REST_API_TOKEN set; the
session's `stack` has neither. Requests "through a proxy" are sent from
loopback with an X-Forwarded-For header, as nginx sends them; each test uses its
own documentation address (RFC 5737) so their counters never meet.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from assistant.callback_requests.store import CallbackStore
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import load_clinic
from tests.conftest import ALLOWED_ORIGIN, conversation_token
from tests.helpers.processes import stack_settings

CLINIC = load_clinic(PROJECT_ROOT / "clinic.yml")
REST_TOKEN = "rest-token-for-tests-" + "x" * 20
LIMITS = {"messages_per_ip": "30/minute", "messages_per_conversation": "12/minute",
          "new_conversations_per_ip": "4/minute", "callback_requests_per_ip": "2/hour"}
TOKEN_HEADER = "X-Conversation-Token"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[Any]:
    from assistant.ops.launcher import Stack

    workdir = tmp_path_factory.mktemp("guarded")
    data = workdir / "var"  # made 700 by the launcher, with everything in it 600
    limits = "".join(f"  {key}: {value}\n" for key, value in LIMITS.items())
    settings = stack_settings(workdir, model_path, clinic_extra=f"\nrate_limits:\n{limits}", data=data,
                              REST_API_TOKEN=REST_TOKEN)
    running = Stack(settings, log_dir=workdir / "logs").start()
    yield running
    running.stop()


class Visitor:
    """A website visitor: keeps the conversation's token like the widget does."""

    def __init__(self, stack: Any, address: Optional[str] = None, prefix: str = "web") -> None:
        self.stack, self.sender, self.token = stack, f"{prefix}-{uuid.uuid4().hex[:12]}", None
        self.headers = {"X-Forwarded-For": address} if address else {}

    def post(self, message: str, token: Any = "mine", sender: Optional[str] = None) -> requests.Response:
        body: Dict[str, Any] = {"sender": sender or self.sender, "message": message}
        token = self.token if token == "mine" else token
        if token is not None:
            body["token"] = token
        reply = requests.post(f"{self.stack.url}/webhooks/website/webhook", json=body,
                              headers=self.headers, timeout=60)
        if reply.headers.get(TOKEN_HEADER):
            self.token = reply.headers[TOKEN_HEADER]
        return reply

    def say(self, message: str) -> str:
        reply = self.post(message)
        assert reply.status_code == 200, (message, reply.status_code, reply.text)
        return " ".join(m.get("text", "") for m in reply.json())

    def buttons(self, message: str) -> List[str]:
        reply = self.post(message)
        assert reply.status_code == 200
        return [b["payload"] for m in reply.json() for b in m.get("buttons", [])]


def fill_callback_form(visitor: Visitor, contact: str) -> str:
    """The whole call-back form; the bot's last reply."""
    assert "/request_callback" in visitor.buttons("how do i book")
    assert "What name" in visitor.say("/request_callback")
    visitor.say("Robin Example")
    visitor.say(contact)
    visitor.say("Weekday mornings")
    assert "Robin Example" in visitor.say("skip")  # the summary: send it?
    return visitor.say("/affirm")


def events(stack: Any, sender: str) -> List[Dict[str, Any]]:
    with sqlite3.connect(stack.settings.tracker_db) as db:
        rows = db.execute("SELECT data FROM events WHERE sender_id = ? ORDER BY id", (sender,)).fetchall()
    return [json.loads(data) for (data,) in rows]


def user_events(stack: Any, sender: str) -> List[Dict[str, Any]]:
    return [event for event in events(stack, sender) if event["event"] == "user"]


# ---- conversation tokens ---------------------------------------------------------

def test_the_first_reply_carries_the_token_and_the_owner_goes_on_with_it(guarded: Any) -> None:
    visitor = Visitor(guarded)
    first = visitor.post("does it hurt?")
    assert first.status_code == 200 and first.headers[TOKEN_HEADER] == visitor.token
    assert visitor.token == conversation_token(guarded, visitor.sender)
    assert "minutes" in visitor.say("how long does a session take")
    # only the first reply carries it
    assert TOKEN_HEADER not in visitor.post("thanks").headers


def test_another_conversations_id_without_its_token_gets_nothing_submits_and_deletes_nothing(
        guarded: Any) -> None:
    owner = Visitor(guarded)
    assert "/request_callback" in owner.buttons("how do i book")
    owner.say("/request_callback")
    owner.say("Robin Victim")
    owner.say("victim.private@mail.example")
    owner.say("Weekday mornings")
    summary = owner.say("skip")  # the summary with the contact details, waiting for "Yes, send it"
    assert "victim.private@mail.example" in summary
    stored = events(guarded, owner.sender)

    attacker = Visitor(guarded, prefix="attacker")
    for token in (None, "", "forged-token", attacker.token, conversation_token(guarded, "someone-else")):
        for message in ("/affirm", "yes", "please delete my data", "what did I tell you?"):
            reply = attacker.post(message, token=token, sender=owner.sender)
            assert reply.status_code == 403, (token, message, reply.text)
            assert reply.json() == {"error": "this conversation needs its token; start a new chat",
                                    "code": "conversation_token"}
            assert "victim" not in reply.text.lower() and TOKEN_HEADER not in reply.headers
    # nothing was submitted, deleted or added
    assert events(guarded, owner.sender) == stored
    store = CallbackStore(guarded.settings.extra_env["REQUESTS_DB_URL"])
    assert [r for r in store.requests() if r.conversation_id == owner.sender] == []
    # the owner still can
    assert "saved (reference CB-" in owner.say("/affirm")


def test_a_hand_off_report_needs_an_origin_and_the_token(guarded: Any) -> None:
    visitor = Visitor(guarded)
    visitor.say("how do i book")
    url = f"{guarded.url}/webhooks/website/handoff"

    def tap(body: Dict[str, Any], origin: Optional[str] = ALLOWED_ORIGIN) -> int:
        headers = {"Origin": origin} if origin else {}
        return requests.post(url, json={"sender": visitor.sender, "payload": CLINIC.phone_link, **body},
                             headers=headers, timeout=30).status_code

    assert tap({"token": visitor.token}, origin=None) == 403
    assert tap({}) == 403
    assert tap({"token": "forged"}) == 403
    assert [e for e in events(guarded, visitor.sender) if e.get("name") == "handoff_choice"] == []
    assert tap({"token": visitor.token}) == 204
    recorded = [e["value"] for e in events(guarded, visitor.sender) if e.get("name") == "handoff_choice"]
    assert recorded == ["call"]


def test_a_sender_with_a_trailing_newline_is_refused(guarded: Any) -> None:
    reply = requests.post(f"{guarded.url}/webhooks/website/webhook", timeout=30,
                          json={"sender": "visitor-1\n", "message": "hello"})
    assert reply.status_code == 400


# ---- the REST channel: trusted integrations only ----------------------------------

def rest(stack: Any, headers: Dict[str, str], sender: str = "visitor-1") -> requests.Response:
    return requests.post(f"{stack.url}/webhooks/rest/webhook", timeout=30, headers=headers,
                         json={"sender": sender, "message": "does it hurt?"})


def test_rest_without_a_token_configured_answers_direct_local_clients_only(stack: Any) -> None:
    assert rest(stack, {}).status_code == 200  # the README's curl example
    for proxy_header in ({"X-Forwarded-For": "198.51.100.7"}, {"Forwarded": "for=198.51.100.7"},
                         {"X-Real-IP": "198.51.100.7"}, {"X-Forwarded-For": "127.0.0.1"}):
        reply = rest(stack, proxy_header)
        assert reply.status_code == 403 and "REST_API_TOKEN" in reply.json()["error"]


def test_rest_with_a_token_configured_needs_the_bearer_token(guarded: Any) -> None:
    proxied = {"X-Forwarded-For": "198.51.100.8"}
    for headers in ({}, proxied, {**proxied, "Authorization": "Bearer wrong"},
                    {**proxied, "Authorization": REST_TOKEN}):
        reply = rest(guarded, headers)
        assert reply.status_code == 401 and reply.headers["WWW-Authenticate"] == "Bearer", headers
    bearer = {**proxied, "Authorization": f"Bearer {REST_TOKEN}"}
    accepted = rest(guarded, bearer, f"rest-{uuid.uuid4().hex[:8]}")
    assert accepted.status_code == 200 and "uncomfortable" in accepted.json()[0]["text"]


# ---- only payloads the bot offered ------------------------------------------------------

@pytest.mark.parametrize("typed", ["/emergency", "/forget_me", "/crisis",
                                   '/inform{"email": "typed.payload@mail.example"}'])
def test_a_typed_intent_payload_is_taken_as_text(guarded: Any, typed: str) -> None:
    visitor = Visitor(guarded)
    visitor.say("does it hurt?")
    visitor.say(typed)
    last = user_events(guarded, visitor.sender)[-1]
    assert last["text"] == typed.lstrip("/")  # as text...
    # ...classified by the model (Rasa's unpacking of "/intent" gives that one
    # intent at confidence 1.0, and the entities written in the message)
    assert len(last["parse_data"]["intent_ranking"]) > 1
    assert last["parse_data"]["intent"]["confidence"] < 1.0
    assert last["parse_data"]["entities"] == []


def test_typed_payloads_inject_neither_an_emergency_nor_a_deletion(guarded: Any) -> None:
    visitor = Visitor(guarded)
    visitor.say("does it hurt?")
    assert CLINIC.emergency_number not in visitor.say("/emergency")
    assert "deleted" not in visitor.say("/forget_me")  # which used to skip the 0.85 bar
    assert len(user_events(guarded, visitor.sender)) == 3  # the conversation is still there


def test_the_payload_of_a_button_just_offered_is_followed(guarded: Any) -> None:
    visitor = Visitor(guarded)
    # the related topics, and links (https: "Read more", tel:) the widget opens itself
    payloads = [p for p in visitor.buttons("does it hurt?") if p.startswith("/")]
    assert payloads and all(p.startswith("/faq/") for p in payloads)
    follow = visitor.post(payloads[0])
    assert follow.status_code == 200
    assert user_events(guarded, visitor.sender)[-1]["text"] == payloads[0]
    # a payload from an earlier turn, or never offered, is text
    visitor.say("/faq/" + "no_such_topic")
    assert user_events(guarded, visitor.sender)[-1]["text"] == "faq/no_such_topic"


# ---- rate limits through the running stack ------------------------------------------------

def test_new_conversations_per_address_are_limited_with_a_friendly_429(guarded: Any) -> None:
    address = "203.0.113.11"
    codes = [Visitor(guarded, address).post("hello").status_code for _ in range(6)]
    assert codes == [200] * 4 + [429] * 2  # new_conversations_per_ip: 4/minute
    refused = Visitor(guarded, address).post("hello")
    assert refused.json()["code"] == "rate_limited" and refused.json()["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert TOKEN_HEADER not in refused.headers
    # another address, and a local client, are not affected
    assert Visitor(guarded, "203.0.113.12").post("hello").status_code == 200
    assert Visitor(guarded).post("hello").status_code == 200


def test_messages_per_conversation_are_limited(guarded: Any) -> None:
    visitor = Visitor(guarded, "203.0.113.21")
    codes = [visitor.post("thanks").status_code for _ in range(14)]
    assert codes == [200] * 12 + [429] * 2  # messages_per_conversation: 12/minute


def test_messages_per_address_are_limited_across_conversations(guarded: Any) -> None:
    visitors = [Visitor(guarded, "203.0.113.31") for _ in range(3)]
    codes = [visitors[turn % 3].post("thanks").status_code for turn in range(33)]
    assert codes == [200] * 30 + [429] * 3  # messages_per_ip: 30/minute, counted by both workers


def test_a_spoofed_forwarded_for_from_a_remote_client_is_not_believed() -> None:
    from assistant.rasa_server.rest_channel import client_address

    class FakeRequest:
        def __init__(self, ip: str, headers: Dict[str, str]) -> None:
            self.ip, self.headers = ip, headers

    spoofed: Any = FakeRequest("198.51.100.50", {"x-forwarded-for": "1.2.3.4"})
    assert client_address(spoofed) == "198.51.100.50"
    through_local_proxy: Any = FakeRequest("127.0.0.1", {"x-forwarded-for": "1.2.3.4, 198.51.100.51"})
    assert client_address(through_local_proxy) == "198.51.100.51"  # what our proxy appended
    direct: Any = FakeRequest("127.0.0.1", {})
    assert client_address(direct) is None


# ---- call-back request limits ------------------------------------------------------------

def test_one_open_request_per_contact(guarded: Any) -> None:
    first = fill_callback_form(Visitor(guarded), "0412 555 101")
    assert "saved (reference CB-" in first
    reference = first.split("reference ")[1].split(")")[0]
    second = fill_callback_form(Visitor(guarded), "0412 555 101")
    assert f"We already have your request {reference}" in second
    store = CallbackStore(guarded.settings.extra_env["REQUESTS_DB_URL"])
    assert len([r for r in store.requests() if r.contact == "+61412555101"]) == 1


def test_call_back_requests_per_address_are_limited(guarded: Any) -> None:
    address = "203.0.113.41"
    replies = [fill_callback_form(Visitor(guarded, address), f"0412 555 2{n:02d}") for n in range(3)]
    assert ["saved (reference CB-" in reply for reply in replies] == [True, True, False]
    assert "can't take another call-back request" in replies[2] and CLINIC.phone in replies[2]
    store = CallbackStore(guarded.settings.extra_env["REQUESTS_DB_URL"])
    assert not [r for r in store.requests() if r.contact == "+61412555202"]
    # the address is stored only as a keyed hash, in the message metadata
    visitor = Visitor(guarded, address)
    visitor.say("hello")
    [event] = user_events(guarded, visitor.sender)
    assert address not in json.dumps(events(guarded, visitor.sender))
    assert len(event["metadata"]["client"]) == 20


# ---- data hygiene on disk ---------------------------------------------------------------------

def test_files_under_the_data_folder_are_private(guarded: Any) -> None:
    data = guarded.settings.tracker_db.parent
    Visitor(guarded).say("hello")  # every store has been written
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    names = {path.name for path in data.iterdir()}
    assert {"tracker.db", "tracker.db-wal", "requests.db", "limits.db", "locks.db",
            "conversation.key"} <= names
    for path in data.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_after_forget_me_the_email_is_in_no_database_file_nor_wal(guarded: Any) -> None:
    email = f"forget.{uuid.uuid4().hex[:8]}@mail.example"
    visitor = Visitor(guarded)
    assert "saved (reference CB-" in fill_callback_form(visitor, email)
    data = guarded.settings.tracker_db.parent

    def files_with_email() -> List[str]:
        return sorted(p.name for p in data.iterdir() if email.encode() in p.read_bytes())

    assert "tracker.db-wal" in files_with_email() or "tracker.db" in files_with_email()
    assert "can't be undone" in visitor.say("please delete my data")
    assert "deleted this conversation" in visitor.say("/affirm")
    assert files_with_email() == []


def test_message_text_of_slash_messages_never_reaches_the_logs(guarded: Any) -> None:
    secret = f"logged.{uuid.uuid4().hex[:8]}@mail.example"
    headers = {"Authorization": f"Bearer {REST_TOKEN}"}
    for message in (f'/inform{{"email": "{secret}"}}', f"/no_such_intent_{secret}",
                    f"/inform{{broken {secret}}}", f"/{{{secret}}}"):
        reply = requests.post(f"{guarded.url}/webhooks/rest/webhook", headers=headers, timeout=30,
                              json={"sender": f"log-{uuid.uuid4().hex[:8]}", "message": message})
        assert reply.status_code == 200
        Visitor(guarded).post(message)
    logs = "\n".join(p.read_text(errors="replace") for p in guarded.log_dir.glob("*.log"))
    assert logs and secret not in logs
