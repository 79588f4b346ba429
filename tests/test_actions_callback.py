"""The call-back form's validators and the finish/cancel actions, offline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions import callback as callback_actions
from actions.callback import ActionCancelCallback, request_key
from actions.callback_confirm import ActionAskCallbackConsent
from actions.callback_form import ValidateCallbackForm, parse_contact, valid_name
from assistant.callback_requests.store import CallbackStore
from tests.helpers.callbacks import FILLED, FORM_STARTED, finish, tracker


def validate(slot: str, value: Any, slots: Optional[Dict[str, Any]] = None):
    dispatcher = CollectingDispatcher()
    method = getattr(ValidateCallbackForm(), f"validate_{slot}")
    return method(value, dispatcher, tracker(slots), {}), dispatcher.messages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0412 345 678", ("+61412345678", "phone")),
        ("(02) 9876 5432", ("+61298765432", "phone")),
        ("+61 412 345 678", ("+61412345678", "phone")),
        ("my number is 0412345678 thanks", ("+61412345678", "phone")),
        ("Jane.Doe@Example.COM", ("Jane.Doe@example.com", "email")),
        ("you can email me at sam@mail.example", ("sam@mail.example", "email")),
        ("sam@mail.example is best", ("sam@mail.example", "email")),
        ("email (sam@mail.example), thanks", ("sam@mail.example", "email")),
    ],
)
def test_good_phones_and_emails_are_normalised(text: str, expected: tuple) -> None:
    assert parse_contact(text, "AU") == expected


@pytest.mark.parametrize(
    "text",
    ["", "12345", "0412", "call me maybe", "😀😀😀", "jane@", "a" * 5000, "000", "+1 202 555"],
)
def test_bad_contacts_are_rejected(text: str) -> None:
    assert parse_contact(text, "AU") is None


def test_a_bad_contact_asks_again_with_an_example() -> None:
    result, [message] = validate("callback_contact", "12345")
    assert result == {"callback_contact": None, "callback_bad_contacts": 1}
    assert message["response"] == "utter_invalid_contact" and message["example_phone"]


def test_the_third_bad_contact_in_a_row_offers_to_call_instead_and_ends_the_form() -> None:
    result, [message] = validate("callback_contact", "nope", {"callback_bad_contacts": 2})
    assert result["requested_slot"] is None and result["callback_contact"] is None
    assert message["response"] == "utter_callback_call_instead"


def test_a_good_contact_resets_the_failure_count() -> None:
    result, messages = validate("callback_contact", "0412 345 678", {"callback_bad_contacts": 2})
    assert result == {"callback_contact": "+61412345678", "callback_contact_type": "phone",
                      "callback_bad_contacts": 0}
    assert messages == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Sam", "Sam"), ("  my name is   Priya Patel ", "Priya Patel"), ("Zoë O'Neill", "Zoë O'Neill"),
     ("", None), ("😀", None), ("x" * 5000, None), ("12345", None), ("thanks", None), ("OK.", None),
     ("thank you so much!", None), ("Good morning", None), ("bye now", None), ("g'day", None),
     ("hi there", None), ("thanks so much x", None), ("tysm xx", None),
     ("Sam here", "Sam"), ("Ty", "Ty"), ("Олег", "Олег"), ("李明", "李明"),
     ("Sam\x00\x07", "Sam")],
)
def test_names(text: str, expected: Optional[str]) -> None:
    assert valid_name(text) == expected
    result, messages = validate("callback_name", text)
    assert result == {"callback_name": expected}
    assert bool(messages) == (expected is None)


@pytest.mark.parametrize(
    ("text", "early"),
    [("after 5 is best", {"callback_time": "after 5 is best"}),
     ("tomorrow morning pls", {"callback_time": "tomorrow morning pls"}),
     ("0412345678", {"callback_contact": "+61412345678", "callback_contact_type": "phone",
                     "callback_bad_contacts": 0}),
     ("im on nights so after 2pm is best, 0422 001 998",
      {"callback_time": "im on nights so after 2pm is best", "callback_contact": "+61422001998",
       "callback_contact_type": "phone", "callback_bad_contacts": 0}),
     ("me@x.com", {"callback_contact": "me@x.com", "callback_contact_type": "email",
                   "callback_bad_contacts": 0})],
)
def test_a_time_or_contact_given_for_the_name_is_noted_and_the_name_asked_again(
        text: str, early: Dict[str, Any]) -> None:
    """18 of 28 blind-set turns after a call-back request were a time or a number."""
    result, [message] = validate("callback_name", text)
    assert result == {"callback_name": None, **early}
    assert message["response"] == "utter_callback_noted"


def test_a_time_given_for_the_contact_is_noted_and_not_counted_as_a_bad_contact() -> None:
    result, [message] = validate("callback_contact", "after 3pm if possible", {"callback_bad_contacts": 1})
    assert result == {"callback_contact": None, "callback_time": "after 3pm if possible"}
    assert message["response"] == "utter_callback_noted"
    result, messages = validate("callback_contact", "0412 345 678, mornings")
    assert result["callback_contact"] == "+61412345678" and result["callback_time"] == "mornings"
    assert messages == []


def test_a_name_with_a_time_word_typed_again_is_the_name() -> None:
    """"Sunday Adelaja" reads as a time the first time; typed again it is the name, and
    the time is asked for after all."""
    first, _ = validate("callback_name", "Sunday Adelaja")
    assert first == {"callback_name": None, "callback_time": "Sunday Adelaja"}
    again, messages = validate("callback_name", "Sunday Adelaja", {"callback_time": "Sunday Adelaja"})
    assert again == {"callback_name": "Sunday Adelaja", "callback_time": None} and messages == []


def test_two_numbers_leave_the_time_without_either() -> None:
    result, _ = validate("callback_name", "0412 345 678 or 0499 111 222 after 5")
    assert result["callback_time"] == "or after 5" and result["callback_contact"] == "+61412345678"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Jo, after 5", {"callback_name": "Jo", "callback_time": "after 5"}),
     ("its Priya - tmrw arvo", {"callback_name": "Priya", "callback_time": "tmrw arvo"}),
     ("Sam here, 0412 345 678", {"callback_name": "Sam", "callback_contact": "+61412345678",
                                 "callback_contact_type": "phone", "callback_bad_contacts": 0})],
)
def test_a_name_given_with_a_time_or_contact_keeps_both(text: str, expected: Dict[str, Any]) -> None:
    """"Jo, after 5" had noted the time and asked for the name again."""
    assert validate("callback_name", text) == (expected, [])


@pytest.mark.parametrize("text", ["my number is 0412 345 678", "after five is best", "whenever, thanks"])
def test_an_opening_that_is_not_a_name_is_not_taken_as_one(text: str) -> None:
    result, [message] = validate("callback_name", text)
    assert result["callback_name"] is None and message["response"] == "utter_callback_noted"


@pytest.mark.parametrize("text", ["after five is best", "around noon", "asap pls", "after work",
                                  "midday", "any day really"])
def test_times_in_words_are_times(text: str) -> None:
    assert validate("callback_name", text)[0] == {"callback_name": None, "callback_time": text}


@pytest.mark.parametrize("text", ["0422 00 after 5", "0422 001 99 mornings", "sam@ after 5"])
def test_a_mistyped_contact_with_a_time_is_a_bad_contact_and_never_the_time(text: str) -> None:
    result, [message] = validate("callback_contact", text)
    assert result == {"callback_contact": None, "callback_bad_contacts": 1}
    assert message["response"] == "utter_invalid_contact"
    assert validate("callback_time", text)[0] == {"callback_time": None}


@pytest.mark.parametrize("text", ["Sam", "Priya Patel", "Mo"])
def test_a_name_is_not_mistaken_for_a_time(text: str) -> None:
    assert validate("callback_name", text)[0] == {"callback_name": text}


@pytest.mark.parametrize(("text", "stored"), [("skip", "(none)"), ("No.", "(none)"),
                                              ("sore neck", "sore neck"), ("y" * 301, None)])
def test_reason_is_optional_and_short(text: str, stored: Optional[str]) -> None:
    result, _ = validate("callback_reason", text)
    assert result == {"callback_reason": stored}


def test_time_must_have_content() -> None:
    assert validate("callback_time", "Weekday mornings")[0] == {"callback_time": "Weekday mornings"}
    assert validate("callback_time", "   ")[0] == {"callback_time": None}
    assert validate("callback_time", "t" * 500)[0] == {"callback_time": None}


def test_no_consent_ends_the_form_without_keeping_anything() -> None:
    result, [message] = validate("callback_consent", False)
    assert result == {"callback_consent": False, "requested_slot": None}
    assert message["response"] == "utter_callback_no_consent"


def test_yes_to_the_summary_is_consent_and_send_in_one() -> None:
    assert validate("callback_consent", True) == ({"callback_consent": True}, [])


def test_anything_else_at_the_confirmation_leaves_it_unsent() -> None:
    result, messages = validate("callback_consent", "thanks")
    assert result == {"callback_consent": None} and messages == []


def test_the_summary_asked_again_says_it_is_not_sent_yet() -> None:
    def ask(requested: str) -> List[str]:
        dispatcher = CollectingDispatcher()
        slots = {**FILLED, "callback_consent": None, "requested_slot": requested}
        asyncio.run(ActionAskCallbackConsent().run(dispatcher, tracker(slots), {}))
        return [m["response"] for m in dispatcher.messages]

    assert ask("callback_reason") == ["utter_ask_callback_consent"]  # the first time
    assert ask("callback_consent") == ["utter_callback_not_sent_yet", "utter_ask_callback_consent"]


def test_the_summary_is_one_line_per_field() -> None:
    import yaml
    domain = yaml.safe_load((Path(__file__).parents[1] / "domain.yml").read_text())
    [variant] = domain["responses"]["utter_ask_callback_consent"]
    lines = variant["text"].splitlines()
    for field in ("{callback_name}", "{callback_contact}", "{callback_time}", "{callback_reason}"):
        [line] = [line for line in lines if field in line]
        assert line.count("{") == 1
    assert "callback_confirmed" not in domain["slots"]


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CallbackStore:
    store = CallbackStore(f"sqlite:///{tmp_path / 'requests.db'}")
    monkeypatch.setattr(callback_actions, "current_store", lambda: store)
    return store


def test_a_confirmed_request_is_stored_before_it_is_acknowledged(store: CallbackStore) -> None:
    events, [message] = finish(FILLED)
    [request] = store.requests()
    assert message == {**message, "response": "utter_callback_received", "reference": f"CB-{request.id}"}
    assert (request.name, request.contact, request.preferred_time, request.reason) == (
        "Sam", "+61412345678", "Evenings", None)
    assert request.conversation_id == "visitor-1" and request.status == "open"
    assert ("callback_name", None) in [(e.get("name"), e.get("value")) for e in events]


def test_a_repeated_confirmation_stores_the_request_once(store: CallbackStore) -> None:
    _, [first] = finish(FILLED)
    _, [second] = finish(FILLED)
    assert len(store.requests()) == 1
    assert first["reference"] == second["reference"]


@pytest.mark.parametrize("consent", [False, None])
def test_an_unconfirmed_form_stores_nothing(store: CallbackStore, consent: Optional[bool]) -> None:
    _, messages = finish({**FILLED, "callback_consent": consent})
    assert messages == [] and store.requests() == []


def test_a_store_that_is_down_is_admitted_and_nothing_is_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the database folder should be")
    down = CallbackStore(f"sqlite:///{blocked / 'requests.db'}")
    monkeypatch.setattr(callback_actions, "current_store", lambda: down)
    _, [message] = finish(FILLED)
    assert message["response"] == "utter_callback_not_saved"


def test_the_request_key_depends_on_the_conversation_and_the_form_start() -> None:
    one = request_key(tracker(FILLED, FORM_STARTED))
    assert one == request_key(tracker(FILLED, FORM_STARTED))
    assert one != request_key(tracker(FILLED, FORM_STARTED, sender="visitor-2"))
    later = [{"event": "active_loop", "name": "callback_form", "timestamp": 1700000999.0}]
    assert one != request_key(tracker(FILLED, later))


def test_cancel_deactivates_the_form_and_forgets_the_answers() -> None:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionCancelCallback().run(dispatcher, tracker(FILLED), {}))
    assert dispatcher.messages[0]["response"] == "utter_callback_cancelled"
    assert {"event": "active_loop", "name": None} in [
        {k: e.get(k) for k in ("event", "name")} for e in events
    ]
    assert all(e["value"] in (None, 0) for e in events if e["event"] == "slot")
