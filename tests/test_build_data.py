"""The generated training data is up to date and consistent with the knowledge base."""

from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List

import yaml

from assistant.kb.build_data import generated_files, render_responses, stale_files
from assistant.kb.knowledge import KnowledgeBase, read_more_buttons
from assistant.paths import PROJECT_ROOT


def test_generated_files_are_not_stale(kb: KnowledgeBase) -> None:
    stale = [str(p.relative_to(PROJECT_ROOT)) for p in stale_files(kb)]
    assert not stale, f"run `make data` and commit: {stale}"


def test_each_topic_has_a_retrieval_intent_and_a_response(kb: KnowledgeBase) -> None:
    files = generated_files(kb)
    nlu = yaml.safe_load(next(v for k, v in files.items() if k.name == "faq.yml" and "nlu" in k.parts))
    intents = {block["intent"] for block in nlu["nlu"]}
    responses = yaml.safe_load(render_responses(kb))["responses"]
    for topic in kb.topics.values():
        assert f"faq/{topic.id}" in intents
        [response] = responses[f"utter_faq/{topic.id}"]
        assert response["text"] == topic.answer
        assert [b["payload"] for b in response["buttons"]] == [
            f"/faq/{t}" for t in topic.related] + [b["payload"] for b in read_more_buttons(kb, topic.sources)]
    for subject in kb.subjects.values():
        assert f"faq/{subject.id}" in intents
        [response] = responses[f"utter_faq/{subject.id}"]
        assert response["text"].startswith(subject.reply)
        assert "{clinic_phone}" in response["text"] and "{clinic_booking_url}" in response["text"]


def _payloads(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "payload" in node:
            yield node["payload"]
        for value in node.values():
            yield from _payloads(value)
    elif isinstance(node, list):
        for value in node:
            yield from _payloads(value)


def test_every_topic_button_in_the_domain_points_at_a_real_topic(kb: KnowledgeBase) -> None:
    domain: Dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())
    topic_payloads: List[str] = [p for p in _payloads(domain["responses"]) if p.startswith("/faq/")]
    assert topic_payloads, "the greeting and help menu should offer topic buttons"
    for payload in topic_payloads:
        assert re.fullmatch(r"/faq/\w+", payload) and payload[5:] in kb.topics, payload
