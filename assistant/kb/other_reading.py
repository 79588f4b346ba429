"""The message alone's reading, offered under an answer chosen from context.

Some answers are not what a message reads as alone but what it means after the
previous answer: assistant/nlu/keep_topic.py replaces the answer selector's
choice (and says so: ``KEPT_TOPIC_KEY``), and actions/follow_up.py resolves short
follow-ups against the previous topic. When that contextual reading is wrong,
the visitor should not have to rephrase: the answer carries one button with the
reading of the message alone ("how long will it last" after soreness gets the
soreness answer and "Or did you mean: How long the relief lasts").

One decision for both places that give such answers: the Rasa server's
generator (assistant/rasa_server/other_reading_button.py) for keep_topic's
answers and the follow-up actions (``answer_follow_up``), which pass the button
with their response.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional

from assistant.contracts import KEPT_TOPIC_KEY, RETRIEVAL_INTENT, faq_selection, selected_answer
from assistant.kb.knowledge import KnowledgeBase, topic_payload
from assistant.nlu.red_flag_rules import INTENTS as RED_FLAG_INTENTS

# The answer selector's confidence from which its reading of the message is a
# plausible alternative: the bar at which a follow-up names a subject of its own
# (NAMED_ANSWER_MIN in actions/follow_up.py). "how long will it last" reads as how
# long results last at 0.90; "is that normal?" as other side effects at 0.16.
PLAUSIBLE_MIN = 0.4
# The button's title: short, for a phone screen, and plainly a second choice.
BUTTON_TITLE = "Or did you mean: {title}"


def message_alone_reading(parse: Mapping[str, Any]) -> Optional[str]:
    """The FAQ topic or long-tail subject the message reads as alone, when the answer
    selector gave it PLAUSIBLE_MIN or more; None when that reading is another intent
    (keep_topic read "saturday?" as a follow-up instead of free slots) or unsure."""
    kept = parse.get(KEPT_TOPIC_KEY)
    if isinstance(kept, Mapping):  # keep_topic replaced it; the ranking keeps its score
        key = str(kept.get("instead_of") or "")
        ranking = faq_selection(parse).get("ranking") or []
        confidence = next((float(a.get("confidence") or 0.0) for a in ranking
                           if a.get("intent_response_key") == key), 0.0)
    else:
        answer = selected_answer(parse)
        key = str(answer.get("intent_response_key") or "")
        confidence = float(answer.get("confidence") or 0.0)
    if not key.startswith(f"{RETRIEVAL_INTENT}/") or confidence < PLAUSIBLE_MIN:
        return None
    return key.split("/", 1)[1]


def other_reading_button(kb: KnowledgeBase, parse: Mapping[str, Any], answer: Optional[str],
                         shown: Iterable[str] = (), in_form: bool = False) -> Optional[Dict[str, str]]:
    """The button offering the message alone's reading under `answer` (the topic or
    subject given from context; None for an intent's reply), or None: when there is
    no plausible reading, or it is `answer` itself, or the knowledge base has no title
    for it, or the answer already offers it (its related topics, or `shown`: the
    payloads of its buttons), or after a red flag or inside the call-back form.
    The caller puts it after the answer's own buttons, where Rasa puts an action's."""
    intent = str((parse.get("intent") or {}).get("name") or "")
    if in_form or intent in RED_FLAG_INTENTS:
        return None
    reading = message_alone_reading(parse)
    title = kb.title_of(reading) if reading else None
    if reading is None or title is None or reading == answer:
        return None
    payload = topic_payload(reading)
    topic = kb.topics.get(answer or "")
    offered = {*shown, *(topic_payload(t) for t in (topic.related if topic else []))}
    if payload in offered:  # already among its buttons: left where it is
        return None
    return {"title": BUTTON_TITLE.format(title=title), "payload": payload}
