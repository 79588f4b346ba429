"""LinearIntentClassifier: intent and FAQ topic from one linear model, in Rasa's output shape.

Trained here on a small hand-made set (the trained project model is covered by
the accuracy tests); saved and loaded through Rasa's model storage."""

from __future__ import annotations

import pickle
from typing import Any, List

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.nlu.linear_classifier import LinearIntentClassifier
from assistant.nlu.uncertainty import MIN_PLAUSIBLE
from assistant.quality.evaluation import full_label

EXAMPLES = {
    "greet": ["hi", "hello", "hey there", "good morning", "hiya"],
    "book": ["how do i book", "i want an appointment", "book me in", "can i make a booking",
             "schedule a session"],
    "ask_condition": ["can it help my tennis elbow", "does it work for sciatica", "is it good for migraines",
                      "will it help my headaches", "can it help with whiplash"],
    "faq/does_it_hurt": ["does it hurt", "is it painful", "will the needles hurt", "how much does it hurt",
                         "is dry needling painful"],
    "follow_up": ["and after?", "is that normal?", "how come", "and why is that", "and for how long?"],
    "faq/session_length": ["how long is a session", "how long does it take", "session length",
                           "how many minutes is an appointment", "how long will i be there"],
}
LOOKUPS = [{"name": "condition", "elements": ["tennis elbow", "sciatica", "migraines", "headaches",
                                              "whiplash", "plantar fasciitis", "frozen shoulder"]}]
RESPONSES = {"utter_faq/does_it_hurt": [{"text": "A little."}],
             "utter_faq/session_length": [{"text": "About half an hour."}]}


def training_data() -> TrainingData:
    messages = []
    for label, texts in EXAMPLES.items():
        intent, _, topic = label.partition("/")
        for text in texts:
            data = {"text": text, "intent": intent}
            if topic:
                data["intent_response_key"] = label
            messages.append(Message(data=data))
    return TrainingData(training_examples=messages, responses=RESPONSES, lookup_tables=LOOKUPS)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> LinearIntentClassifier:
    storage = LocalModelStorage(tmp_path_factory.mktemp("linear"))
    resource = Resource("linear_classifier")
    context = ExecutionContext(GraphSchema({}), "test")
    LinearIntentClassifier.create({}, storage, resource, context).train(training_data())
    return LinearIntentClassifier.load({}, storage, resource, context)  # what a served model uses


def process(classifier: LinearIntentClassifier, *texts: str) -> List[Message]:
    return classifier.process([Message({"text": text}) for text in texts])


@pytest.mark.parametrize("text, label", [
    ("helo", "greet"),                          # typo
    ("how do I book an appointment", "book"),
    ("does it hurt much?", "faq/does_it_hurt"),
    ("how long is the session", "faq/session_length"),
])
def test_predicts_intent_and_topic(classifier: LinearIntentClassifier, text: str, label: str) -> None:
    [message] = process(classifier, text)
    assert full_label(message.as_dict(only_output_properties=True))[0] == label


def test_a_condition_no_example_names_is_still_a_condition_question(
        classifier: LinearIntentClassifier) -> None:
    # "plantar fasciitis" and "frozen shoulder" appear only in the lookup table.
    for message in process(classifier, "what about plantar fasciitis", "frozen shoulder, any good?"):
        assert message.get("intent")["name"] == "ask_condition", message.get("text")


def test_output_has_rasas_shape(classifier: LinearIntentClassifier) -> None:
    [message] = process(classifier, "is it painful")
    intent, ranking = message.get("intent"), message.get("intent_ranking")
    assert intent == ranking[0] and intent["name"] == "faq"
    assert sorted(i["name"] for i in ranking) == ["ask_condition", "book", "faq", "follow_up", "greet"]
    assert sum(i["confidence"] for i in ranking) == pytest.approx(1.0)
    selector = message.get("response_selector")
    assert selector["all_retrieval_intents"] == ["faq"]
    response, answers = selector["faq"]["response"], selector["faq"]["ranking"]
    assert response == {"responses": [{"text": "A little."}], "confidence": answers[0]["confidence"],
                        "intent_response_key": "faq/does_it_hurt", "utter_action": "utter_faq/does_it_hurt"}
    # Ranked within the retrieval intent, as Rasa's ResponseSelector does.
    assert sum(a["confidence"] for a in answers) == pytest.approx(1.0)
    assert answers[0]["confidence"] > answers[1]["confidence"]


def test_no_topic_is_chosen_when_faq_is_implausible(classifier: LinearIntentClassifier) -> None:
    [message] = process(classifier, "hello")
    faq = next(i["confidence"] for i in message.get("intent_ranking") if i["name"] == "faq")
    assert faq < MIN_PLAUSIBLE
    assert message.get("response_selector") is None


def test_a_follow_up_always_gets_a_topic_ranking(classifier: LinearIntentClassifier) -> None:
    """So that one naming a subject of its own ("and swimming?") can be answered with
    it (actions/follow_up.py), however little `faq` it gets."""
    [message] = process(classifier, "is that normal?")
    ranking = {i["name"]: i["confidence"] for i in message.get("intent_ranking")}
    assert max(ranking, key=ranking.get) == "follow_up" and ranking["faq"] < MIN_PLAUSIBLE
    assert message.get("response_selector")["faq"]["ranking"]


def test_batches_and_empty_text(classifier: LinearIntentClassifier) -> None:
    messages: Any = process(classifier, "hi", "", "book me in")
    assert [m.get("intent", {}).get("name") for m in messages] == ["greet", None, "book"]
    assert process(classifier, "")[0].get("intent") is None


def test_a_message_without_letters_or_digits_is_equally_likely_anything(
        classifier: LinearIntentClassifier) -> None:
    model: Any = classifier._model
    for text in ("🐸", "?!", "🦑🦑 ..."):
        [row] = model.probabilities([text])
        assert np.allclose(row, 1 / len(model.labels))
    assert model.probabilities(["hi"])[0].max() > 0.5


def test_direct_margins_equal_sklearns(classifier: LinearIntentClassifier) -> None:
    model: Any = classifier._model
    texts = [*(t for examples in EXAMPLES.values() for t in examples),
             "helo, can it help my plantar fasciitis??", "zzzz", "", "ÄÖÜ ½ 🙂", "how long " * 50]
    expected = model.svm.decision_function(model.features.transform(model._marked(texts)))
    assert np.allclose([model.margins(text) for text in texts], expected, rtol=0, atol=1e-9)
    # The prepared lookups are not saved with the model; a loaded model rebuilds them.
    copy = pickle.loads(pickle.dumps(model))
    assert copy.features._parts == [] and copy.features._weights[0] is None
    assert np.allclose(copy.margins("is it painful"), model.margins("is it painful"))
