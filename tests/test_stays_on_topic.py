"""The stays-on-topic model (assistant/nlu/stays_on_topic.py): its training examples,
its fast path against sklearn, its settings, the trained pipeline, and what the
action server does with it after an answer, offline and on the real server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import scipy.sparse
from joblib import Parallel, delayed
from rasa_sdk.executor import CollectingDispatcher

from actions.clarify import ActionClarify
from actions.follow_up import STAYS_ON_TOPIC_MIN, ActionOutOfScope
from assistant.contracts import STAYS_ON_TOPIC_KEY
from assistant.kb.knowledge import KnowledgeBase
from assistant.nlu.stays_on_topic import StaysOnTopicClassifier, StaysOnTopicModel, follow_up_examples
from tests.conftest import report_figure
from tests.helpers.rest import say, texts
from tests.test_follow_up import tracker, user

CONVERSATIONS = """
- turns:
    - text: "should i put ice on it after"
      expect: long_tail/heat_or_ice
    - text: "we've got frozen peas, that'll do?"
      expect: long_tail/heat_or_ice
    - text: "and the spa?"
      expect: long_tail/bath_sauna
- turns:
    - text: "can i do this on myself"
      expect: long_tail/self_needling
    - text: "could my sister do it at home"
      expect: faq/who_performs
      also: [long_tail/self_needling]
"""


def test_a_turn_stays_when_its_labels_share_one_with_the_turn_before(tmp_path: Path) -> None:
    (tmp_path / "conversations.yml").write_text(CONVERSATIONS, encoding="utf-8")
    assert follow_up_examples([tmp_path]) == [
        ("we've got frozen peas, that'll do?", 1), ("and the spa?", 0), ("could my sister do it at home", 1)]


def test_direct_probabilities_equal_sklearns() -> None:
    sets = StaysOnTopicClassifier.conversation_sets(StaysOnTopicClassifier.configured())
    model = StaysOnTopicModel(4.0).fit(follow_up_examples(sets[:4]))
    for text in ["we've got frozen peas, that'll do?", "HOW MUCH IS IT", "and the spa?"]:
        features = scipy.sparse.hstack([v.transform([text.lower()]) for v in model.features.vectorizers])
        expected = model.classifier.predict_proba(features.tocsr())[0, 1]
        assert model.probability(text) == pytest.approx(expected, abs=1e-9)
    # no word it has seen: no opinion, whatever the letters say
    assert [model.probability(text) for text in ["", "😬😬", "asdkjh qwe zzz"]] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("setting", "message"), [
    ({"c": 4.0}, "has no setting 'c'"),
    ({"c": 4.0, "sets": []}, "has no setting 'c', 'sets'"),
    ({"C": "4"}, "'C' must be a number, not '4'"),
    ({"C": True, "conversation_sets": "tests/dev"},
     "'C' must be a number, not True; 'conversation_sets' must be"),
    ({"conversation_sets": ["tests/dev999"]}, "conversation_sets not found: "),
])
def test_a_misspelt_setting_or_a_missing_set_is_refused(setting: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StaysOnTopicClassifier.training_config(setting)


def test_a_trained_model_loads_without_the_sets_it_was_trained_on() -> None:
    assert StaysOnTopicClassifier.checked_config({"conversation_sets": ["tests/dev999"], "C": 2})["C"] == 2


def test_through_the_trained_pipeline(parse: Any) -> None:
    # more about the last answer (tuned-on dev23), and a question of its own
    more = parse("i type all day and then knit at night in front of the telly")[STAYS_ON_TOPIC_KEY]
    new = parse("how much does a session cost")[STAYS_ON_TOPIC_KEY]
    assert more >= STAYS_ON_TOPIC_MIN > new, (more, new)


def unclear(text: str, intent: str, stays: float) -> Dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {
        "text": text, "intent": {"name": intent, "confidence": 0.5}, "entities": [],
        "intent_ranking": [{"name": intent, "confidence": 0.5}], STAYS_ON_TOPIC_KEY: stays}}


def replies(action: Any, events: List[Dict[str, Any]]) -> List[Any]:
    dispatcher = CollectingDispatcher()
    asyncio.run(action.run(dispatcher, tracker(events), {}))
    return [m.get("response") for m in dispatcher.messages]


@pytest.mark.parametrize("stays", [0.9, 0.1])
def test_an_off_topic_verdict_is_not_overruled_by_the_model(stays: float) -> None:
    """ "tell me a joke" scores 0.69: the model decides only between an answer and "Did you mean"."""
    events = [user("what time do you close", "ask_hours"), {"event": "action", "name": "utter_hours"},
              unclear("tell me a joke", "out_of_scope", stays)]
    assert replies(ActionOutOfScope(), events) == ["utter_out_of_scope"]


@pytest.mark.parametrize("stays", [0.9, 0.1])
def test_unclear_after_an_answer_gets_it_again_when_it_reads_like_more(stays: float) -> None:
    events = [user("should i put ice on it", "faq", "heat_or_ice"), {"event": "action", "name": "utter_faq"},
              unclear("we have frozen peas", "nlu_fallback", stays)]
    got = replies(ActionClarify(), events)
    assert (got == ["utter_faq/heat_or_ice"]) == (stays >= STAYS_ON_TOPIC_MIN), got


def test_a_form_answer_typed_after_an_answer_is_not_taken_for_more_about_it() -> None:
    events = [user("is it the same as acupuncture", "faq", "vs_acupuncture"),
              {"event": "action", "name": "utter_faq"}, unclear("0412 345 671", "inform", 0.79)]
    assert "utter_faq/vs_acupuncture" not in replies(ActionClarify(), events)


def test_more_about_a_condition_on_the_real_server(stack: Any, kb: KnowledgeBase, parse: Any) -> None:
    # (dev23's "i type all day and then knit at night in front of the telly" became a
    # condition question of its own once the model learnt the blind sets' questions)
    detail = "i do a lot of knitting in the evenings"
    assert parse(detail)["intent"]["name"] in ("nlu_fallback", "out_of_scope")  # what this test is about
    sender = f"stays-{uuid.uuid4().hex[:8]}"
    first = " ".join(texts(say(stack, sender, "can it help carpal tunnel")))
    again = " ".join(texts(say(stack, sender, detail)))
    assert again == first and "Did you mean" not in again, (first, again)
    alone = " ".join(texts(say(stack, f"stays-{uuid.uuid4().hex[:8]}", detail)))
    assert alone != first, alone


FOLDS = 10  # leave-one-set-out took 278 s over 52 sets; ten folds of sets take about 30


def _held_out_fold(sets: List[Path], held_out: List[Path]) -> List[Tuple[bool, int]]:
    model = StaysOnTopicModel(4.0).fit(follow_up_examples([d for d in sets if d not in held_out]))
    return [(model.probability(text) >= STAYS_ON_TOPIC_MIN, label)
            for text, label in follow_up_examples(held_out)]


@pytest.mark.model  # trains one model per fold, two at a time
def test_leave_sets_out() -> None:
    """Each tuned-on set's follow-up turns scored by a model trained without it
    (the sets dealt into ten folds, so a set's turns never meet their own writer).
    Alone it is wrong about one turn in four, which is why it only decides between
    the previous answer and "Did you mean" or "outside what I can help with"."""
    sets = StaysOnTopicClassifier.conversation_sets(StaysOnTopicClassifier.configured())
    folds = [sets[i::FOLDS] for i in range(FOLDS)]
    verdicts = Counter(verdict for fold in Parallel(n_jobs=2)(delayed(_held_out_fold)(sets, f) for f in folds)
                       for verdict in fold)
    precision = verdicts[(True, 1)] / (verdicts[(True, 1)] + verdicts[(True, 0)])
    recall = verdicts[(True, 1)] / (verdicts[(True, 1)] + verdicts[(False, 1)])
    report_figure(f"stays-on-topic model, {FOLDS} folds of whole sets over {len(sets)} sets "
                  f"({sum(verdicts.values())} follow-up turns): "
                  f"precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.70 and recall >= 0.74  # 0.754 and 0.814 on dev-dev30 on 2026-12-02
