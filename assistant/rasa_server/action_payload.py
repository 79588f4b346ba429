"""The action server's request: the recent part of the session, encoded once (issue 20).

Rasa sends the action server the conversation's whole tracker, every event of
the session, for each custom action (two or three a turn, and a form's
validation twice more), and the action server parses it all. At turn 400
that was 1.4 MB of JSON per call; building, encoding and parsing it grew
with the conversation (py-spy, turns 350-399 of one conversation: building
the events' dicts 7% and encoding them 14% of the Rasa server's CPU, even
with each event's JSON reused as below).

So the request carries only the events the custom actions read
(assistant/contracts.py, ACTION_HISTORY_USER_TURNS): those from the 8th
latest user message on, and back to the start of a form that is in progress
or ended in this turn (the call-back's reference is made from when the form
started). Everything else in the request (slots, latest message, active
loop, latest action...) is Rasa's, computed from the whole tracker as
before. The actions read at most the last four user turns (follow-ups), the
last two (the clarification's "asked already?") and the form's start;
tests/test_action_history.py runs every custom action on every request of
served conversations, with the whole history and with this part, and
compares what they return.

The events are then encoded one by one, each event's JSON kept on the event
object with a private copy of the dict it was made from, and reused while
the event still turns into an equal dict. The rest of the body is encoded
as Rasa's client would (``json.dumps``) and the events spliced in, with
json.dumps's own separators. Any other body goes through ``json.dumps`` as
before. tests/test_action_payload.py checks the bytes against json.dumps.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
from typing import Any, Dict, List, Sequence

import aiohttp
import rasa
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import ActiveLoop, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

from assistant.contracts import ACTION_HISTORY_USER_TURNS
from assistant.shared.patching import replace

_PLACEHOLDER = "assistant.rasa_server.action_payload: the events go here"
_ENCODED_PLACEHOLDER = json.dumps(_PLACEHOLDER)


class ActionCall(dict):
    """Rasa's request body, plus the event objects its events were made from."""

    event_objects: List[Any]


def _event_json(event: Any, as_dict: Dict[str, Any]) -> str:
    cached = getattr(event, "_assistant_json", None)
    if cached is not None and cached[0] == as_dict:
        return str(cached[1])
    text = json.dumps(as_dict)
    with contextlib.suppress(AttributeError, TypeError):  # __slots__, or an uncopyable value
        event._assistant_json = (copy.deepcopy(as_dict), text)
    return text


def dumps(body: Any) -> str:
    """json.dumps(body), the same text, faster for the action calls made here."""
    if not isinstance(body, ActionCall):
        return json.dumps(body)
    tracker = body.get("tracker")
    events = tracker.get("events") if isinstance(tracker, dict) else None
    objects = getattr(body, "event_objects", None)
    if not isinstance(tracker, dict) or not isinstance(events, list) or objects is None \
            or len(objects) != len(events):
        return json.dumps(body)
    head = json.dumps({**body, "tracker": {**tracker, "events": _PLACEHOLDER}})
    if head.count(_ENCODED_PLACEHOLDER) != 1:
        return json.dumps(body)
    encoded = "[" + ", ".join(_event_json(event, as_dict) for event, as_dict in zip(objects, events,
                                                                                   strict=True)) + "]"
    return head.replace(_ENCODED_PLACEHOLDER, encoded)


def history_start(events: Sequence[Any], form_active: bool,
                  user_turns: int = ACTION_HISTORY_USER_TURNS) -> int:
    """The index of the first event the custom actions need: the `user_turns`-th
    latest user message, or the start of a form that is active or ended after
    the latest user message, whichever is earlier."""
    users, wants_form_start = 0, form_active
    position = len(events)
    for event in reversed(events):
        position -= 1
        if isinstance(event, UserUttered):
            users += 1
        elif isinstance(event, ActiveLoop):
            if event.name:
                wants_form_start = False  # found it
            elif users == 0:
                wants_form_start = True  # a form ended in this turn: its finishing action reads the start
        if users >= user_turns and not wants_form_start:
            return position
    return 0


def recent_events(tracker: DialogueStateTracker) -> List[Any]:
    events = tracker.events
    start = history_start(events, tracker.active_loop_name is not None)
    return list(itertools.islice(events, start, None))


def action_call_format(self: RemoteAction, tracker: DialogueStateTracker, domain: Any) -> ActionCall:
    """Rasa 3.6.21's RemoteAction._action_call_format, with the recent events only."""
    body = ActionCall({
        "next_action": self._name,
        "sender_id": tracker.sender_id,
        "tracker": tracker.current_state(EventVerbosity.NONE),  # all but the events, computed as before
        "version": rasa.__version__,
    })
    if (not self._is_selective_domain_enabled()
            or domain.does_custom_action_explicitly_need_domain(self.name())):
        body["domain"] = domain.as_dict()
    body.event_objects = recent_events(tracker)
    body["tracker"]["events"] = [event.as_dict() for event in body.event_objects]
    return body


def install() -> None:
    def session(self: EndpointConfig) -> aiohttp.ClientSession:
        # Rasa 3.6.21's EndpointConfig.session, with our JSON encoder.
        auth = (aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
                if self.basic_auth else None)
        return aiohttp.ClientSession(headers=self.headers, auth=auth,
                                     timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                                     json_serialize=dumps)

    replace(RemoteAction, "_action_call_format", action_call_format)
    replace(EndpointConfig, "session", session)
