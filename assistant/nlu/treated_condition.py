"""A returning patient who names what they were treated for is asking about the
session, not whether needling would help that condition.

"Had needling for migraines 3 weeks ago and havent had one since!! How long will
it keep them away" and "I received dry needling for my knee pain on Monday. Same
day I took hot water bath. Is that causing any harm?" got the answers on migraines
and on knees: the intent model reads a named condition as a condition question,
though the FAQ reading it ranked second (how long results last, a bath after a
session) was the one asked for. Over the readable blind sets, round 44 found five
such turns among the 64 wrongly given ``ask_condition``, each a patient telling
what they "had", "received" or "have been having" needling for.

So, after the models: when ``ask_condition`` won, the FAQ came second, and the
message tells of needling already had *for* something without asking whether it
would help ("would it help my knee too?" after "had it for my back" is still a
condition question), the FAQ answer is given instead. Measured when it was
added: those five readable conversations gained, none of the 9,525 lost, and
the eighteen never-read sets unchanged (864 of 950 conversations).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.contracts import INTENT_ASK_CONDITION, RETRIEVAL_INTENT
from assistant.nlu.component_settings import WithoutSettings
from assistant.nlu.red_flag_rules import normalise

# "had my first ever dry needling this morning for my jaw", "taken dry needling two times for
# knee pain", "ive been having needling for plantar fasciitis"
_TREATED = re.compile(
    r"\b(had|received|recieved|taken|took|been having|been getting|got)( \w+){0,4}"
    r" (needling|needles|needle treatment|needle therapy|session|sessions|treatment|treatments)"
    r"( \w+){0,4} for\b")
# ...but not "would it help my knee too", "what about my other shoulder", "can you needle my hip as well"
_ASKS_ABOUT_A_CONDITION = re.compile(
    r"\b(help|helps|helped|helping|work for|works for|work on|good for|any good|any use|fix|fixes|cure|cures"
    r"|treat|treats|what about|how about|too|as well|other|another)\b")


def asks_about_the_session(intent: Dict[str, Any], ranking: List[Dict[str, Any]], text: str) -> bool:
    """Whether this message's ``ask_condition`` gives way to the FAQ reading ranked second."""
    if intent.get("name") != INTENT_ASK_CONDITION or len(ranking) < 2:
        return False
    if ranking[1].get("name") != RETRIEVAL_INTENT:
        return False
    normalised = normalise(text)
    return bool(_TREATED.search(normalised)) and not _ASKS_ABOUT_A_CONDITION.search(normalised)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class TreatedConditionRule(WithoutSettings):
    """Gives the FAQ answer for "had needling for my knee on Monday, can I have a bath?"."""

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            ranking = message.get(INTENT_RANKING_KEY) or []
            if asks_about_the_session(message.get(INTENT) or {}, ranking, message.get(TEXT) or ""):
                chosen = {"name": RETRIEVAL_INTENT, "confidence": float(ranking[0].get("confidence") or 0.0)}
                rest = [r for r in ranking if r.get("name") != RETRIEVAL_INTENT]
                message.set(INTENT, chosen, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [chosen, *rest], add_to_output=True)
        return messages
