"""Whether needling would help a named body area is a condition question.

"At 75, my neck is terribly stiff. Would dry needling help my neck?" got the
answer on moving more freely, "can needling help my tight hamstrings" the one on
athletes: the intent model weighs every word, and "stiff" or "hockey" pulled it
to an FAQ. A condition question of this exact shape is recognised here instead,
after the models: a question form (would / can / will / does it or needling ...
help / fix / sort) with the body area the entity extractor found right after it
("help my lower back", "help her neck"). The message then gets the intent
``ask_condition``, whose answer names what the articles say about that area.

The shape is narrow on purpose. Across the tuned-on blind sets (dev to dev47) a
body area and "help" together were a condition question 174 times and something
else 33 times ("can needling help me turn my head further" asks about range of
motion, "my physio thinks needling would help my neck, but I'm terrified of
needles" about the fear). "help" and the area next to each other still matched 7
that were not (measured on 2026-12-04): the exclusions below keep them, an area
followed by what it should do ("help my calf heal quicker"), "why/how would
needling my neck help my head", and reported speech ("needling would help my
neck", no question form). What is left matched 76 turns, all condition
questions, 9 of which the model had given an FAQ or "Did you mean...?".
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.contracts import INTENT_ASK_CONDITION, RETRIEVAL_INTENT
from assistant.kb.spacy_pipeline import BODY_AREA_LABEL
from assistant.nlu.component_settings import WithoutSettings
from assistant.nlu.red_flag_rules import normalise
from assistant.nlu.uncertainty import FALLBACK

_SUBJECT = r"(it|this|that|dry needling|needling|the needling|needles|the needles|dry needles|you|they)"
_MODAL = r"(would|could|can|will|does|do|might|may)"
_HELPS = (r"(help|helps|sort|sort out|fix|work for|work on|be good for|be any good for|do anything for"
          r"|treat)( with)? (my|her|his|their|the|your|our)( \w+){0,2}")
# A question form before "help": "would it (actually) help", "if dry needling would help"
_ASKS = re.compile(rf"(?<!why )(?<!how )\b({_MODAL} {_SUBJECT}( \w+){{0,2}}|(if|whether) {_SUBJECT} {_MODAL}"
                   rf"( \w+)?) {_HELPS} ")
# What the area should do next is another topic: "help my calf heal quicker" (healing)
_DOES_NEXT = r"(?! (heal|recover|move|turn|work|get|switch|fire|start|go|feel|relax|loosen)\b)"
# The intents this may overrule: an FAQ answer, or "Did you mean...?"
OVERRULES = (RETRIEVAL_INTENT, FALLBACK)


def asks_if_it_helps(text: str, areas: Iterable[str]) -> bool:
    normalised = normalise(text)  # " would dry needling help my neck "
    wanted = {normalise(area).strip() for area in areas} - {""}
    return any(re.search(_ASKS.pattern + re.escape(area) + r"\b" + _DOES_NEXT, normalised) for area in wanted)


def body_areas(entities: List[Dict[str, Any]]) -> List[str]:
    return [str(e.get("value") or "") for e in entities if e.get("entity") == BODY_AREA_LABEL]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ConditionQuestionRule(WithoutSettings):
    """Sets ``ask_condition`` for "would needling help my <body area>?"."""

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get("name") in OVERRULES and asks_if_it_helps(
                    message.get(TEXT) or "", body_areas(message.get(ENTITIES) or [])):
                chosen = {"name": INTENT_ASK_CONDITION, "confidence": 1.0}
                message.set(INTENT, chosen, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [chosen, *(message.get(INTENT_RANKING_KEY) or [])],
                            add_to_output=True)
        return messages
