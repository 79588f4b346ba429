"""End to end: hand-off and a complete call-back request through the REST webhook."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Dict, List

import pytest

from assistant.callback_requests import cli as requests_cli
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import load_clinic
from tests.helpers.rest import say, texts

CLINIC = load_clinic(PROJECT_ROOT / "clinic.yml")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_wanting_to_start_offers_call_book_and_call_back(stack: Any) -> None:
    [reply] = say(stack, f"handoff-{uuid.uuid4().hex[:6]}", "how do i get started?")
    assert CLINIC.phone in reply["text"] and CLINIC.booking_url in reply["text"]
    assert [b["payload"] for b in reply["buttons"]] == [
        CLINIC.phone_link, CLINIC.booking_url, "/request_callback"
    ]


@pytest.mark.parametrize(
    "question",
    ["what's your phone number", "can i speak to a person", "any appointments free this week",
     "when are you open", "where are you located", "how much does it cost",
     "is it covered by my health fund", "do i need a referral", "i want to book"],
)
def test_every_hand_off_reply_carries_the_configured_phone_and_booking_link(
    stack: Any, question: str
) -> None:
    replies = say(stack, f"handoffs-{uuid.uuid4().hex[:6]}", question)
    payloads = [b["payload"] for r in replies for b in r.get("buttons", [])]
    assert payloads == [CLINIC.phone_link, CLINIC.booking_url, "/request_callback"], replies
    # the text carries them too, for channels without buttons
    text = " ".join(texts(replies))
    assert CLINIC.phone in text and CLINIC.booking_url in text


@pytest.mark.parametrize("question", ["how much does it cost", "is it covered by my health fund"])
def test_price_and_insurance_are_not_invented(stack: Any, question: str) -> None:
    [reply] = say(stack, f"price-{uuid.uuid4().hex[:6]}", question)
    assert "don't" in reply["text"] and CLINIC.phone in reply["text"]
    assert "$" not in reply["text"]


def test_a_call_back_request_is_completed_stored_listed_and_delivered(
    stack: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    webhook.status = 503  # the clinic's system is down while the visitor confirms
    sender = f"callback-{uuid.uuid4().hex[:6]}"
    assert "What name" in texts(say(stack, sender, "/request_callback"))[0]
    assert "phone number" in texts(say(stack, sender, "Robin Example"))[0]
    # a question in the middle is answered, then the form carries on
    digression = texts(say(stack, sender, "does it hurt?"))
    assert "mildly uncomfortable" in digression[0] and "phone number" in digression[-1]
    assert "invalid" not in " ".join(texts(say(stack, sender, "0412 345 678"))).lower()
    say(stack, sender, "Weekday mornings")
    # consent and send are one step: the summary, one line per field, asks to send it
    summary = texts(say(stack, sender, "skip"))[0]
    assert "Shall I send it" in summary
    assert "Name: Robin Example\n" in summary and "Contact: +61412345678\n" in summary
    # a question there is answered, and the bot says plainly it isn't sent yet
    again = texts(say(stack, sender, "thanks! how long is a session"))
    assert "30 minutes" in again[0], again
    assert "NOT sent yet" in again[-2] and "Shall I send it" in again[-1], again
    started = time.monotonic()
    done = texts(say(stack, sender, "/affirm"))[0]
    assert "saved (reference CB-" in done
    reference = done.split("reference ")[1].split(")")[0]
    # ...and the conversation is not held up by it
    assert time.monotonic() - started < 5

    def sent(attempts: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        return [a for a in attempts if a["body"]["reference"] == reference]

    wait_for(lambda: sent(webhook.attempts()), "a first delivery attempt")
    webhook.status = 200
    wait_for(lambda: sent(webhook.accepted()), "delivery after the webhook came back", timeout=30)
    time.sleep(1.5)  # a few more notifier passes: nothing is sent twice
    [delivered] = sent(webhook.accepted())
    assert delivered["body"]["name"] == "Robin Example" and delivered["key"]
    assert len(sent(webhook.attempts())) >= 2  # it was really retried...
    assert {a["key"] for a in sent(webhook.attempts())} == {delivered["key"]}  # ...as the same request

    monkeypatch.setenv("REQUESTS_DB_URL", stack.settings.extra_env["REQUESTS_DB_URL"])
    assert requests_cli.main([]) == 0
    listing = capsys.readouterr().out
    assert "Robin Example" in listing and "0412 345 678" in listing  # national format (issue 18)
    assert listing.count("Robin Example") == 1


def test_thanks_at_the_confirmation_does_not_look_finished(stack: Any) -> None:
    sender = f"thanks-{uuid.uuid4().hex[:6]}"
    for answer in ("/request_callback", "Kim", "0412 345 678", "Evenings"):
        say(stack, sender, answer)
    assert "Shall I send it" in texts(say(stack, sender, "no thanks"))[0]  # the note skipped
    again = texts(say(stack, sender, "thanks!"))  # thanked, then told it is not sent
    assert again[0] == "You're welcome." and "NOT sent yet" in again[1], again
    assert "Shall I send it" in again[-1], again
    assert "haven't kept your details" in texts(say(stack, sender, "/deny"))[0]


def test_cancel_in_the_middle_of_the_form(stack: Any) -> None:
    sender = f"cancel-{uuid.uuid4().hex[:6]}"
    say(stack, sender, "can someone call me back")
    say(stack, sender, "Kim")
    assert "cancelled" in texts(say(stack, sender, "cancel"))[0]
    # after cancelling, the bot answers questions normally again
    assert "30 minutes" in texts(say(stack, sender, "how long is a session"))[0]


def test_at_the_note_a_statement_is_the_note_and_a_question_is_answered(stack: Any) -> None:
    """'Stiff neck after a long drive...' reads like the FAQ about driving after a
    session; at the note step it is the note, not a question to answer."""
    sender = f"note-{uuid.uuid4().hex[:6]}"
    for answer in ("/request_callback", "Kim", "0412 000 731", "Evenings"):  # a contact no other test uses
        say(stack, sender, answer)
    asked_again = texts(say(stack, sender, "does it hurt?"))
    assert "mildly uncomfortable" in asked_again[0] and "Anything you'd like" in asked_again[-1], asked_again
    assert len(asked_again) == 2, asked_again  # answered once (by the validator), then asked again
    note = "Stiff neck after a long drive, would like to discuss"
    [summary] = texts(say(stack, sender, note))
    assert "Shall I send it" in summary and f"Note: {note}" in summary, summary
    assert "saved (reference CB-" in texts(say(stack, sender, "/affirm"))[0]


def test_a_time_and_number_given_first_are_kept_and_a_question_about_the_clinic_is_answered(
        stack: Any) -> None:
    """Asked for a name, visitors give when and where to call, or ask the opening hours:
    neither becomes the name, and what they gave is not asked for again."""
    sender = f"early-{uuid.uuid4().hex[:6]}"
    say(stack, sender, "can someone call me back")
    noted = texts(say(stack, sender, "after 5 is best, 0412 000 732"))
    assert "noted" in noted[0] and "What name" in noted[-1], noted
    hours = texts(say(stack, sender, "when are you open?"))
    assert CLINIC.phone in hours[0] and "What name" in hours[-1], hours
    assert "Anything you'd like them to know" in texts(say(stack, sender, "Kim"))[-1]  # contact, time: known
    summary = texts(say(stack, sender, "skip"))[0]
    assert "Name: Kim\n" in summary and "Contact: +61412000732\n" in summary
    assert "Best time: after 5 is best\n" in summary
    assert "haven't kept your details" in texts(say(stack, sender, "/deny"))[0]


def test_a_personal_medical_question_in_the_form_is_answered_not_taken_as_the_name(stack: Any) -> None:
    """A carer asks about her husband's pacemaker after asking for a call back: the
    therapist reply, and the form asks for the name again."""
    sender = f"device-{uuid.uuid4().hex[:6]}"
    say(stack, sender, "I'd like a call back about needling for my husband please")
    replies = texts(say(stack, sender, "He's got a pacemaker, is that an issue?"))
    assert "pacemaker or another implant" in replies[0] and "What name" in replies[-1], replies
    assert "best phone number to reach you on" in texts(say(stack, sender, "Jo"))[-1]
