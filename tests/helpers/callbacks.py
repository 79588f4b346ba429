"""Call-back requests: a finished form and a settable clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.callback import ActionFinishCallback
from assistant.callback_requests.store import utcnow


def tracker(slots: Optional[Dict[str, Any]] = None, events: Optional[List[Dict[str, Any]]] = None,
            sender: str = "visitor-1") -> Tracker:
    return Tracker.from_dict({
        "sender_id": sender,
        "slots": slots or {},
        "latest_message": {"text": "", "intent": {}, "entities": []},
        "events": events or [],
        "paused": False,
        "latest_event_time": None,
        "followup_action": None,
        "active_loop": {"name": "callback_form"},
        "latest_action_name": None,
    })


FORM_STARTED = [{"event": "active_loop", "name": "callback_form", "timestamp": 1700000000.5}]


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


FILLED = {
    "callback_name": "Sam", "callback_contact": "+61412345678", "callback_contact_type": "phone",
    "callback_time": "Evenings", "callback_reason": "(none)", "callback_consent": True,
}


def finish(slots: Dict[str, Any]) -> tuple:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionFinishCallback().run(dispatcher, tracker(slots, FORM_STARTED), {}))
    return events, dispatcher.messages
