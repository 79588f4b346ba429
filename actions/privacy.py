""""Delete my data" / "forget me".

The bot asks first (utter_confirm_forget_me, data/rules/safety.yml); this action
runs only on a yes straight after the question. It deletes the conversation's
call-back requests and confirms. The conversation itself is deleted by the
tracker store when this turn ends (assistant/rasa_server/tracker_store.py): it
sees that action_forget_me ran and removes every stored event of the
conversation instead of saving the turn.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.callback import close_form_events
from assistant.callback_requests.store import StoreUnavailable, current_store
from assistant.contracts import ACTION_FORGET_ME


class ActionForgetMe(Action):
    def name(self) -> str:
        return ACTION_FORGET_ME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        try:
            current_store().delete_conversation(tracker.sender_id)
        except StoreUnavailable:
            dispatcher.utter_message(response="utter_forget_me_partly")
        else:
            dispatcher.utter_message(response="utter_forget_me_done")
        return close_form_events()
