"""Ask "Did you mean...?" instead of guessing, and don't loop.

Runs on ``nlu_fallback`` (the model was unsure: assistant/nlu/uncertainty.py). It
offers the 2-3 most likely topics as buttons, plus "Something else". If the
visitor's previous message also needed a clarification, it stops asking and
offers the clinic's phone and booking link instead.

One exception: a message that names a known condition ("would it help my
asthma") is most likely asking about that condition, so it gets the
condition's answer (which is honest about conditions the articles don't cover),
unless the model points clearly elsewhere (``condition_is_the_question``).
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from assistant.contracts import (
    ACTION_CLARIFY,
    BUTTON_TEXT,
    INTENT_ASK_CONDITION,
    INTENT_FORGET_ME,
    RETRIEVAL_INTENT,
)
from assistant.kb.knowledge import cached_knowledge, related_buttons
from assistant.nlu.uncertainty import MIN_PLAUSIBLE, answer_ranking, raw_intent_ranking, top_answers

MAX_CHOICES = 3
MIN_CONFIDENCE = MIN_PLAUSIBLE  # below this a "choice" is noise
SOMETHING_ELSE = {"title": "Something else", "payload": "/something_else"}
# A condition named in an unclear message is not its question when the model all but
# rules out ask_condition (below 0.1) while one FAQ answer stands out (above 0.2):
# "very sore back from studying... what are the needles made of?". Chosen on the blind sets dev-dev6
# with the first round's model: 7 of 11 wrong condition answers became "Did you mean",
# and 1 of 10 right ones.
CONDITION_RULED_OUT = 0.1
ANSWER_STANDS_OUT = 0.2


def condition_is_the_question(parse: Dict[str, Any]) -> bool:
    """Whether an unclear message that names a condition gets that condition's answer."""
    intents = {i.get("name"): float(i.get("confidence", 0.0)) for i in raw_intent_ranking(parse)}
    answers = answer_ranking(parse)
    top = float(answers[0].get("confidence", 0.0)) if answers else 0.0
    return intents.get(INTENT_ASK_CONDITION, 0.0) >= CONDITION_RULED_OUT or top <= ANSWER_STANDS_OUT



def choices(parse: Dict[str, Any]) -> List[Dict[str, str]]:
    """Buttons for the most likely meanings, best first."""
    kb = cached_knowledge()
    buttons: List[Dict[str, str]] = []
    for rank, intent in enumerate(raw_intent_ranking(parse)):
        if float(intent.get("confidence", 0.0)) < MIN_CONFIDENCE:
            break
        name = intent.get("name")
        if name == RETRIEVAL_INTENT:
            for key in top_answers(parse, limit=MAX_CHOICES, floor=MIN_CONFIDENCE):
                topic = key.split("/", 1)[1]
                if kb.title_of(topic):
                    buttons.extend(related_buttons(kb, [topic]))
        elif name == INTENT_FORGET_ME and rank > 0:
            continue  # only as the likeliest reading: "is my data safe" asks no deletion
        elif name in BUTTON_TEXT:
            buttons.append({"title": BUTTON_TEXT[name], "payload": f"/{name}"})
        if len(buttons) >= MAX_CHOICES:
            break
    return buttons[:MAX_CHOICES]


class ActionClarify(Action):
    def name(self) -> str:
        return ACTION_CLARIFY

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        from actions.follow_up import (  # (it imports this module)
            answer_follow_up,
            cached_follow_ups,
            previous_topic,
            unclear_resolution,
        )

        kb = cached_knowledge()
        resolution = unclear_resolution(cached_follow_ups(), kb, tracker.latest_message,
                                        previous_topic(tracker))
        answered = answer_follow_up(dispatcher, kb, resolution, tracker) if resolution else None
        if answered is not None:
            return answered
        return did_you_mean(dispatcher, tracker)


def did_you_mean(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """"Did you mean...?" with the likely choices, or the handoff after a second miss."""
    from actions.follow_up import asked_last_turn  # (it imports this module)

    if asked_last_turn(reversed(tracker.events)):
        dispatcher.utter_message(response="utter_clarify_handoff")  # second miss in a row
        return []
    buttons = choices(tracker.latest_message)
    if buttons:
        dispatcher.utter_message(response="utter_clarify", buttons=[*buttons, SOMETHING_ELSE])
    else:
        dispatcher.utter_message(response="utter_default")
    return []
