"""Finish or cancel a call-back request.

A confirmed request is stored durably (assistant/callback_requests/store.py) *before* the
visitor is told it was received; if the store is down the bot says so and gives
the phone number instead. The request key is derived from the conversation and
the moment the form started, so a repeated confirmation stores it once.

Abuse limits (one client created 147 requests in 21 s before these): a contact
with an open request gets "we already have your request CB-12" instead of a
second one, and one IP address can leave at most ``callback_requests_per_ip``
requests (clinic.yml ``rate_limits``, default 3 an hour). The website channel
puts a keyed hash of the visitor's address into the message metadata; trusted
REST integrations and local clients carry none and have no per-address limit.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.callback_form import NO_NOTE
from assistant.callback_requests.store import CallbackDraft, StoreUnavailable, current_store
from assistant.rasa_server.conversation_token import CLIENT_METADATA_KEY
from assistant.rasa_server.rate_limits import CALLBACK_REQUESTS_PER_IP, limiter_for
from assistant.settings.clinic import current_clinic

logger = logging.getLogger(__name__)

FORM = "callback_form"
FORM_SLOTS = (
    "callback_name", "callback_contact", "callback_time", "callback_reason",
    "callback_consent", "callback_contact_type",
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


def client_of(tracker: Tracker) -> Optional[str]:
    """The (hashed) address the visitor's latest message came from, if any."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            client = (event.get("metadata") or {}).get(CLIENT_METADATA_KEY)
            return client if isinstance(client, str) else None
    return None


def over_the_limit(tracker: Tracker) -> bool:
    client = client_of(tracker)
    if client is None:
        return False
    limiter = limiter_for(current_clinic().rate_limits)
    return limiter.hit(CALLBACK_REQUESTS_PER_IP, client) is not None


class ActionFinishCallback(Action):
    """Runs when the form ends: store if confirmed, otherwise just clean up."""

    def name(self) -> str:
        return "action_finish_callback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        # Consent and send are one answer: "yes" to the summary.
        if tracker.get_slot("callback_consent") is not True:
            return reset_form_slots()  # the validator already told the visitor why
        draft, store = draft_from(tracker), current_store()
        try:
            if store.find_by_key(draft.request_key) is None:  # not a repeated confirmation
                existing = store.open_request_for(draft.contact)
                if existing is not None:
                    dispatcher.utter_message(response="utter_callback_already_open",
                                             reference=f"CB-{existing.id}")
                    return reset_form_slots()
                if over_the_limit(tracker):
                    dispatcher.utter_message(response="utter_callback_limit")
                    return reset_form_slots()
            clinic = current_clinic()
            request, _ = store.submit(draft, notify=clinic.callback_webhook_url is not None,
                                      email=bool(clinic.notify_email))
        except Exception as failure:  # the store, or the limits' storage, is down
            if not isinstance(failure, StoreUnavailable):
                logger.error("call-back limit unavailable: %s", type(failure).__name__)
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
    and nothing should compete with it; or "delete my data" is to be asked
    (data/rules/safety.yml), which says the request was stopped."""

    def name(self) -> str:
        return "action_close_callback_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        return close_form_events()
