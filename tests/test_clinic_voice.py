"""The clinic's voice (issue 19): answers speak as the clinic, show where they
come from through a "Read more" link, use the region's words, and fit the
personal medical case they answer."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.conditions import answer_condition
from actions.personal_medical import (
    ActionPersonalMedical,
    is_bare_safety_question,
    personal_medical_case,
    personal_medical_response,
)
from assistant.kb.build_data import render_responses
from assistant.kb.knowledge import (
    READ_MORE,
    KnowledgeBase,
    KnowledgeError,
    load_knowledge,
)
from assistant.kb.readability import patient_answers
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import REGIONS_FILE, parse_clinic

DOMAIN = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())
RULES = (PROJECT_ROOT / "data" / "rules" / "fallback.yml").read_text()


def _shipped_clinic(**changes: Any) -> Dict[str, Any]:
    raw = yaml.safe_load((PROJECT_ROOT / "clinic.yml").read_text())
    raw.update(changes)
    return raw


# ---- "Read more" -------------------------------------------------------------

def test_an_answer_whose_source_has_a_page_links_to_it_and_keeps_its_topics(kb: KnowledgeBase) -> None:
    responses = yaml.safe_load(render_responses(kb, {}))["responses"]
    topic = kb.topics["what_is"]
    buttons = responses["utter_faq/what_is"][0]["buttons"]
    assert [b["payload"] for b in buttons[:-1]] == [f"/faq/{t}" for t in topic.related]
    page = next(kb.sources[s].url for s in topic.sources if kb.sources[s].url)
    assert buttons[-1] == {"title": READ_MORE, "payload": page}
    assert page.startswith("https://")


def test_without_a_page_there_is_no_read_more(tmp_path: Path) -> None:
    directory = _kb_copy(tmp_path)
    path = directory / "sources.yml"
    data = yaml.safe_load(path.read_text())
    for source in data["sources"].values():
        source.pop("url", None)
    path.write_text(yaml.safe_dump(data))
    responses = yaml.safe_load(render_responses(load_knowledge(directory), {}))["responses"]
    assert all(b["title"] != READ_MORE for r in responses.values() for b in r[0]["buttons"])


def test_a_source_page_must_be_an_https_url(tmp_path: Path) -> None:
    directory = _kb_copy(tmp_path)
    path = directory / "sources.yml"
    data = yaml.safe_load(path.read_text())
    data["sources"]["needling_faq"]["url"] = "www.clinic.example/faq"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(KnowledgeError, match=r"sources.yml: source 'needling_faq': 'url' must be"):
        load_knowledge(directory)


def test_a_condition_answer_carries_the_link_too(kb: KnowledgeBase) -> None:
    dispatcher = CollectingDispatcher()
    answer_condition(dispatcher, kb, kb.conditions["sciatica"])
    [message] = dispatcher.messages
    assert message["buttons"][-1]["title"] == READ_MORE


def _kb_copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(PROJECT_ROOT / "knowledge", target)
    return target


# ---- the region's words ------------------------------------------------------

def test_every_region_names_its_doctor_and_its_cover() -> None:
    regions = yaml.safe_load(REGIONS_FILE.read_text())
    for code, region in regions.items():
        assert region.get("doctor") and region.get("insurer"), code


@pytest.mark.parametrize(("region", "phone", "doctor", "insurer"), [
    ("AU", "(02) 5550 1234", "GP", "health fund"),
    ("US", "(201) 555-0123", "doctor", "insurance company"),
    ("CA", "(613) 555-0123", "family physician", "insurance plan"),
])
def test_the_region_words_reach_replies_as_slots(region: str, phone: str, doctor: str,
                                                 insurer: str) -> None:
    clinic = parse_clinic(_shipped_clinic(region=region, phone=phone,
                                          timezone="America/New_York" if region != "AU"
                                          else "Australia/Sydney"))
    slots = clinic.slots()
    assert slots["region_doctor"] == doctor and slots["region_insurer"] == insurer
    for name in slots:
        assert name in DOMAIN["slots"], name


def test_no_answer_hard_codes_australian_words(kb: KnowledgeBase) -> None:
    local = re.compile(r"\b(GP|GPs|health funds?|Medicare)\b")
    found = [a.where for a in patient_answers(kb) if local.search(a.text)]
    assert not found, found
    assert any("{region_doctor}" in a.text for a in patient_answers(kb))
    assert "{region_insurer}" in kb.subjects["insurance"].reply


# ---- personal medical questions ----------------------------------------------

@pytest.mark.parametrize(("text", "case"), [
    ("i'm pregnant, can i have dry needling", "pregnancy"),
    ("im 20 weeks along is needling ok", "pregnancy"),
    ("can my 12 year old have dry needling for her knee", "child"),
    ("is it ok for my son, he plays footy", "child"),
    ("my daughter is 15yo, can she get it", "child"),
    ("i have a pacemaker, can i get dry needling", "device"),
    ("i take blood thinners is it safe for me", "medicines"),
    ("im on warfarin", "medicines"),
    ("im 45 years old with diabetes is it ok for me", None),
    ("is dry needling safe for me", None),
])
def test_the_case_is_chosen_from_the_words(text: str, case: str | None) -> None:
    assert personal_medical_case(text) == case
    expected = f"utter_personal_medical_{case}" if case else "utter_personal_medical"
    assert personal_medical_response(text) == expected


@pytest.mark.parametrize(("text", "bare"), [
    ("is it safe", True), ("Is it safe?", True), ("so is it actually safe tho", True),
    ("hmm ok, is dry needling really safe", True),
    ("is it safe for me", False), ("is it safe if im pregnant", False),
    ("is it safe for elderly people", False), ("i take blood thinners is it safe", False),
])
def test_is_it_safe_on_its_own_asks_about_the_treatment(text: str, bare: bool) -> None:
    assert is_bare_safety_question(text) is bare
    dispatcher = CollectingDispatcher()
    track = Tracker.from_dict({"sender_id": "v", "slots": {}, "latest_message": {"text": text},
                               "events": [], "paused": False, "latest_event_time": None,
                               "followup_action": None, "active_loop": {}, "latest_action_name": None})
    events = asyncio.run(ActionPersonalMedical().run(dispatcher, track, {}))
    [message] = dispatcher.messages
    if bare:
        assert message["response"] == "utter_faq/side_effects"
        assert events == [{"event": "slot", "timestamp": None, "name": "last_topic", "value": "side_effects"}]
    else:
        assert message["response"].startswith("utter_personal_medical") and events == []


def test_every_case_has_its_own_reply_and_none_says_it_is_safe() -> None:
    responses = DOMAIN["responses"]
    texts: List[str] = []
    for case in ("pregnancy", "child", "device", "medicines", None):
        name = f"utter_personal_medical_{case}" if case else "utter_personal_medical"
        [variant] = responses[name]
        text = variant["text"]
        texts.append(text)
        assert "depends on" in text and "{clinic_phone}" in text, name
        assert not re.search(r"\b(it'?s|it is) safe\b", text.lower()), name
        assert variant["buttons"], name
    assert len(set(texts)) == len(texts)


def test_the_intent_stays_and_the_action_chooses() -> None:
    assert "ask_personal_medical" in DOMAIN["intents"]
    assert "action_personal_medical" in DOMAIN["actions"]
    assert "- intent: ask_personal_medical\n  - action: action_personal_medical" in RULES
