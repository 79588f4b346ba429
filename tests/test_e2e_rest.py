"""End to end: the real Rasa server + action server on free ports, over the REST webhook."""

from __future__ import annotations

import sqlite3
import urllib.request
import uuid
from typing import Any

from assistant.kb.knowledge import KnowledgeBase, read_more_buttons
from tests.helpers.rest import filled, say, texts


def test_a_short_conversation(stack: Any, kb: KnowledgeBase) -> None:
    sender = f"e2e-{uuid.uuid4().hex[:8]}"

    greeting = say(stack, sender, "hello")
    assert "not personal medical advice" in texts(greeting)[0]
    assert {b["payload"] for b in greeting[0]["buttons"]} >= {"/faq/what_is"}

    answer = say(stack, sender, "does dry needling hurt?")
    assert texts(answer) == [kb.topics["does_it_hurt"].answer]
    # its related topics, then "Read more" on the clinic's page for the article
    assert [b["payload"] for b in answer[0]["buttons"]] == [
        kb.topics[t].payload for t in kb.topics["does_it_hurt"].related
    ] + [b["payload"] for b in read_more_buttons(kb, kb.topics["does_it_hurt"].sources)]

    # clicking a related-topic button answers that topic
    followed = say(stack, sender, answer[0]["buttons"][0]["payload"])
    first_related = kb.topics["does_it_hurt"].related[0]
    assert texts(followed) == [filled(kb.topics[first_related].answer)]

    # a condition-specific answer comes from the action server
    assert texts(say(stack, sender, "can it help my tennis elbow?")) == [
        kb.conditions["tennis_elbow"].answer
    ]
    uncovered = texts(say(stack, sender, "would it help my asthma"))
    assert "don't cover asthma" in uncovered[0]


def test_the_conversation_is_stored_in_the_sqlite_tracker_store(stack: Any) -> None:
    sender = f"store-{uuid.uuid4().hex[:8]}"
    say(stack, sender, "how long is a session")
    with sqlite3.connect(stack.settings.tracker_db) as db:
        rows = db.execute(
            "SELECT type_name FROM events WHERE sender_id = ?", (sender,)
        ).fetchall()
    kinds = [row[0] for row in rows]
    assert "user" in kinds and "bot" in kinds


def test_a_personal_medical_question_gets_the_reply_for_its_case(stack: Any) -> None:
    sender = f"e2e-{uuid.uuid4().hex[:8]}"
    [child] = say(stack, sender, "my son is 9 and has eczema, is dry needling ok for him")
    assert "your child's own health" in child["text"] and "GP" in child["text"]
    [device] = say(stack, f"{sender}-2", "i have a pacemaker, can i have dry needling")
    assert "pacemaker" in device["text"] and "it's safe" not in device["text"].lower()


def test_is_it_safe_on_its_own_gets_the_side_effects_answer(stack: Any, kb: KnowledgeBase) -> None:
    reply = " ".join(texts(say(stack, f"e2e-{uuid.uuid4().hex[:8]}", "is it safe?")))
    assert reply.startswith(filled(kb.topics["side_effects"].answer)), reply


def test_the_root_says_the_server_runs_without_naming_rasas_version(stack: Any) -> None:
    """Stock Rasa answers "Hello from Rasa: 3.6.x": a free hint for an attacker."""
    from assistant.rasa_server.hardening import ROOT_TEXT

    with urllib.request.urlopen(stack.url + "/", timeout=30) as response:
        body = response.read().decode()
    assert body == ROOT_TEXT and "Rasa" not in body and "3.6" not in body
