"""A confident FAQ answer gives way to the previous answer's topic when the message
reads like more about it (assistant/nlu/keep_topic.py): the decision, the NLU
component reading a real Rasa tracker, and a conversation through the real server."""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Optional

import pytest
from rasa.shared.core.events import ActionExecuted, Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message

from actions.follow_up import (
    answer_again_after_misread,
    cached_follow_ups,
    follow_up_resolution,
    keeps_previous,
)
from assistant.contracts import KEPT_TOPIC_KEY, STAYS_ON_TOPIC_KEY, selected_answer
from assistant.kb.knowledge import KnowledgeBase
from assistant.kb.other_reading import BUTTON_TITLE
from assistant.nlu.keep_topic import PreviousTopicKeeper
from tests.helpers.rest import filled, say, say_on_website, stored_user_texts, texts

TEXT = "righto, im a sparky up and down ladders all day"


def parse(stays: float = 0.88, top: float = 0.6, previous_share: Optional[float] = 0.05,
          intent: str = "faq") -> Dict[str, Any]:
    ranking = [{"intent_response_key": "faq/who_benefits", "confidence": top}]
    if previous_share is not None:
        ranking.append({"intent_response_key": "faq/soreness_after", "confidence": previous_share})
    return {"text": TEXT, "intent": {"name": intent, "confidence": 0.89}, "entities": [],
            STAYS_ON_TOPIC_KEY: stays,
            "response_selector": {"all_retrieval_intents": ["faq"], "faq": {
                "ranking": ranking, "response": {**ranking[0], "utter_action": "utter_faq/who_benefits"}}}}


@pytest.mark.parametrize(("data", "previous", "keeps"), [
    (parse(), "soreness_after", True),
    (parse(), None, False),  # nothing answered before
    (parse(), "condition:sciatica", False),  # only a topic or subject is kept
    (parse(), "who_benefits", False),  # already that answer
    (parse(stays=0.6), "soreness_after", False),  # reads like a question of its own
    (parse(top=0.95), "soreness_after", False),  # the selector is sure of its answer
    (parse(previous_share=None), "soreness_after", False),  # the previous topic is no candidate
    (parse(previous_share=0.005), "soreness_after", False),
])
def test_the_decision(data: Dict[str, Any], previous: Optional[str], keeps: bool) -> None:
    assert keeps_previous(data, previous) is keeps


def assessment(stays: float = 0.76) -> Dict[str, Any]:
    """"and the initial assessment?" after the price: the selector is sure it is the
    first assessment, and gives the price nothing."""
    ranking = [{"intent_response_key": "faq/first_assessment", "confidence": 0.99}]
    response = {**ranking[0], "utter_action": "utter_faq/first_assessment"}
    return {"text": "and the initial assessment?", "intent": {"name": "faq", "confidence": 1.0},
            "entities": [], STAYS_ON_TOPIC_KEY: stays,
            "response_selector": {"all_retrieval_intents": ["faq"],
                                  "faq": {"ranking": ranking, "response": response}}}


@pytest.mark.parametrize(("data", "previous", "keeps"), [
    (assessment(), "cost", True),  # follow_ups.yml stays_on: still the price
    (assessment(stays=0.3), "cost", False),  # "and what do you do at that visit": its own question
    (assessment(), "session_length", True),  # "and the first one?" after the session length: its length
    (assessment(), "needles", False),  # not listed for that topic: the selector is sure
])
def test_a_follow_up_still_about_the_previous_topic(data: Dict[str, Any], previous: str, keeps: bool) -> None:
    assert keeps_previous(data, previous) is keeps


def keeper_on(events: List[Event], data: Dict[str, Any]) -> Dict[str, Any]:
    """The parse data after the component, in a conversation of `events` so far."""
    tracker = DialogueStateTracker.from_events("visitor-3", events)
    message = Message(data=dict(data))
    PreviousTopicKeeper().process([message], tracker)
    return message.as_dict()


SORENESS = [UserUttered("will i be sore after", parse_data={
    "intent": {"name": "faq", "confidence": 0.99}, "entities": [],
    "response_selector": {"faq": {"response": {"intent_response_key": "faq/soreness_after"}}}}),
    ActionExecuted("utter_faq"), ActionExecuted("action_listen")]


def test_the_component_reads_the_conversation_so_far() -> None:
    kept = keeper_on(SORENESS, parse())
    assert selected_answer(kept)["intent_response_key"] == "faq/soreness_after"
    assert selected_answer(kept)["utter_action"] == "utter_faq/soreness_after"
    assert kept[KEPT_TOPIC_KEY] == {"instead_of": "faq/who_benefits"}


def test_the_kept_topic_need_not_be_among_the_candidates() -> None:
    price = [UserUttered("how much is a session", parse_data={
        "intent": {"name": "faq", "confidence": 0.99}, "entities": [],
        "response_selector": {"faq": {"response": {"intent_response_key": "faq/cost"}}}}),
        ActionExecuted("utter_faq"), ActionExecuted("action_listen")]
    kept = keeper_on(price, assessment())
    assert selected_answer(kept)["utter_action"] == "utter_faq/cost"
    assert kept[KEPT_TOPIC_KEY] == {"instead_of": "faq/first_assessment"}


def test_a_short_follow_up_gets_its_answer_in_context() -> None:
    """follow_ups.yml `rereads`: "how many do you use" after the needles asks how many
    needles, where the model, reading it alone, answered how many sessions."""
    needles = [UserUttered("what are the needles like", parse_data={
        "intent": {"name": "faq", "confidence": 0.99}, "entities": [],
        "response_selector": {"faq": {"response": {"intent_response_key": "faq/needles"}}}}),
        ActionExecuted("utter_faq"), ActionExecuted("action_listen")]
    sessions = {"intent_response_key": "faq/results_timeline", "confidence": 0.93}
    data = {"text": "how many do you use", "intent": {"name": "faq", "confidence": 0.95}, "entities": [],
            STAYS_ON_TOPIC_KEY: 0.2, "response_selector": {"all_retrieval_intents": ["faq"], "faq": {
                "ranking": [sessions],
                "response": {**sessions, "utter_action": "utter_faq/results_timeline"}}}}
    after = keeper_on(needles, data)
    assert selected_answer(after)["utter_action"] == "utter_faq/needle_count_size"
    assert after[KEPT_TOPIC_KEY] == {"instead_of": "faq/results_timeline"}
    assert selected_answer(keeper_on(SORENESS, data))["utter_action"] == "utter_faq/results_timeline"


HOURS = [UserUttered("what are your hours", parse_data={"intent": {"name": "ask_hours", "confidence": 0.99},
                                                         "entities": []}),
         ActionExecuted("utter_hours"), ActionExecuted("action_listen")]


def test_a_day_after_the_opening_hours_becomes_a_follow_up() -> None:
    """follow_ups.yml `intents.reread`: "saturday?" after the opening hours, which the
    model read alone as a question about free slots, goes to the follow-up action."""
    data = {"text": "saturday?", "intent": {"name": "ask_availability", "confidence": 0.93}, "entities": []}
    after = keeper_on(HOURS, data)
    assert after["intent"]["name"] == "follow_up"
    assert after[KEPT_TOPIC_KEY] == {"instead_of": "ask_availability"}
    alone = keeper_on([], dict(data))
    assert alone["intent"]["name"] == "ask_availability" and KEPT_TOPIC_KEY not in alone
    other = keeper_on(HOURS, {**data, "text": "saturday, do you have anything free"})
    assert other["intent"]["name"] == "ask_availability"
    # ...but in the call-back form a day or a time answers when to call
    from rasa.shared.core.events import ActiveLoop

    in_form = keeper_on([*HOURS, ActiveLoop("callback_form")], dict(data))
    assert in_form["intent"]["name"] == "ask_availability" and KEPT_TOPIC_KEY not in in_form


def test_a_day_that_works_after_the_opening_hours_is_a_follow_up_not_an_faq_answer(kb: KnowledgeBase) -> None:
    """"saturday works" read alone as whether needling works (an FAQ answer): round 29.
    The follow-up action then gives the opening hours again."""
    ranking = [{"intent_response_key": "faq/evidence", "confidence": 0.9}]
    data = {"text": "saturday works", "intent": {"name": "faq", "confidence": 0.89}, "entities": [],
            "response_selector": {"all_retrieval_intents": ["faq"], "faq": {
                "ranking": ranking, "response": {**ranking[0], "utter_action": "utter_faq/evidence"}}}}
    after = keeper_on(HOURS, data)
    assert after["intent"]["name"] == "follow_up"
    assert after[KEPT_TOPIC_KEY] == {"instead_of": "faq/evidence"}
    resolution = follow_up_resolution(cached_follow_ups(), kb, after, "intent:ask_hours")
    assert resolution.response == "utter_hours"
    # another FAQ answer is no misreading of a day or a time: it stands
    other = keeper_on(HOURS, {**parse(top=0.9), "text": "saturday works"})
    assert other["intent"]["name"] == "faq" and KEPT_TOPIC_KEY not in other


DRIVING = [UserUttered("can i drive home after", parse_data={
    "intent": {"name": "faq", "confidence": 0.97}, "entities": [],
    "response_selector": {"faq": {"response": {"intent_response_key": "faq/driving_after"}}}}),
    ActionExecuted("utter_faq"), ActionExecuted("action_listen")]


def hours_reading(text: str, stays: float, intent: str = "ask_hours") -> Dict[str, Any]:
    ranking = [{"intent_response_key": "faq/session_length", "confidence": 0.64}]
    return {"text": text, "intent": {"name": intent, "confidence": 0.49}, "entities": [],
            STAYS_ON_TOPIC_KEY: stays, "response_selector": {"all_retrieval_intents": ["faq"], "faq": {
                "ranking": ranking, "response": {**ranking[0], "utter_action": "utter_faq/session_length"}}}}


@pytest.mark.parametrize(("data", "previous", "again"), [
    (hours_reading("its 2 hrs tho", 0.82), "driving_after", "driving_after"),  # dev106, round 38
    (hours_reading("i have a night shift straight after", 0.7, "ask_availability"), "other_side_effects",
     "other_side_effects"),
    (hours_reading("are you open weekends? I work weekdays", 0.13), "vs_acupuncture", None),  # a question
    (hours_reading("its 2 hrs tho", 0.82), None, None),  # nothing answered before
    (hours_reading("its 2 hrs tho", 0.82), "intent:ask_hours", None),  # after an intent: intents.reread
    (hours_reading("its 2 hrs tho", 0.82), "condition:sciatica", None),
    (hours_reading("its 2 hrs tho", 0.82, "ask_location"), "driving_after", None),  # not listed
    (hours_reading("saturdays?", 0.78), "session_frequency", None),  # a day alone asks the hours (dev36)
])
def test_an_intent_misread_after_an_answer_gets_that_answer_again(data: Dict[str, Any],
                                                                  previous: Optional[str],
                                                                  again: Optional[str]) -> None:
    assert answer_again_after_misread(cached_follow_ups(), data, previous) == again


def test_the_component_answers_again_instead_of_the_opening_hours() -> None:
    after = keeper_on(DRIVING, hours_reading("its 2 hrs tho", 0.82))
    assert after["intent"]["name"] == "faq"
    assert selected_answer(after)["utter_action"] == "utter_faq/driving_after"
    assert after[KEPT_TOPIC_KEY] == {"instead_of": "ask_hours"}
    real = keeper_on(DRIVING, hours_reading("what time do you close on fridays", 0.04))
    assert real["intent"]["name"] == "ask_hours" and KEPT_TOPIC_KEY not in real


@pytest.mark.parametrize(("events", "data"), [
    ([], parse()),  # a new conversation
    (SORENESS, parse(intent="nlu_fallback")),  # not a confident answer: the action server decides
    (SORENESS, parse(intent="ask_condition")),  # another intent's verdict
    ([*SORENESS, UserUttered("i cant breathe", parse_data={"intent": {"name": "emergency"}, "entities": []}),
      ActionExecuted("utter_emergency"), ActionExecuted("action_listen")], parse()),  # after a red flag
])
def test_what_it_leaves_alone(events: List[Event], data: Dict[str, Any]) -> None:
    after = keeper_on(events, data)
    assert selected_answer(after)["intent_response_key"] == "faq/who_benefits"
    assert KEPT_TOPIC_KEY not in after


def test_an_error_leaves_the_models_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant.nlu.keep_topic as keep_topic

    def broken(*_: Any) -> Optional[str]:
        raise ValueError("a broken knowledge file")

    monkeypatch.setattr(keep_topic, "answer_in_context", broken)
    after = keeper_on(SORENESS, parse())
    assert selected_answer(after)["intent_response_key"] == "faq/who_benefits"


def test_the_nlu_and_the_action_server_see_the_same_previous_topic() -> None:
    """The keeper reads Rasa's events before the current message is added; the action
    server reads them as dicts with it."""
    from rasa.shared.core.events import SessionStarted, SlotSet

    from actions.follow_up import topic_before

    current = UserUttered("why?", parse_data={"intent": {"name": "follow_up"}, "entities": []})
    conversations = [
        [SessionStarted(), ActionExecuted("action_listen"), *SORENESS],
        [*SORENESS, UserUttered("hmm", parse_data={"intent": {"name": "nlu_fallback"}, "entities": []}),
         ActionExecuted("action_clarify"), SlotSet("last_topic", "exercise_after"),
         ActionExecuted("action_listen")],
        [*SORENESS, UserUttered("blah", parse_data={"intent": {"name": "follow_up"}, "entities": []}),
         ActionExecuted("action_follow_up"), ActionExecuted("action_listen")],
        [*SORENESS, SessionStarted(), ActionExecuted("action_listen")],
    ]
    seen = []
    for events in conversations:
        nlu = topic_before((e.as_dict() for e in reversed(events)), current_included=False)
        actions = topic_before(reversed([e.as_dict() for e in [*events, current]]))
        assert nlu == actions
        seen.append(nlu)
    assert seen == ["soreness_after", "exercise_after", None, None]


def test_on_the_real_server(stack: Any, kb: KnowledgeBase) -> None:
    late = filled(kb.subjects["running_late"].reply)
    sender = f"keep-{uuid.uuid4().hex[:8]}"
    say(stack, sender, "i'm running about 10 minutes late for my appointment")
    more = "will i still get the full session"  # from the tuned-on blind sets
    kept = " ".join(texts(say(stack, sender, more)))
    assert kept.startswith(late), kept
    alone = " ".join(texts(say(stack, f"keep-{uuid.uuid4().hex[:8]}", more)))
    assert not alone.startswith(late), alone

    sender = f"keep-{uuid.uuid4().hex[:8]}"
    say(stack, sender, "what are your hours")
    again = " ".join(texts(say(stack, sender, "saturday?")))
    hours = " ".join(texts(say(stack, f"keep-{uuid.uuid4().hex[:8]}", "what are your hours")))
    assert again == hours, again
    assert " ".join(texts(say(stack, f"keep-{uuid.uuid4().hex[:8]}", "saturday?"))) != hours  # read alone

    sender = f"keep-{uuid.uuid4().hex[:8]}"
    say(stack, sender, "how much is a session")
    price = " ".join(texts(say(stack, sender, "and the initial assessment?")))
    assert price.startswith(filled(kb.subjects["cost"].reply)), price

    # follow_ups.yml intents.misread_after_answer: read alone as the opening hours (round 39)
    driving = filled(kb.subjects["driving_after"].reply)
    sender = f"keep-{uuid.uuid4().hex[:8]}"
    say(stack, sender, "can i drive home after a session")
    again = " ".join(texts(say(stack, sender, "its 2 hrs tho")))
    assert again.startswith(driving), again
    alone = " ".join(texts(say(stack, f"keep-{uuid.uuid4().hex[:8]}", "its 2 hrs tho")))
    assert not alone.startswith(driving), alone


@pytest.mark.services
def test_a_kept_answer_offers_the_message_alone_reading_on_the_real_server(stack: Any,
                                                                         kb: KnowledgeBase) -> None:
    """The answer keep_topic chose carries "Or did you mean" the model's own reading
    last (assistant/rasa_server/other_reading_button.py), in the stored bot message,
    so the widget's tap on it is followed as the button it is."""
    sender = f"keep-{uuid.uuid4().hex[:8]}"
    say_on_website(stack, sender, "i'm running about 10 minutes late for my appointment")
    [kept] = say_on_website(stack, sender, "will i still get the full session")
    assert kept["text"].startswith(filled(kb.subjects["running_late"].reply).split(". ")[0]), kept
    payloads = [b["payload"] for b in kept["buttons"]]
    assert kept["buttons"][-1] == {"title": BUTTON_TITLE.format(title=kb.title_of("part_of_plan")),
                                  "payload": "/faq/part_of_plan"}
    assert payloads.count("/faq/part_of_plan") == 1 and "/request_callback" in payloads
    tapped = say_on_website(stack, sender, "/faq/part_of_plan")
    assert texts(tapped) == [filled(kb.topics["part_of_plan"].answer)]
    assert stored_user_texts(stack, sender)[-1] == "/faq/part_of_plan"  # followed, not read as text
    # the message alone, in a new conversation, is answered as it reads: no such button
    [alone] = say_on_website(stack, f"keep-{uuid.uuid4().hex[:8]}", "will i still get the full session")
    assert all(not b["title"].startswith("Or did you mean") for b in alone.get("buttons", [])), alone

