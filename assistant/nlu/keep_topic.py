"""Keep the previous answer's topic when a message reads like more about it.

"will i still get the full session?" after the running-late answer names no
topic of its own, yet the answer selector, which reads one message alone, picked
"part of a wider plan" for it (six writers of blind sets wrote it). The intent
model cannot know there was a previous answer. Rasa hands an NLU component the
conversation so far when its ``process`` takes a ``tracker``, so this one, after
the models and before the red flags, reads the previous answer's topic
(actions/follow_up.py ``topic_before``, the look-back the follow-up action uses)
and applies one decision, ``keeps_previous``: the stays-on-topic probability
(assistant/nlu/stays_on_topic.py) is high, the selector is less than sure, and
the previous topic is still among its candidates. Then the selected answer
becomes that topic, and the parse data says what it replaced (``KEPT_TOPIC_KEY``).

It changes nothing else: not a button payload (full confidence), not "Did you
mean" (the action server decides those, with the same look-back), and a red flag
found after it (the last component) wins whatever the selected answer. An error
here is logged and leaves the model's answer standing. The evaluation
(assistant/quality/sealed.py) calls ``keeps_previous`` with its own previous turn.

Round 14, measured in docs/testing.md: on the follow-up turns of the blind sets
dev-dev32 answered with another FAQ topic, 50 right and 6 lost.

Round 25 added a second decision, ``reread_answer``: a short follow-up the model
answered with its kind's context-free reading gets its answer in context ("how many
do you use" after the needles: the number of needles, where the model said how many
sessions; 14 writers of blind sets wrote it). Over the conversations of dev to
dev54, dev59 and dev60: 21 more right and none lost (with the round-24 model).
Every mapped kind read this way, without the words that name a kind's own reading
(``rereads`` in knowledge/follow_ups.yml), lost 10: "how many sessions", "how does
it work", "anything else i should do after".

Round 27 added two more, from the misses of every blind set with the round-26 model:
``misread_answer`` ("how quick tho" after tennis elbow, which the model read as the
session's length; "and before?" after drinking water afterwards, read as the first
assessment: follow_ups.yml ``misreads``), and ``intent_in_context`` for messages the
model gave another intent: a bare day or time after the opening hours or the free
slots ("saturday?", "morning?", read as free slots and a greeting) goes to the
follow-up action (``intents.reread``). Over the conversations of every blind set:
22 more right and none lost (7,091 to 7,113 of 7,759, before the round's retraining).

Round 39 added ``answer_again_after_misread``: a message the model gave the opening
hours or the free slots (follow_ups.yml ``intents.misread_after_answer``) after an FAQ
or long-tail answer gets that answer again when it reads like more about it ("its 2
hrs tho" after driving home). Measured in actions/follow_up.py (AGAIN_STAYS_MIN).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message

from actions.follow_up import (
    answer_again_after_misread,
    answer_in_context,
    cached_follow_ups,
    intent_in_context,
    topic_before,
)
from assistant.contracts import (
    INTENT_FOLLOW_UP,
    KEPT_TOPIC_KEY,
    RESPONSE_SELECTOR,
    RETRIEVAL_INTENT,
    answer_selection,
    selected_answer,
)
from assistant.kb.knowledge import cached_knowledge
from assistant.nlu.component_settings import WithoutSettings
from assistant.nlu.uncertainty import answer_ranking

logger = logging.getLogger(__name__)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class PreviousTopicKeeper(WithoutSettings):
    def process(self, messages: List[Message],
                tracker: Optional[DialogueStateTracker] = None) -> List[Message]:
        if tracker is None or not tracker.events:
            return messages
        follow_ups = cached_follow_ups()
        answered = [m for m in messages if (m.get(INTENT) or {}).get("name") == RETRIEVAL_INTENT]
        # Not in the call-back form: "saturday morning" there answers when to call.
        in_form = tracker.active_loop_name is not None
        rereads = [m for m in messages if not in_form and follow_ups.intent_reread_kind(m.get(TEXT) or "")]
        misread = [m for m in messages if not in_form
                   and (m.get(INTENT) or {}).get("name") in follow_ups.misread_after_answer]
        if not answered and not rereads and not misread:  # most messages: no need to read the conversation
            return messages
        try:
            previous = topic_before((event.as_dict() for event in reversed(tracker.events)),
                                    current_included=False)
            followed = [m for m in rereads if intent_in_context(follow_ups, m.as_dict(), previous)]
            for message in followed:
                self._follow_up(message)
            for message in answered:
                parse = message.as_dict()
                answer = None if message in followed else answer_in_context(
                    follow_ups, cached_knowledge(), parse, previous)
                if answer:
                    self._keep(message, parse, answer)
            for message in misread:
                again = answer_again_after_misread(follow_ups, message.as_dict(), previous)
                self._answer_again(message, again)
        except Exception:  # an improvement, never a reason to fail the message (or its red flag)
            logger.exception("keeping the previous topic failed; the model's answer stands")
        return messages

    @staticmethod
    def _follow_up(message: Message) -> None:
        """The follow-up action answers it, against the intent's reply before it."""
        replaced = (message.get(INTENT) or {}).get("name")
        if replaced == RETRIEVAL_INTENT:  # the answer it had chosen: "faq/evidence"
            replaced = selected_answer(message.as_dict()).get("intent_response_key") or replaced
        message.set(INTENT, {"name": INTENT_FOLLOW_UP, "confidence": 1.0}, add_to_output=True)
        message.set(KEPT_TOPIC_KEY, {"instead_of": replaced}, add_to_output=True)

    @classmethod
    def _answer_again(cls, message: Message, answer: Optional[str]) -> None:
        """The FAQ intent, with `answer` selected, instead of the intent the model gave."""
        if not answer:
            return
        replaced = (message.get(INTENT) or {}).get("name")
        message.set(INTENT, {"name": RETRIEVAL_INTENT, "confidence": 1.0}, add_to_output=True)
        cls._keep(message, message.as_dict(), answer, replaced)

    @staticmethod
    def _keep(message: Message, parse: Dict[str, Any], answer: str, replaced: Optional[str] = None) -> None:
        """That answer (the previous topic, or the follow-up's in context) becomes the
        selected one. The ranking keeps the model's
        scores, with the kept answer moved first (as the selected answer always is), so
        its confidence there is the model's own, low one: the parse data shows both."""
        ranking = answer_ranking(parse)
        key = f"{RETRIEVAL_INTENT}/{answer}"
        # Not among the selector's candidates only when follow_ups.yml `stays_on` keeps it.
        kept = next((a for a in ranking if a.get("intent_response_key") == key),
                    {"intent_response_key": key, "confidence": 0.0})
        replaced = replaced or ranking[0].get("intent_response_key")
        selector = answer_selection(message.get(RESPONSE_SELECTOR), RETRIEVAL_INTENT,
                                    [kept, *(a for a in ranking if a is not kept)], [],
                                    (message.get(RESPONSE_SELECTOR) or {}).get("all_retrieval_intents")
                                    or [RETRIEVAL_INTENT])
        message.set(RESPONSE_SELECTOR, selector, add_to_output=True)
        message.set(KEPT_TOPIC_KEY, {"instead_of": replaced}, add_to_output=True)
