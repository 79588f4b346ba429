"""Answer "can dry needling help my <condition>?" from knowledge/conditions.yml.

The spaCy entity ruler tags conditions and body areas; this action looks them up
in the knowledge base and answers for that condition specifically. A condition
the articles don't discuss gets an honest "our articles don't cover that" and,
where one exists, a pointer to a related condition they do discuss -- never an
invented claim.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.kb.knowledge import (
    Condition,
    KnowledgeBase,
    answer_buttons,
    cached_knowledge,
    condition_payload,
)

# Answer at most this many conditions from one message ("migraines and a sore neck").
MAX_CONDITIONS_PER_MESSAGE = 2


def conditions_in_message(kb: KnowledgeBase, entities: List[Dict[str, Any]]) -> List[Condition]:
    """Known conditions named in the message: explicit conditions first, then body areas."""
    ordered = sorted(entities, key=lambda e: 0 if e.get("entity") == "condition" else 1)
    found: Dict[str, Condition] = {}
    for entity in ordered:
        if entity.get("entity") not in ("condition", "body_area"):
            continue
        condition = kb.find_condition(str(entity.get("value", "")))
        if condition and condition.id not in found:
            found[condition.id] = condition
    return list(found.values())[:MAX_CONDITIONS_PER_MESSAGE]


def answer_condition(dispatcher: CollectingDispatcher, kb: KnowledgeBase, condition: Condition) -> None:
    if condition.topic is not None:
        dispatcher.utter_message(response=f"utter_faq/{condition.topic}")
        return
    if condition.answer is not None:
        dispatcher.utter_message(text=condition.answer,
                                 buttons=answer_buttons(kb, condition.related, condition.sources))
        return
    dispatcher.utter_message(response="utter_condition_not_covered", condition=condition.name)
    if condition.see:
        buttons = [
            {"title": kb.conditions[other].name.capitalize(), "payload": condition_payload(other)}
            for other in condition.see
        ]
        dispatcher.utter_message(response="utter_condition_see_also", buttons=buttons)


class ActionAnswerCondition(Action):
    def name(self) -> str:
        return "action_answer_condition"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        from actions.follow_up import (  # (it imports this module)
            answer_follow_up,
            cached_follow_ups,
            condition_answer,
            previous_topic,
        )

        kb = cached_knowledge()
        previous = previous_topic(tracker)
        conditions = conditions_in_message(kb, tracker.latest_message.get("entities", []))
        resolution = condition_answer(cached_follow_ups(), previous, [c.id for c in conditions],
                                      tracker.latest_message.get("text") or "")
        if resolution.answer:  # "it's for my lower back" after what to wear: still what to wear
            return answer_follow_up(dispatcher, kb, resolution) or []
        if not conditions:
            dispatcher.utter_message(response="utter_ask_which_condition")
            return []
        for condition in conditions:
            answer_condition(dispatcher, kb, condition)
        return []
