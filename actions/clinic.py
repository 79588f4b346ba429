"""Session start: copy the clinic's details (clinic.yml) into slots.

Responses then interpolate {clinic_phone}, {clinic_booking_url}... so nothing
clinic-specific is written in domain.yml. The config is read once per process
(validated at start-up by the launcher); a changed file applies to
conversations that start after a restart.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from assistant.settings.clinic import current_clinic


def clinic_slot_events() -> List[EventType]:
    return [SlotSet(name, value) for name, value in current_clinic().slots().items()]


class ActionSessionStart(Action):
    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        # Rasa's default session start, plus the clinic's details.
        return [SessionStarted(), *clinic_slot_events(), ActionExecuted("action_listen")]
