"""Names both sides of a process boundary use: the Rasa server (domain, rules,
NLU components) and the action server. Import them instead of repeating the
string, so a rename can't silently break the other side.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

# "Forget me": the action that deletes a visitor's data, and the tracker store
# (assistant/rasa_server/tracker_store.py) that then drops the conversation.
ACTION_FORGET_ME = "action_forget_me"

# The custom actions are sent the recent part of the conversation, not all of
# it (assistant/rasa_server/action_payload.py): the events from the
# ACTION_HISTORY_USER_TURNS-th latest user message on, reaching further back
# only to the start of a form that is in progress or ended in this turn (the
# call-back's reference is made from when its form started). No action may
# read further back (tests/test_action_history.py checks each against the
# whole history).
ACTION_HISTORY_USER_TURNS = 8

# Intents a visitor can be offered as a choice ("Did you mean...?" buttons,
# actions/clarify.py), with the button text; and the report's name for those
# that hand the visitor on to the clinic (assistant/insights/analyse.py).
INTENT_CHOICES = {
    "ask_condition": ("Can it help my problem?", None),
    "ask_personal_medical": ("Is it safe for me?", "Personal medical questions"),
    "book": ("Booking an appointment", "Booking an appointment"),
    "request_callback": ("Request a call-back", None),
    "ask_contact": ("Contact details", "Contact details"),
    "ask_hours": ("Opening hours", "Opening hours"),
    "ask_location": ("Location and parking", "Location and parking"),
    "ask_availability": ("Free appointments", "Appointment availability"),
    "human_handoff": ("Talk to a person", "Talking to a person"),
    "help": ("What can you help with?", None),
    # Safe as a choice: it asks before deleting anything (data/rules/safety.yml).
    "forget_me": ("Delete this conversation", None),
}
BUTTON_TEXT = {intent: button for intent, (button, _) in INTENT_CHOICES.items()}
HANDOFF_INTENTS = {intent: report for intent, (_, report) in INTENT_CHOICES.items() if report}

# Follow-up questions ("is that normal?"): the intent the model predicts, the
# action that resolves them, and the slot that remembers what it resolved to.
INTENT_FOLLOW_UP = "follow_up"
ACTION_FOLLOW_UP = "action_follow_up"
SLOT_LAST_TOPIC = "last_topic"
# An off-topic message after an answer: the action checks whether it is a
# follow-up the model called off-topic (actions/follow_up.py) before saying so.
ACTION_OUT_OF_SCOPE = "action_out_of_scope"
# The NLU model's probability that a message says more about the previous answer
# (assistant/nlu/stays_on_topic.py), in the parse data for actions/follow_up.py.
STAYS_ON_TOPIC_KEY = "stays_on_topic"
# A form answer (a name, a number, "weekday mornings"); outside the form it is not
# understood (data/rules/fallback.yml), and never more about the last answer.
INTENT_INFORM = "inform"
# An FAQ answer that gave way to the previous answer's topic (assistant/nlu/keep_topic.py):
# {"instead_of": "faq/<the model's choice>"} in the parse data.
KEPT_TOPIC_KEY = "kept_topic"
# A report then a question of its own, answered by the question's reading
# (assistant/nlu/question_after_report.py): {"question": <its text>, "instead_of":
# "faq/<the whole message's answer>"} in the parse data.
QUESTION_AFTER_REPORT_KEY = "question_after_report"
# "Did you mean...?" (actions/clarify.py): after it, nothing is a follow-up, and a
# second unclear message in a row gets the handoff (actions/follow_up.py).
ACTION_CLARIFY = "action_clarify"
# Its reply depends on the case named (actions/personal_medical.py), also in a follow-up.
INTENT_PERSONAL_MEDICAL = "ask_personal_medical"
INTENT_ASK_CONDITION = "ask_condition"
# A call-back request starts the call-back form (data/rules/booking.yml); "stop" ends it.
INTENT_REQUEST_CALLBACK = "request_callback"
INTENT_STOP = "stop"
INTENT_FORGET_ME = "forget_me"
# "delete my data" is asked first; a reply asking for "all of it" asks again
# (data/rules/safety.yml, assistant/nlu/deletion_reply.py).
UTTER_CONFIRM_FORGET_ME = "utter_confirm_forget_me"
# "cheers" in the middle of the form is thanked, not taken as an answer (actions/callback_form.py).
INTENT_THANKS = "thanks"

# Thumbs up/down under an answer: the website channel records it in the
# conversation as this slot, "up:<utter action>" or "down:<utter action>"
# (assistant/rasa_server/website_channel.py), and the report counts them (assistant/insights/).
SLOT_ANSWER_FEEDBACK = "answer_feedback"
FEEDBACK_RATINGS = ("up", "down")

# The FAQ answer chosen for a message travels in the parse data as Rasa's
# ResponseSelector writes it, so that Rasa's `utter_faq` rule, its tracker and
# the report read it unchanged. Our NLU components write it (the classifier and
# the button payload handler) with `answer_selection`; the fallback checks,
# the actions and the report read it with `faq_selection` / `selected_answer`.
RETRIEVAL_INTENT = "faq"
RESPONSE_SELECTOR = "response_selector"


def answer_selection(existing: Optional[Mapping[str, Any]], intent: str, ranking: List[Dict[str, Any]],
                     responses: List[Dict[str, Any]], retrieval_intents: Iterable[str]) -> Dict[str, Any]:
    """`existing` response_selector output with `intent`'s answer set to the best of
    `ranking` ([{"intent_response_key": "faq/x", "confidence": c}, ...], best first)."""
    key = ranking[0]["intent_response_key"]
    selector = dict(existing or {})
    selector["all_retrieval_intents"] = list(retrieval_intents)
    selector[intent] = {
        "response": {
            "responses": responses,
            "confidence": ranking[0]["confidence"],
            "intent_response_key": key,
            "utter_action": f"utter_{key}",
        },
        "ranking": ranking,
    }
    return selector


def faq_selection(parse: Mapping[str, Any]) -> Dict[str, Any]:
    """The chosen FAQ answer and its ranking, from parse data (or an NLU Message)."""
    selectors = parse.get(RESPONSE_SELECTOR) or {}
    # A ResponseSelector without `retrieval_intent` (Rasa's stock config) answers under "default".
    return dict(selectors.get(RETRIEVAL_INTENT) or selectors.get("default") or {})


def selected_answer(parse: Mapping[str, Any]) -> Dict[str, Any]:
    """{"intent_response_key": "faq/x", "utter_action": ..., "confidence": ...} or {}."""
    return dict(faq_selection(parse).get("response") or {})
