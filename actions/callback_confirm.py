"""The call-back form's last question: the summary and consent to send, in one.

Rasa runs ``action_ask_callback_consent`` instead of the response whenever the
form asks for consent. The first time it is just the summary; when the form
asks again (the visitor asked a question, said "thanks", ...) it first says the
request is NOT sent yet, so a half-finished request never looks finished.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

CONSENT_SLOT = "callback_consent"


class ActionAskCallbackConsent(Action):
    def name(self) -> str:
        return "action_ask_callback_consent"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        # The form asks with the slot it requested last time still set: the
        # same slot means this question was already shown once.
        if tracker.get_slot("requested_slot") == CONSENT_SLOT:
            dispatcher.utter_message(response="utter_callback_not_sent_yet")
        dispatcher.utter_message(response="utter_ask_callback_consent")
        return []
