"""The action server's request encoded in proportion to what is new (issue 20).

Rasa sends the action server the conversation's whole tracker, every event of
the session, for each custom action (two or three a turn, and a form's
validation again). Encoding that JSON was the largest cost left at turn 400
(py-spy, turns 350-399 of one conversation: 30% of the server's CPU; the
events were 1.4 MB of JSON, which took 80 ms to encode here on a loaded
machine, while comparing them with a copy took 2 ms).

Here the request body is the same dict Rasa builds, and the same bytes are
sent: the events are encoded one by one, each event's JSON kept on the event
object with a private copy of the dict it was made from, and reused while
the event still turns into an equal dict. The rest of the body is encoded
as Rasa's client would (``json.dumps``) and the events spliced in, with
json.dumps's own separators. Any other body goes through ``json.dumps`` as
before. tests/test_action_payload.py checks the bytes against json.dumps on
the requests of a served conversation.

What the action server receives, and has to parse, is unchanged: that part
still grows with the conversation (see README, Performance).
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any, Dict, List

import aiohttp
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

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


def install() -> None:
    stock_format = RemoteAction._action_call_format

    def action_call_format(self: RemoteAction, tracker: Any, domain: Any) -> Dict[str, Any]:
        body = ActionCall(stock_format(self, tracker, domain))
        body.event_objects = list(tracker.events)  # what current_state(EventVerbosity.ALL) lists
        return body

    def session(self: EndpointConfig) -> aiohttp.ClientSession:
        # Rasa 3.6.21's EndpointConfig.session, with our JSON encoder.
        auth = (aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
                if self.basic_auth else None)
        return aiohttp.ClientSession(headers=self.headers, auth=auth,
                                     timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                                     json_serialize=dumps)

    replace(RemoteAction, "_action_call_format", action_call_format)
    replace(EndpointConfig, "session", session)
