"""What the Rasa server does while the action server cannot be reached.

FAQ answers are Rasa responses and need no action server, but stock Rasa
handles an unreachable action server badly (measured with the action server
killed, issue 16):

* a custom action logs a traceback and its turn gets no reply at all; in the
  call-back form the visitor's answer is silently dropped;
* `action_session_start` fails too, and because Rasa never runs it again for
  that conversation, the clinic's details (slots from clinic.yml) stay unset
  for its whole life: "Hi! I'm the None assistant".

Here, when the action server can't be reached or fails (connection refused,
timeout, a 5xx or a refused secret), `RemoteAction.run`:

* for `action_session_start`, returns the same events the action would
  (actions/clinic.py: a new session with the clinic's details), built here
  from the same clinic.yml;
* for any other action, says `utter_try_again_later` ("try again in a
  moment") and changes nothing else;
* for a form's validation (`validate_<form>`), says the same and also empties
  the slots Rasa extracted from this message: they were never checked (a
  phone number would be stored as typed, unnormalised). The form stays where
  it was and asks its question again, so once the action server is back (the
  launcher restarts it) the half-filled form goes on from there.

An action that *rejects* (HTTP 400, `ActionExecutionRejection`) is a normal
answer of a running action server and is passed on as before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, List

from assistant.shared.patching import check_version, replace

logger = logging.getLogger(__name__)

TRY_AGAIN_RESPONSE = "utter_try_again_later"
SESSION_START = "action_session_start"
VALIDATION_PREFIX = "validate_"  # a form's validation action: validate_<form>


def session_start_events() -> List[Any]:
    """actions/clinic.py's session start, from the Rasa server's side."""
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet

    from assistant.settings.clinic import current_clinic

    slots = [SlotSet(name, value) for name, value in current_clinic().slots().items()]
    return [SessionStarted(), *slots, ActionExecuted(ACTION_LISTEN_NAME)]


def unchecked_slot_resets(tracker: Any) -> List[Any]:
    """SlotSet(None) for the slot values a form's validation was asked to check:
    Rasa passes them as the SlotSet events after the form's ActionExecuted."""
    from rasa.shared.core.constants import REQUESTED_SLOT
    from rasa.shared.core.events import ActionExecuted, SlotSet

    candidates: List[str] = []
    for event in reversed(tracker.events):
        if isinstance(event, ActionExecuted):
            break
        if isinstance(event, SlotSet) and event.key != REQUESTED_SLOT and event.key not in candidates:
            candidates.append(event.key)
    return [SlotSet(name, None) for name in reversed(candidates)]


async def try_again_events(output_channel: Any, nlg: Any, tracker: Any) -> List[Any]:
    from rasa.core.actions.action import create_bot_utterance

    message = await nlg.generate(TRY_AGAIN_RESPONSE, tracker, output_channel.name())
    if not message:
        return []
    message["utter_action"] = TRY_AGAIN_RESPONSE
    return [create_bot_utterance(message)]


def _with_fallback(stock: Callable[..., Any]) -> Callable[..., Any]:
    from rasa.core.actions.action import ActionExecutionRejection
    from rasa.shared.exceptions import RasaException

    async def run(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> List[Any]:
        try:
            return await stock(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise
        except (RasaException, asyncio.TimeoutError) as error:
            reason = error.__cause__ or error.__context__ or error
            logger.warning("Action server unavailable for %s (%s); answering without it",
                           self.name(), type(reason).__name__)
            if self.name() == SESSION_START:
                return session_start_events()
            events = await try_again_events(output_channel, nlg, tracker)
            if self.name().startswith(VALIDATION_PREFIX):
                events += unchecked_slot_resets(tracker)
            return events

    return run


def install() -> None:
    check_version("rasa")
    from rasa.core.actions.action import RemoteAction

    replace(RemoteAction, "run", _with_fallback(RemoteAction.run))
