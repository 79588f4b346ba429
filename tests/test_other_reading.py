"""The message alone's reading under an answer chosen from context: the decision
(assistant/kb/other_reading.py), the Rasa server's generator, which puts it where
Rasa puts an action's (assistant/rasa_server/other_reading_button.py), and the follow-up
actions that send it (actions/follow_up.py). Through the real server:
tests/test_keep_topic.py and tests/test_follow_up.py."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import pytest
from rasa.core.channels import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk.executor import CollectingDispatcher

from actions.follow_up import ActionFollowUp
from assistant.contracts import KEPT_TOPIC_KEY, STAYS_ON_TOPIC_KEY
from assistant.kb.knowledge import KnowledgeBase
from assistant.kb.other_reading import BUTTON_TITLE, message_alone_reading, other_reading_button
from assistant.paths import PROJECT_ROOT
from assistant.rasa_server.other_reading_button import OtherReadingGenerator
from tests.test_follow_up import run, user

pytestmark = pytest.mark.unit

DOMAIN = Domain.load([str(PROJECT_ROOT / "domain.yml"), str(PROJECT_ROOT / "data" / "responses" / "faq.yml")])


def selection(intent: str, ranking: List[Dict[str, Any]], text: str = "how long will it last",
              **extra: Any) -> Dict[str, Any]:
    key = ranking[0]["intent_response_key"]
    return {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": [],
            "response_selector": {"all_retrieval_intents": ["faq"], "faq": {
                "ranking": ranking,
                "response": {**ranking[0], "utter_action": f"utter_{key}"}}}, **extra}


# "how long will it last" after soreness: read alone, how long results last
ALONE = selection("follow_up", [{"intent_response_key": "faq/results_duration", "confidence": 0.9}])
# "will i still get the full session" after running late: keep_topic kept running late
# instead of "part of a wider plan" (its ranking keeps the model's scores)
KEPT = selection("faq", [{"intent_response_key": "faq/running_late", "confidence": 0.02},
                         {"intent_response_key": "faq/part_of_plan", "confidence": 0.8}],
                 text="will i still get the full session",
                 **{KEPT_TOPIC_KEY: {"instead_of": "faq/part_of_plan"}, STAYS_ON_TOPIC_KEY: 0.94})


def test_the_button_offers_the_message_alone_reading_with_its_title(kb: KnowledgeBase) -> None:
    button = other_reading_button(kb, ALONE, "soreness_after")
    assert button == {"title": f"Or did you mean: {kb.title_of('results_duration')}",
                      "payload": "/faq/results_duration"}
    assert other_reading_button(kb, KEPT, "running_late") == {
        "title": BUTTON_TITLE.format(title=kb.title_of("part_of_plan")), "payload": "/faq/part_of_plan"}
    # an intent's reply chosen from context ("saturday works" after the hours) may carry it too
    assert other_reading_button(kb, ALONE, None) == button


@pytest.mark.parametrize(("parse", "answer", "shown", "in_form"), [
    (ALONE, "results_duration", (), False),  # the same answer as the message alone
    (selection("follow_up", [{"intent_response_key": "faq/results_duration", "confidence": 0.3}]),
     "soreness_after", (), False),  # not plausible enough
    (selection("follow_up", [{"intent_response_key": "faq/no_such_topic", "confidence": 0.9}]),
     "soreness_after", (), False),  # no title in the knowledge base
    (ALONE, "soreness_after", ("/faq/results_duration",), False),  # already among its buttons
    (selection("follow_up", [{"intent_response_key": "faq/soreness_after", "confidence": 0.9}]),
     "does_it_hurt", (), False),  # does_it_hurt's related topics include soreness
    (ALONE, "soreness_after", (), True),  # inside the call-back form
    ({**ALONE, "intent": {"name": "emergency", "confidence": 1.0}}, "soreness_after", (), False),
    ({**ALONE, "intent": {"name": "urgent", "confidence": 1.0}}, "soreness_after", (), False),
    # keep_topic made a day after the opening hours a follow-up instead of another intent
    ({**ALONE, KEPT_TOPIC_KEY: {"instead_of": "ask_availability"}}, None, (), False),
])
def test_when_there_is_no_button(kb: KnowledgeBase, parse: Dict[str, Any], answer: Optional[str],
                                 shown: tuple, in_form: bool) -> None:
    assert other_reading_button(kb, parse, answer, shown, in_form) is None


def test_a_kept_answers_reading_is_the_one_it_replaced() -> None:
    assert message_alone_reading(KEPT) == "part_of_plan"  # not the selected (kept) answer
    assert message_alone_reading(ALONE) == "results_duration"
    weak = {**KEPT, "response_selector": {"faq": {"ranking": [
        {"intent_response_key": "faq/running_late", "confidence": 0.6},
        {"intent_response_key": "faq/part_of_plan", "confidence": 0.3}]}}}
    assert message_alone_reading(weak) is None


RUNNING_LATE = [UserUttered("i'm running about 10 minutes late", parse_data=selection(
    "faq", [{"intent_response_key": "faq/running_late", "confidence": 0.99}], text="i'm running late")),
    ActionExecuted("utter_faq"), ActionExecuted("action_listen")]


def generate(events: List[Event], parse: Dict[str, Any], utter_action: str,
             generator: Optional[TemplatedNaturalLanguageGenerator] = None) -> Dict[str, Any]:
    tracker = DialogueStateTracker.from_events("visitor-9", [*events, UserUttered(parse["text"],
                                                                                  parse_data=parse)])
    nlg = generator or OtherReadingGenerator(endpoint_config=EndpointConfig(type="x"), domain=DOMAIN)
    response = asyncio.run(nlg.generate(utter_action, tracker, "rest", domain_responses=DOMAIN.responses))
    assert response is not None
    return response


def test_the_generator_is_built_the_way_rasa_loads_one_from_endpoints() -> None:
    from rasa.core.nlg.generator import NaturalLanguageGenerator

    config = EndpointConfig(type="assistant.rasa_server.other_reading_button.OtherReadingGenerator")
    nlg = NaturalLanguageGenerator.create(config, DOMAIN)
    assert isinstance(nlg, OtherReadingGenerator) and isinstance(nlg, TemplatedNaturalLanguageGenerator)
    assert nlg.responses is DOMAIN.responses


def test_the_generator_puts_the_other_reading_after_a_kept_answers_own_buttons(kb: KnowledgeBase) -> None:
    stock = generate(RUNNING_LATE, KEPT, "utter_faq/running_late", TemplatedNaturalLanguageGenerator(
        DOMAIN.responses))
    ours = generate(RUNNING_LATE, KEPT, "utter_faq/running_late")
    assert ours["text"] == stock["text"]
    assert ours["buttons"] == [
        *stock["buttons"],
        {"title": BUTTON_TITLE.format(title=kb.title_of("part_of_plan")), "payload": "/faq/part_of_plan"}]


@pytest.mark.parametrize(("events", "parse", "utter_action"), [
    (RUNNING_LATE, {k: v for k, v in KEPT.items() if k != KEPT_TOPIC_KEY}, "utter_faq/running_late"),
    (RUNNING_LATE, KEPT, "utter_ask_callback_name"),  # another reply in the same turn
    (RUNNING_LATE, {**KEPT, "intent": {"name": "emergency", "confidence": 1.0}}, "utter_emergency"),
    # a red flag on a message keep_topic had answered: even its kept answer gets no button
    (RUNNING_LATE, {**KEPT, "intent": {"name": "emergency", "confidence": 1.0}}, "utter_faq/running_late"),
    ([*RUNNING_LATE, ActiveLoop("callback_form")], KEPT, "utter_faq/running_late"),  # in the form
    (RUNNING_LATE, {**KEPT, "intent": {"name": "follow_up", "confidence": 1.0}},  # the action's job
     "utter_faq/running_late"),
])
def test_the_generator_leaves_other_replies_alone(events: List[Event], parse: Dict[str, Any],
                                                  utter_action: str) -> None:
    stock = generate(events, parse, utter_action, TemplatedNaturalLanguageGenerator(DOMAIN.responses))
    assert generate(events, parse, utter_action) == stock


def test_a_broken_decision_leaves_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant.rasa_server.other_reading_button as module

    def broken(*_: Any, **__: Any) -> None:
        raise ValueError("a broken knowledge file")

    monkeypatch.setattr(module, "other_reading_button", broken)
    stock = generate(RUNNING_LATE, KEPT, "utter_faq/running_late",
                     TemplatedNaturalLanguageGenerator(DOMAIN.responses))
    assert generate(RUNNING_LATE, KEPT, "utter_faq/running_late") == stock


SORENESS = [user("will i be sore after", "faq", "soreness_after"), {"event": "action", "name": "utter_faq"}]


def test_the_follow_up_action_sends_the_button_with_its_answer(kb: KnowledgeBase) -> None:
    messages, _ = run([*SORENESS, {"event": "user", "text": ALONE["text"], "parse_data": ALONE}])
    assert [(m["response"], m["buttons"]) for m in messages] == [
        ("utter_faq/soreness_after", [other_reading_button(kb, ALONE, "soreness_after")])]
    plain = selection("follow_up", [{"intent_response_key": "faq/other_side_effects", "confidence": 0.16}],
                      text="is that normal?")
    messages, _ = run([*SORENESS, {"event": "user", "text": plain["text"], "parse_data": plain}])
    assert [(m["response"], m["buttons"]) for m in messages] == [("utter_faq/soreness_after", [])]


def test_stock_rasa_puts_an_actions_button_where_the_generator_puts_a_kept_answers(
        kb: KnowledgeBase) -> None:
    """What the Rasa server makes of the follow-up action's message, with no patch of
    Rasa: the rendered soreness answer, its related topics, then the other reading,
    the order the generator gives a kept answer (so plain `rasa run` answers the same:
    tests/test_long_replies.py)."""
    from rasa.core.actions.action import RemoteAction

    dispatcher = CollectingDispatcher()
    asyncio.run(ActionFollowUp().run(dispatcher, _sdk_tracker(), {}))
    tracker = DialogueStateTracker.from_events("visitor-9", [UserUttered(ALONE["text"], parse_data=ALONE)])
    nlg = OtherReadingGenerator(domain=DOMAIN)
    [uttered] = asyncio.run(RemoteAction._utter_responses([dict(m) for m in dispatcher.messages],
                                                          CollectingOutputChannel(), nlg, tracker))
    related = DOMAIN.responses["utter_faq/soreness_after"][0]["buttons"]
    assert uttered.data["buttons"] == [*related, other_reading_button(kb, ALONE, "soreness_after")]


def _sdk_tracker() -> Any:
    from tests.test_follow_up import tracker

    return tracker([*SORENESS, {"event": "user", "text": ALONE["text"], "parse_data": ALONE}])


def test_the_actions_send_no_button_inside_the_form_and_survive_a_broken_decision(
        kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    """actions/follow_up.py ``other_reading_buttons``, which the follow-up, "Did you mean"
    and off-topic actions call with their tracker."""
    import actions.follow_up as follow_up

    sdk = _sdk_tracker()
    assert follow_up.other_reading_buttons(kb, sdk, "soreness_after") == [
        other_reading_button(kb, ALONE, "soreness_after")]
    sdk.active_loop = {"name": "callback_form"}
    assert follow_up.other_reading_buttons(kb, sdk, "soreness_after") == []

    def broken(*_: Any, **__: Any) -> None:
        raise ValueError("a broken knowledge file")

    monkeypatch.setattr(follow_up, "other_reading_button", broken)
    assert follow_up.other_reading_buttons(kb, _sdk_tracker(), "soreness_after") == []
    messages, _ = run([*SORENESS, {"event": "user", "text": ALONE["text"], "parse_data": ALONE}])
    assert [(m["response"], m["buttons"]) for m in messages] == [("utter_faq/soreness_after", [])]


@pytest.mark.parametrize("action", ["ActionFollowUp", "ActionClarify", "ActionOutOfScope"])
def test_every_action_that_answers_from_context_passes_its_tracker(action: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import actions.clarify as clarify
    import actions.follow_up as follow_up
    from actions.follow_up import Resolution

    seen: List[Any] = []
    monkeypatch.setattr(follow_up, "other_reading_buttons",
                        lambda kb, tracker, answer: seen.append(tracker) or [])
    resolved = lambda *_: Resolution(answer="soreness_after")  # noqa: E731
    for module, name in ((follow_up, "follow_up_resolution"), (clarify, "unclear_resolution"),
                         (follow_up, "unclear_resolution"), (follow_up, "overruled_off_topic")):
        monkeypatch.setattr(module, name, resolved, raising=False)
    instance = getattr(clarify if action == "ActionClarify" else follow_up, action)()
    sdk = _sdk_tracker()
    asyncio.run(instance.run(CollectingDispatcher(), sdk, {}))
    assert seen == [sdk]
