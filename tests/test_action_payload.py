"""assistant/rasa_server/action_payload.py sends the action server the very bytes
json.dumps makes of Rasa's request, on every step of a served conversation,
also after events changed in place."""

from __future__ import annotations

import asyncio
import json
from typing import Any, List

from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import EntitiesAdded, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from assistant.rasa_server import action_payload


def test_the_same_bytes_as_json_dumps_along_a_served_conversation(agent: Any, served_events: List[Any],  # noqa: F811
                                                                  monkeypatch: Any) -> None:
    monkeypatch.setattr(RemoteAction, "_action_call_format", RemoteAction._action_call_format)
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    action_payload.install()
    domain = agent.processor.domain
    action = RemoteAction("action_follow_up", EndpointConfig("http://127.0.0.1:9/webhook"))
    tracker = DialogueStateTracker("payload", domain.slots)
    for number, event in enumerate(served_events):
        tracker.update(event)
        if number % 7 and number != len(served_events) - 1:
            continue
        body = action._action_call_format(tracker, domain)
        assert isinstance(body, action_payload.ActionCall)
        assert action_payload.dumps(body) == json.dumps(body)
        assert action_payload.dumps(body) == json.dumps(body)  # from the cached events
    # An event changed in place after it was encoded (entities added to the message).
    latest = next(e for e in reversed(tracker.events) if isinstance(e, UserUttered))
    tracker.update(EntitiesAdded([{"entity": "condition", "value": "headache", "start": 0, "end": 1}]))
    body = action._action_call_format(tracker, domain)
    assert latest.entities and action_payload.dumps(body) == json.dumps(body)
    assert action_payload.dumps({"a": [1, 2]}) == json.dumps({"a": [1, 2]})


def test_the_session_uses_it(monkeypatch: Any) -> None:
    monkeypatch.setattr(RemoteAction, "_action_call_format", RemoteAction._action_call_format)
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    action_payload.install()

    async def serializer() -> Any:
        async with EndpointConfig("http://127.0.0.1:9/webhook").session() as session:
            return session._json_serialize

    assert asyncio.run(serializer()) is action_payload.dumps
