"""The action server is sent the recent part of the conversation
(assistant/rasa_server/action_payload.py), and every custom action returns
what it returns with the whole history: on every action call of long
conversations the stack served, both requests go to the real action server
and their answers are compared. The conversations hold what the actions
look back for: follow-ups, "Did you mean...?" twice in a row, a call-back
form kept open across more user turns than the window (its reference is
made from when the form started), a cancelled form and one closed by an
emergency."""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.error
import urllib.request
import uuid
from typing import Any, Dict, List, Set, Tuple

import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.actions.forms import FormAction
from rasa.shared.core.events import ActionExecuted, ActiveLoop, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from assistant.contracts import ACTION_FORGET_ME, ACTION_HISTORY_USER_TURNS
from assistant.rasa_server import action_payload
from assistant.rasa_server.tracker_store import PrivacySQLTrackerStore
from tests.helpers.conversations import look_back_script
from tests.helpers.rest import say, texts

STOCK_FORMAT = RemoteAction._action_call_format
STOCK_TEMPORARY = FormAction._temporary_tracker


@pytest.fixture(scope="module")
def served(stack: Any, agent: Any) -> DialogueStateTracker:
    sender = f"history-{uuid.uuid4().hex[:8]}"
    replies = [texts(say(stack, sender, line)) for line in look_back_script("0412 345 670")]
    assert any("CB-" in text for reply in replies for text in reply), "the long form was not confirmed"
    store = PrivacySQLTrackerStore(domain=agent.processor.domain, dialect="sqlite",
                                   db=str(stack.settings.tracker_db))
    tracker = asyncio.run(store.retrieve(sender))
    assert tracker is not None
    return tracker


def post(stack: Any, body: Dict[str, Any]) -> Tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.settings.actions_port}/webhook", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {stack.action_token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def calls(served: DialogueStateTracker, domain: Any) -> List[Tuple[str, DialogueStateTracker]]:
    """(action, the tracker it ran on) for every custom action the conversation
    ran, and for each step of the form that set slots, its validation and the
    custom action asking the next question, on the trackers the form makes."""
    custom = {name for name in domain.user_actions if not name.startswith("utter_")}
    form = FormAction("callback_form", None)
    events = list(served.events)
    tracker = DialogueStateTracker(served.sender_id, domain.slots)  # the call-back's reference uses it
    found = []
    for index, event in enumerate(events):
        if isinstance(event, SessionStarted):  # (the store keeps no ActionExecuted for it)
            found.append(("action_session_start", tracker.copy()))
        if isinstance(event, ActionExecuted) and event.action_name in custom:
            found.append((event.action_name, tracker.copy()))
        form_step = isinstance(event, ActionExecuted) and event.action_name == form.name()
        if form_step and tracker.active_loop_name:
            step = list(itertools.takewhile(lambda later: isinstance(later, SlotSet), events[index + 1:]))
            candidates = [SlotSet(slot.key, slot.value) for slot in step if slot.key != "requested_slot"]
            if candidates:
                found.append(("validate_callback_form", STOCK_TEMPORARY(form, tracker, candidates, domain)))
            asks = [f"action_ask_{slot.value}" for slot in step
                    if slot.key == "requested_slot" and slot.value]
            for ask in (name for name in asks if name in custom):
                found.append((ask, STOCK_TEMPORARY(form, tracker, step, domain)))
        tracker.update(event)
    return found


def test_every_custom_action_answers_the_same_with_the_recent_history(stack: Any, agent: Any,
                                                                      served: DialogueStateTracker) -> None:
    domain = agent.processor.domain
    endpoint = EndpointConfig(f"http://127.0.0.1:{stack.settings.actions_port}/webhook")
    exercised: Set[str] = set()
    shortened = reached_back_to_the_form = 0
    for name, tracker in calls(served, domain):
        action = RemoteAction(name, endpoint)
        whole = STOCK_FORMAT(action, tracker, domain)
        recent = action_payload.action_call_format(action, tracker, domain)
        assert {**recent, "tracker": {**recent["tracker"], "events": None}} == \
            {**whole, "tracker": {**whole["tracker"], "events": None}}  # the rest is Rasa's
        assert whole["tracker"]["events"][-len(recent["tracker"]["events"]):] == recent["tracker"]["events"]
        assert post(stack, recent) == post(stack, whole), name
        exercised.add(name)
        shortened += len(recent["tracker"]["events"]) < len(whole["tracker"]["events"])
        users = sum(1 for event in recent["tracker"]["events"] if event["event"] == "user")
        reached_back_to_the_form += users > ACTION_HISTORY_USER_TURNS
    print(f"\n{len(exercised)} custom actions, {shortened} calls sent a shortened history, "
          f"{reached_back_to_the_form} reached back to the start of their form")
    # Every custom action but forgetting (which deletes the conversation this test reads).
    custom = {name for name in domain.user_actions if not name.startswith("utter_")}
    assert exercised == custom - {ACTION_FORGET_ME}
    assert shortened >= 15 and reached_back_to_the_form >= 5


def test_the_recent_history_starts_at_the_eighth_latest_message_or_the_form_start() -> None:
    def turns(count: int) -> List[Any]:
        return [event for number in range(count)
                for event in (ActionExecuted("action_listen"), UserUttered(f"m{number}"),
                              ActionExecuted("utter_x"))]

    start = action_payload.history_start
    events = turns(20)
    users = [i for i, event in enumerate(events) if isinstance(event, UserUttered)]
    assert start(events, form_active=False) == users[-ACTION_HISTORY_USER_TURNS]
    assert start(turns(3), form_active=False) == 0  # a short conversation: all of it
    # A form started 12 turns ago and still open: back to its start.
    form = turns(8) + [ActiveLoop("callback_form")] + turns(12)
    assert start(form, form_active=True) == 8 * 3
    # ... and the turn it ends in (its finishing action reads the start).
    ended = form + [ActionExecuted("callback_form"), ActiveLoop(None)]
    assert start(ended, form_active=False) == 8 * 3
    # A turn later nothing reads it any more.
    later = ended + turns(1)
    assert start(later, form_active=False) > 8 * 3


def test_the_follow_ups_look_back_no_further_than_the_window() -> None:
    from actions.follow_up import LOOKBACK_USER_TURNS

    # the follow-up itself, then up to LOOKBACK_USER_TURNS earlier messages
    assert LOOKBACK_USER_TURNS + 1 <= ACTION_HISTORY_USER_TURNS
