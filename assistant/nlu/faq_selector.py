"""Rasa's ResponseSelector, run only for messages an FAQ answer can matter to.

Choosing the FAQ answer is a second neural network pass on every message, a
seventh of a turn's CPU. Its result is only ever read when the message may be
an FAQ question: the rule answers ``faq`` with it, FaqAnswerGuard checks it
for ``faq``, and "Did you mean...?" offers topics only when ``faq`` scored at
least MIN_PLAUSIBLE. So when DIET gives ``faq`` less than that (a greeting, a
booking, a form answer), the selector is skipped and the message goes on
without a ``response_selector`` entry, exactly as if it had never been faq.
"""

from __future__ import annotations

from typing import List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.selectors.response_selector import ResponseSelector
from rasa.shared.nlu.constants import INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

from assistant.uncertainty import MIN_PLAUSIBLE, RETRIEVAL_INTENT


def faq_plausible(message: Message) -> bool:
    ranking = message.get(INTENT_RANKING_KEY)
    if not ranking:  # no intent yet (not from DIET): don't guess
        return True
    confidence = next((float(i.get("confidence", 0.0)) for i in ranking if i.get("name") == RETRIEVAL_INTENT),
                      0.0)
    return confidence >= MIN_PLAUSIBLE


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FaqResponseSelector(ResponseSelector):
    def process(self, messages: List[Message]) -> List[Message]:
        plausible = [message for message in messages if faq_plausible(message)]
        if plausible:
            super().process(plausible)
        return messages
