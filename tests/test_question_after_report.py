"""A report of how the visitor feels, then a question of their own, gets the question's
answer (assistant/nlu/question_after_report.py): the splitting, the decision with a
stand-in model, the trained pipeline, and a conversation through the real server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Dict, List, Optional

import pytest
from rasa.shared.nlu.training_data.message import Message

from actions.follow_up import cached_follow_ups
from assistant.contracts import QUESTION_AFTER_REPORT_KEY, selected_answer
from assistant.kb.knowledge import KnowledgeBase
from assistant.nlu.question_after_report import answer_question_after_report, last_question, question_reading
from assistant.nlu.uncertainty import Thresholds, decide
from tests.helpers.rest import filled, say, texts

THRESHOLDS = Thresholds(intent=0.4, intent_ambiguity=0.0, answer=0.4, answer_ambiguity=0.1, strict=())
REPORTS = ("soreness_after", "other_side_effects")


@pytest.mark.parametrize(("text", "question"), [
    ("had my neck done yesterday, bit stiff and sore. is it ok to drive to work",
     "is it ok to drive to work"),
    ("calf is sore after the needling yesterday. can i still do my 10k on sunday",
     "can i still do my 10k on sunday"),
    ("just had my hammy needled, feels heavy! spa pool ok tonight?", "spa pool ok tonight?"),
    ("sore today\nwhen should i book the next one", "when should i book the next one"),
    ("sore after the needling yesterday can i go to the gym", None),  # one sentence, no comma
    # one sentence: the clause after the last comma that starts as a question (round 46)
    ("calf still a bit tender from the needles on tues, how much is the next session",
     "how much is the next session"),
    ("got a small bruise from the needling, no bother, but whats the best thing to wear next week",
     "whats the best thing to wear next week"),
    ("and the soreness, how many days is normal", None),  # too short to be a report
    ("can i go to the gym?", None),
    ("had it done yesterday. feeling a bit sore today.", None),  # no question at the end
])
def test_the_last_question(text: str, question: Optional[str]) -> None:
    assert last_question(text) == question


def parse(text: str, answer: str, confidence: float = 0.8, intent: str = "faq") -> Dict[str, Any]:
    ranking = [{"intent_response_key": f"faq/{answer}", "confidence": confidence},
               {"intent_response_key": "faq/what_is", "confidence": (1 - confidence) / 2}]
    return {"text": text, "intent": {"name": intent, "confidence": 0.9},
            "intent_ranking": [{"name": intent, "confidence": 0.9}],
            "response_selector": {"all_retrieval_intents": ["faq"], "faq": {
                "ranking": ranking, "response": {**ranking[0], "utter_action": f"utter_faq/{answer}"}}}}


def torn_between(report: str, other: str, first: float = 0.52, second: float = 0.46,
                 intent: float = 0.9) -> Dict[str, Any]:
    """The whole message, unsure between two answers (0.52 and 0.46: "Did you mean")."""
    whole = parse(GYM, report, first)
    whole["response_selector"]["faq"]["ranking"][1] = {"intent_response_key": f"faq/{other}",
                                                       "confidence": second}
    whole["intent"]["confidence"] = whole["intent_ranking"][0]["confidence"] = intent
    assert decide(whole, THRESHOLDS) == "nlu_fallback"
    return whole


REPORT = "had it done yesterday, bit sore. "
GYM = REPORT + "can i go to the gym"


def reader(answers: Dict[str, Dict[str, Any]]) -> Any:
    read: List[str] = []

    def read_alone(text: str) -> Dict[str, Any]:
        read.append(text)
        return answers[text]
    read_alone.read = read  # type: ignore[attr-defined]
    return read_alone


@pytest.mark.parametrize(("whole", "alone", "answered"), [
    (parse(GYM, "soreness_after"), parse("", "exercise_after"), "exercise_after"),
    (parse(GYM, "other_side_effects"), parse("", "exercise_after"), "exercise_after"),
    # the whole message is no report: its reading stands
    (parse(GYM, "exercise_after"), parse("", "bath_sauna"), None),
    # the question alone is unsure ("Did you mean"), the report's own answer, or no FAQ
    (parse(GYM, "soreness_after"), parse("", "exercise_after", 0.3), None),
    (parse(GYM, "soreness_after"), parse("", "soreness_after"), None),
    (parse(GYM, "soreness_after"), parse("", "what_is", intent="book"), None),
    # the whole message is unsure: "Did you mean" stands
    (parse(GYM, "soreness_after", 0.3), parse("", "exercise_after"), None),
    # ...unless it is torn between the report and the question, which alone picks its own
    (torn_between("soreness_after", "exercise_after"), parse("", "exercise_after"), "exercise_after"),
    (torn_between("soreness_after", "bath_sauna"), parse("", "exercise_after"), None),
    (torn_between("exercise_after", "soreness_after"), parse("", "exercise_after"), None),
    # ...not when the model was unsure of the intent (a personal medical question keeps
    # its "Did you mean"), nor when the second answer is no real reading
    (torn_between("soreness_after", "exercise_after", intent=0.3), parse("", "exercise_after"), None),
    (torn_between("soreness_after", "exercise_after", first=0.3, second=0.02), parse("", "exercise_after"),
     None),
])
def test_the_decision(whole: Dict[str, Any], alone: Dict[str, Any], answered: Optional[str]) -> None:
    read = reader({"can i go to the gym": alone})
    found = question_reading(whole, REPORTS, cached_follow_ups().refers_back, read, THRESHOLDS)
    got = found[1]["response_selector"]["faq"]["response"]["intent_response_key"] if found else None
    assert got == (f"faq/{answered}" if answered else None)


STORY = "had 2 sessions on my IT band and my knee is basically fine now. "


def reading(found: Optional[Any]) -> Optional[str]:
    if found is None:
        return None
    alone = found[1]
    name = alone["intent"]["name"]
    return alone["response_selector"]["faq"]["response"]["intent_response_key"] if name == "faq" else name


@pytest.mark.parametrize(("whole", "question", "alone", "answered"), [
    # a session told, read as asking about the knee: the question's own answer, even
    # when it points back ("will it come back" is about the relief, not the knee)
    (parse(STORY + "will it come back tho?", "what_is", intent="ask_condition"), "will it come back tho?",
     parse("", "results_duration"), "faq/results_duration"),
    (parse(STORY + "how much is the next one?", "what_is", intent="ask_condition"),
     "how much is the next one?", parse("", "cost"), "faq/cost"),
    # a session told that the model was unsure of ("Did you mean"): the question's own
    # answer when it alone is sure (dev106: "had my 2nd session yesterday ... how soon can
    # i do a third?"); with no session told, "Did you mean" stands
    (parse(STORY + "how soon can i do a third?", "session_frequency", 0.3), "how soon can i do a third?",
     parse("", "session_frequency"), "faq/session_frequency"),
    (parse("my knee is sore. how soon can i do a third?", "session_frequency", 0.3),
     "how soon can i do a third?", parse("", "session_frequency"), None),
    (parse(STORY + "how soon can i do a third?", "session_frequency", 0.3), "how soon can i do a third?",
     parse("", "session_frequency", 0.3), None),
    # no session told: a question about the knee
    (parse("my knee is sore. will it come back?", "what_is", intent="ask_condition"), "will it come back?",
     parse("", "results_duration"), None),
    # the question alone asks about a condition too: the whole message's reading stands
    (parse(STORY + "could it help my back?", "what_is", intent="ask_condition"), "could it help my back?",
     parse("", "what_is", intent="ask_condition"), None),
    # an intent the file allows after any report, not one it doesn't
    (parse(REPORT + "what time do you open saturday?", "soreness_after"), "what time do you open saturday?",
     parse("", "what_is", intent="ask_hours"), "ask_hours"),
    (parse(REPORT + "is it safe when pregnant?", "soreness_after"), "is it safe when pregnant?",
     parse("", "what_is", intent="ask_personal_medical"), None),
])
def test_a_story_the_model_read_otherwise(whole: Dict[str, Any], question: str, alone: Dict[str, Any],
                                          answered: Optional[str]) -> None:
    follow_ups = cached_follow_ups()
    found = question_reading(whole, REPORTS, follow_ups.refers_back, reader({question: alone}), THRESHOLDS,
                             follow_ups.report_stories)
    assert reading(found) == answered


def test_the_follow_ups_file_checks_its_report_stories(kb: KnowledgeBase) -> None:
    from actions.follow_up import parse_follow_ups

    with pytest.raises(ValueError, match=r"report_stories: unknown key\(s\) \['told_by'\]"):
        parse_follow_ups({"report_stories": {"told_by": "x"}}, kb)
    with pytest.raises(ValueError, match="report_stories: 'told' is not a valid expression"):
        parse_follow_ups({"report_stories": {"told": "(had"}}, kb)
    with pytest.raises(ValueError, match=r"report_stories: answers: unknown intent\(s\) \['ask_price'\]"):
        parse_follow_ups({"report_stories": {"answers": ["ask_hours", "ask_price"]}}, kb)
    # an unsure reading may count as a story, but "Did you mean" is never the question's answer
    unsure = parse_follow_ups({"report_stories": {"intents": ["nlu_fallback"]}}, kb)
    assert "nlu_fallback" in unsure.report_stories.intents
    with pytest.raises(ValueError, match=r"report_stories: answers: unknown intent\(s\) \['nlu_fallback'\]"):
        parse_follow_ups({"report_stories": {"answers": ["nlu_fallback"]}}, kb)


def test_a_question_pointing_back_at_the_report_is_not_read_alone() -> None:
    read = reader({})
    whole = parse(REPORT + "how long will that last?", "soreness_after")
    assert question_reading(whole, REPORTS, cached_follow_ups().refers_back, read, THRESHOLDS) is None
    assert read.read == []


BRUISE = "got a small bruise from the needles yesterday. "


@pytest.mark.parametrize(("question", "alone", "answered"), [
    # read alone it asks about aftercare: its answer, though "it" points back (round 46)
    ("should i ice it?", parse("", "heat_or_ice"), "faq/heat_or_ice"),
    ("is it ok to go for a swim?", parse("", "bath_sauna"), "faq/bath_sauna"),
    # ...but a question about the report itself keeps the report's answer
    ("how long will that last?", parse("", "results_duration"), None),
    ("is that a side effect?", parse("", "side_effects"), None),
])
def test_an_aftercare_question_pointing_back_is_still_answered(question: str, alone: Dict[str, Any],
                                                              answered: Optional[str]) -> None:
    follow_ups = cached_follow_ups()
    whole = parse(BRUISE + question, "other_side_effects")
    found = question_reading(whole, REPORTS, follow_ups.refers_back, reader({question: alone}), THRESHOLDS,
                             follow_ups.report_stories)
    assert reading(found) == answered


def test_the_aftercare_subjects_are_checked(kb: KnowledgeBase) -> None:
    from actions.follow_up import parse_follow_ups

    with pytest.raises(ValueError, match="report_stories.aftercare: 'icing' is not a topic or subject id"):
        parse_follow_ups({"report_stories": {"aftercare": ["heat_or_ice", "icing"]}}, kb)


def test_the_message_gets_the_questions_reading_and_says_so() -> None:
    text = REPORT + "can i go to the gym"
    message = Message(parse(text, "soreness_after"))
    answer_question_after_report(message, reader({"can i go to the gym": parse("", "exercise_after")}))
    assert message.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/exercise_after"
    assert message.get(QUESTION_AFTER_REPORT_KEY) == {"question": "can i go to the gym",
                                                       "instead_of": "faq/soreness_after"}


def test_an_error_leaves_the_whole_messages_reading() -> None:
    message = Message(parse(GYM, "soreness_after"))

    def broken(text: str) -> Dict[str, Any]:
        raise RuntimeError("model gone")
    answer_question_after_report(message, broken)
    assert message.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/soreness_after"
    assert message.get(QUESTION_AFTER_REPORT_KEY) is None


def test_the_follow_ups_file_names_known_reports(kb: KnowledgeBase) -> None:
    from actions.follow_up import parse_follow_ups

    assert cached_follow_ups().reports == REPORTS
    with pytest.raises(ValueError, match="reports: 'sore' is not a topic or subject id"):
        parse_follow_ups({"reports": ["sore"]}, kb)


# Written for this test (none is in a blind set): reports of soreness heavy enough that
# the whole message reads as the soreness, each ending in a question of its own; and
# questions about the report, which keep the soreness answer.
OWN_QUESTIONS = [
    ("my calf is really sore and achy and stiff since the needling yesterday, feels bruised and tender. "
     "am i ok to go for a run tomorrow?", "faq/exercise_after"),
    ("bit achy and sore after my needling today. what should i avoid tonight?", "faq/aftercare_general"),
    ("sore and tender after yesterdays session. when should i come back for the next one?",
     "faq/session_frequency"),
    ("so sore and achy after the needles yesterday, like i did a huge leg day. can i have a hot bath?",
     "faq/bath_sauna"),
    # one sentence: the clause after the comma (round 46)
    ("really sore and stiff and achy after my needling this morning, can i still go to the gym tonight",
     "faq/exercise_after"),
]
ABOUT_THE_REPORT = [
    "had it done yesterday and im a bit sore. is that normal?",
    "feeling achy after needling yesterday. how long will that last?",
]


def test_through_the_trained_pipeline(agent: Any) -> None:
    read_alone = 0
    for text, expected in OWN_QUESTIONS:
        parse_data = asyncio.run(agent.parse_message(text))
        said = parse_data.get(QUESTION_AFTER_REPORT_KEY)
        print(f"{text!r} -> {selected_answer(parse_data).get('intent_response_key')} ({said})")
        assert selected_answer(parse_data).get("intent_response_key") == expected
        if said:
            assert said == {"question": last_question(text), "instead_of": "faq/soreness_after"}
            read_alone += 1
    # a retrained model may read a whole message right by itself, but not most of them
    assert read_alone >= len(OWN_QUESTIONS) // 2
    # an aftercare question pointing back at a mark (round 46)
    text = "got a little bruise and a sore spot where the needle went in yesterday. should i put ice on it?"
    parse_data = asyncio.run(agent.parse_message(text))
    assert selected_answer(parse_data).get("intent_response_key") == "faq/heat_or_ice"
    for text in ABOUT_THE_REPORT:
        parse_data = asyncio.run(agent.parse_message(text))
        assert selected_answer(parse_data).get("intent_response_key") == "faq/soreness_after"
        assert parse_data.get(QUESTION_AFTER_REPORT_KEY) is None


def test_on_the_real_server(stack: Any, kb: KnowledgeBase) -> None:
    text, expected = OWN_QUESTIONS[3]  # the hot bath
    reply = " ".join(texts(say(stack, f"report-{uuid.uuid4().hex[:8]}", text)))
    assert reply.startswith(filled(kb.subjects[expected.split("/")[1]].reply)), reply
