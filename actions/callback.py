"""Finish or cancel a call-back request.

A confirmed request is stored durably (assistant/callbacks.py) *before* the
visitor is told it was received; if the store is down the bot says so and gives
the phone number instead. The request key is derived from the conversation and
the moment the form started, so a repeated confirmation stores it once.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.callback_form import NO_NOTE
from assistant.callbacks import CallbackDraft, StoreUnavailable, current_store
from assistant.clinic import current_clinic

FORM = "callback_form"
FORM_SLOTS = (
    "callback_name", "callback_contact", "callback_time", "callback_reason",
    "callback_consent", "callback_confirmed", "callback_contact_type",
)


def reset_form_slots() -> List[EventType]:
    return [SlotSet(slot, None) for slot in FORM_SLOTS] + [SlotSet("callback_bad_contacts", 0)]


def close_form_events() -> List[EventType]:
    return [ActiveLoop(None), SlotSet("requested_slot", None), *reset_form_slots()]


def request_key(tracker: Tracker) -> str:
    """Stable for one filling of the form: conversation + when the form started."""
    started: Optional[float] = None
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == FORM:
            started = event.get("timestamp")
            break
    raw = f"{tracker.sender_id}|{started}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def draft_from(tracker: Tracker) -> CallbackDraft:
    reason = tracker.get_slot("callback_reason")
    return CallbackDraft(
        request_key=request_key(tracker),
        conversation_id=tracker.sender_id,
        name=tracker.get_slot("callback_name"),
        contact=tracker.get_slot("callback_contact"),
        contact_type=tracker.get_slot("callback_contact_type") or "phone",
        preferred_time=tracker.get_slot("callback_time"),
        reason=None if reason in (None, NO_NOTE) else reason,
    )


class ActionFinishCallback(Action):
    """Runs when the form ends: store if confirmed, otherwise just clean up."""

    def name(self) -> str:
        return "action_finish_callback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        confirmed = tracker.get_slot("callback_confirmed") is True
        if not (confirmed and tracker.get_slot("callback_consent") is True):
            return reset_form_slots()  # the validator already told the visitor why
        try:
            request, _ = current_store().submit(
                draft_from(tracker), notify=current_clinic().callback_webhook_url is not None
            )
        except StoreUnavailable:
            dispatcher.utter_message(response="utter_callback_not_saved")
            return reset_form_slots()
        dispatcher.utter_message(response="utter_callback_received", reference=f"CB-{request.id}")
        return reset_form_slots()


class ActionCancelCallback(Action):
    """"stop" / "cancel" during the form."""

    def name(self) -> str:
        return "action_cancel_callback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        dispatcher.utter_message(response="utter_callback_cancelled")
        return close_form_events()


class ActionCloseCallbackForm(Action):
    """End the form without a word: an emergency or crisis reply was just sent
    and nothing should compete with it."""

    def name(self) -> str:
        return "action_close_callback_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        return close_form_events()
