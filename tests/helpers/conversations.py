"""Scripted conversations more than one test holds with the stack."""

from __future__ import annotations

from typing import List

QUESTIONS = ["does it hurt?", "what is dry needling", "how long does a session take",
             "is it the same as acupuncture", "how sore will I be afterwards", "can it help my headache",
             "how does it work", "what happens in the first session", "can it help tennis elbow",
             "is it the same as acupuncture?"]


def look_back_script(contact: str) -> List[str]:
    """What the custom actions look back for, one user turn a line: follow-ups
    (one after two messages without a topic), "Did you mean...?" twice in a
    row, a call-back form kept open across all of QUESTIONS (more user turns
    than the history the action server is sent) and then confirmed, one
    cancelled, one closed by an emergency. The call-back is asked for on
    `contact`: one open request per contact, so tests on one stack use their own."""
    return [
        "hi", "does it hurt", "how long will that last?", "is that normal?", "how sore will I be afterwards",
        "thanks", "ok", "is that normal?", "can it help my tennis elbow",
        "what about my knee?", "asdkjh qwe zzz", "Weekday mornings", "Tuesday afternoons",
        "is it safe for me? I have diabetes",
        "/request_callback", "Kim Sample", *QUESTIONS, contact, "Weekday mornings", "skip", "/affirm",
        *QUESTIONS, "/request_callback", "Sam", "stop",
        "/request_callback", "Alex", "my lips have gone blue and I can't get a breath since the needling",
        *QUESTIONS, "and for migraines?", "thanks", "bye",
    ]
