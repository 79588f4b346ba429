"""The "Or did you mean: ...?" button under an answer chosen from context, put
into the reply where the Rasa server renders it.

Why here: assistant/nlu/keep_topic.py gives some messages the previous answer's
topic instead of what they read as alone ("will i still get the full session"
after the running-late answer gets that answer again, not "part of a wider
plan"), and Rasa's ``utter_faq`` then utters it without the action server. When
that reading is wrong the visitor should get the other one in one tap, and the
button must be in the stored bot message: the website channel only follows a
payload the bot's latest turn offered (website_channel.py ``offered_payloads``).
So the reply is rendered by ``OtherReadingGenerator``, Rasa's templated generator
plus that button, configured in endpoints.yml and endpoints.production.yml
(``nlg: type: assistant.rasa_server.other_reading_button.OtherReadingGenerator``).
What the button offers, if anything, is decided by
assistant/kb/other_reading.py, which the follow-up actions use too.

The follow-up actions (actions/follow_up.py ``answer_follow_up``) send their
button with the response, and Rasa puts an action's buttons after the
response's own; the generator does the same, so the alternative comes after the
related topics and "Read more" in both cases. (An earlier version put it first
with a patch of Rasa's RemoteAction; plain `rasa run` then answered differently
from the project's server, which tests/test_long_replies.py rightly refuses.)
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from assistant.contracts import KEPT_TOPIC_KEY, RETRIEVAL_INTENT, selected_answer
from assistant.kb.knowledge import cached_knowledge
from assistant.kb.other_reading import other_reading_button

logger = logging.getLogger(__name__)


class OtherReadingGenerator(TemplatedNaturalLanguageGenerator):
    """Rasa's response templates, with the message alone's reading after the
    buttons of an answer assistant/nlu/keep_topic.py chose from context."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None,
                 domain: Optional[Domain] = None) -> None:
        # Rasa builds a custom generator with these two keywords
        # (rasa/core/nlg/generator.py); the agent sets `responses` again when it
        # loads a model, as for its own templated generator.
        super().__init__(domain.responses if domain else {})

    async def generate(self, utter_action: str, tracker: DialogueStateTracker, output_channel: str,
                       **kwargs: Any) -> Optional[Dict[str, Any]]:
        response = await super().generate(utter_action, tracker, output_channel, **kwargs)
        if response is None:
            return None
        try:
            button = kept_answer_button(utter_action, tracker, response)
        except Exception:  # an extra, never a reason to lose the answer
            logger.exception("the other reading's button failed; the answer goes without it")
            button = None
        if button:
            response["buttons"] = [*(response.get("buttons") or []), button]
        return response


def kept_answer_button(utter_action: str, tracker: DialogueStateTracker,
                       response: Dict[str, Any]) -> Optional[Dict[str, str]]:
    """The button for `utter_action` when it is the FAQ answer keep_topic chose for
    the latest message instead of the model's (and not, say, the form's next
    question uttered in the same turn); otherwise None."""
    parse = tracker.latest_message.parse_data if tracker.latest_message else {}
    if KEPT_TOPIC_KEY not in parse or (parse.get("intent") or {}).get("name") != RETRIEVAL_INTENT:
        return None  # nothing kept, or keep_topic made it a follow-up: the action decides
    if selected_answer(parse).get("utter_action") != utter_action:
        return None
    shown = [str(b.get("payload")) for b in response.get("buttons") or [] if isinstance(b, dict)]
    return other_reading_button(cached_knowledge(), parse, utter_action.split("/", 1)[1], shown,
                                in_form=tracker.active_loop_name is not None)
