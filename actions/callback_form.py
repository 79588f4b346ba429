"""Validation of the call-back form: name, phone or email, time, note, consent.

Consent and send are one step: the last question shows the summary and asks to
send it, and "yes" stores it. Anything else typed there (a question, "thanks")
never leaves the request looking finished: a question is answered, and the
form asks again, starting with "not sent yet" (action_ask_callback_consent).

Phones are validated and normalised (E.164) with `phonenumbers` for the
clinic's region; emails with `email-validator`. Three unusable contact answers
in a row end the form with an offer to call the clinic instead. Nothing typed
here is logged.

Visitors answer "can someone call me back?" with when or where, not who: in the
blind conversation sets, 18 of the 28 turns after a call-back request were "after
5 is best" or a phone number, which the name step refused (a digit) or, worse,
took as the name ("after five is best"). A time or a contact given before it is
asked for is noted (``details_given_early``) and the form asks for what is still
missing.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Dict, Optional, Tuple

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.personal_medical import PERSONAL_MEDICAL_RESPONSES, personal_medical_reply
from assistant.contracts import INTENT_PERSONAL_MEDICAL, INTENT_THANKS, selected_answer
from assistant.settings.clinic import current_clinic

MAX_NAME = 80
MAX_TIME = 120
MAX_REASON = 300
MAX_BAD_CONTACTS = 3
SKIP_WORDS = {"skip", "no", "nope", "none", "nothing", "no thanks", "nothing else", "n/a", "-"}
NO_NOTE = "(none)"
# Courtesies typed at the name step ("ok", "thank you so much") are not a name to ask for.
COURTESY_WORDS = {"ok", "okay", "k", "yes", "yep", "yeah", "sure", "no", "nope", "thanks", "thank", "you",
                  "so", "very", "much", "heaps", "a", "lot", "thx", "ta", "cheers", "hi", "hello",
                  "hey", "bye", "goodbye", "great", "perfect", "cool", "lovely", "awesome", "worries",
                  # greetings: "Good morning", "g'day", "bye now", "hi there"
                  "good", "morning", "afternoon", "evening", "night", "day", "g", "now", "there",
                  "hiya", "howdy", "yo", "mate",
                  # a kiss and text-speak thanks: "thanks so much x", "tysm" (a dev102 writer, round 37)
                  # (not "ty": a name)
                  "x", "xx", "xxx", "xo", "xoxo", "tysm", "thankyou", "thanx", "thnx"}
# Words a short "<name>, <time>" opening never has as its name ("my number is 0412...").
NOT_NAME_WORDS = {"my", "number", "phone", "mobile", "cell", "email", "is", "best", "please", "pls", "call",
                  "ring", "text", "me", "on", "at", "the", "it", "its", "and", "or", "but", "so", "i", "im",
                  "works", "fine", "whenever", "any"}
NAME_SPLIT = re.compile(r"\s*[,;]\s*|\s+-\s+")


def tidy_field(value: Any) -> str:
    """Collapse whitespace and drop control characters."""
    text = "".join(ch for ch in str(value or "") if unicodedata.category(ch)[0] != "C" or ch == " ")
    return " ".join(text.split())


def valid_name(value: Any) -> Optional[str]:
    name = tidy_field(value)
    name = re.sub(r"^(my name is|i am|i'm|it's|its|this is|call me)\s+", "", name, flags=re.I)
    name = re.sub(r"\s+here$", "", name, flags=re.I)  # "Sam here"
    if not name or len(name) > MAX_NAME or not any(ch.isalpha() for ch in name):
        return None
    if is_courtesy(name):  # "Олег" has no Latin words at all, and is a name
        return None
    if sum(ch.isdigit() for ch in name) > 0 or "@" in name:
        return None  # a phone number or email typed in the wrong place
    return name


def parse_contact(value: Any, region: str) -> Optional[Tuple[str, str]]:
    """(normalised contact, "phone" | "email"), or None if it is neither."""
    text = tidy_field(value)
    if not text or len(text) > 320:
        return None
    if "@" in text:  # "sam@mail.example is best" as well as "email me at sam@mail.example"
        for word in text.split():
            if "@" not in word:
                continue
            candidate = word.strip("<>()[],;:.!?'\"")
            try:
                return validate_email(candidate, check_deliverability=False).normalized, "email"
            except EmailNotValidError:
                continue
        return None
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        if phonenumbers.is_valid_number(match.number):
            return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164), "phone"
    return None


# "..., would like to discuss" states a wish; "would it help?" asks.
# After "and", "so", "oh"...: "and what are your hours of a Monday" at the name step had been
# taken as the visitor's name (dev112, round 40).
QUESTION_START = re.compile(
    r"^((and|so|but|also|oh|ok|okay|um|umm|sorry)\s+)*"
    r"(what|whats|what's|how|does|do|is|are|can|could|will|would(?! (like|love|prefer|appreciate)\b)"
    r"|why|when|where|who|should)\b", re.I
)


# When the intent isn't "faq", its best answer is used only this sure (the
# answer guard's threshold in config.yml).
OTHER_INTENT_MIN_ANSWER_CONFIDENCE = 0.4
# Questions about the clinic itself asked in the middle of the form, answered as outside
# it (data/rules/booking.yml), before the form asks again; only this sure of the intent.
FORM_INTENT_REPLIES = {"ask_hours": "utter_hours", "ask_contact": "utter_contact",
                       "ask_location": "utter_location", "ask_availability": "utter_availability"}
INTENT_MIN_CONFIDENCE = 0.5
# ...and a request not shaped as a question ("actually just give me the number") this sure.
REQUEST_MIN_CONFIDENCE = 0.8
# "cheers" at any step: thanked, and the form asks again (it had been refused as a name).
FORM_THANKS_REPLY = "utter_callback_welcome"
# The reply an intent gets inside the form, for the evaluation's labels.
FORM_REPLY_INTENTS = {**{reply: intent for intent, reply in FORM_INTENT_REPLIES.items()},
                      FORM_THANKS_REPLY: INTENT_THANKS,
                      **{reply: INTENT_PERSONAL_MEDICAL for reply in PERSONAL_MEDICAL_RESPONSES}}
SENTENCE_BREAK = re.compile(r"[.!,;:]+\s*")


# When suits the visitor: "after 5", "3pm", "tomorrow morning", "weekdays", "any time".
TIME_PREFERENCE = re.compile(
    r"\b(after|before|from|between|around|by|till|til|until|at)\s+\d{1,2}([:.]\d{2})?\b"
    r"|\b\d{1,2}([:.]\d{2})?\s*(am|pm|o'?clock)\b"
    r"|\b(after|before|from|between|around|by|till|til|until|at)\s+(one|two|three|four|five|six|seven|eight"
    r"|nine|ten|eleven|twelve|noon|midday|lunch|work|school)\b"
    r"|\b(noon|midday|asap|as soon as possible|whenever|any ?day)\b"
    r"|(?<!good )\b(mornings?|afternoons?|arvo|evenings?|nights?|tonight|lunch ?time|any ?time|anytime"
    r"|week ?days?|weekends?|mondays?|tuesdays?|wednesdays?|thursdays?|fridays?|saturdays?"
    r"|sundays?|tomorrow|today|tmrw|tmr)\b",
    re.I,
)


def looks_like_contact(text: str) -> bool:
    """An email or a phone number, perhaps mistyped: never a time of day."""
    return "@" in text or sum(ch.isdigit() for ch in text) >= 6


def details_given_early(value: Any, region: str, requested: str) -> Dict[str, Any]:
    """The contact and time slots a message fills before the form asks for them
    ("after 5 is best, 0422 001 998" when asked for a name); none for the slot being
    asked (its own validator reads it). The time is the message without the contact."""
    text = tidy_field(value)
    found: Dict[str, Any] = {}
    contact = parse_contact(text, region)
    if contact is not None:
        if requested != "callback_contact":
            found.update(callback_contact=contact[0], callback_contact_type=contact[1],
                         callback_bad_contacts=0)
        text = tidy_field(_without_contact(text, region))
    if requested != "callback_time" and TIME_PREFERENCE.search(text) and len(text) <= MAX_TIME \
            and not looks_like_contact(text):  # "0422 00 after 5": a bad number, not a time
        found["callback_time"] = text
    return found


def leading_name(value: Any, region: str) -> Optional[Tuple[str, str]]:
    """(name, the rest) when a message given for the name opens with one: "Jo, after 5",
    "Sam here - 0412 345 678"; None when it doesn't ("after 5 is best", "my number is ...")."""
    text = tidy_field(value)
    if parse_contact(text, region) is not None:
        text = tidy_field(_without_contact(text, region))
    first, *rest = NAME_SPLIT.split(text, maxsplit=1)
    if TIME_PREFERENCE.search(first) or looks_like_question(first):
        return None
    name = valid_name(first)
    if name is None or len(name.split()) > 3:
        return None
    if {word.strip(".!'").lower() for word in name.split()} & NOT_NAME_WORDS:
        return None
    return name, " ".join(rest)


def _without_contact(text: str, region: str) -> str:
    for match in reversed(list(phonenumbers.PhoneNumberMatcher(text, region))):  # offsets stay right
        text = text[:match.start] + text[match.end:]
    return " ".join(word for word in text.split() if "@" not in word).strip(" ,;-")


def is_courtesy(text: str) -> bool:
    """Nothing but courtesies and greetings ("cheers", "thank you so much", "Good morning")."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    return bool(words) and words <= COURTESY_WORDS and text.isascii()


def is_request(text: str, confidence: float) -> bool:
    """A request for the clinic's details that isn't shaped as a question ("just give me
    the number"): a sure intent, longer than a name, and no time or contact in it
    ("whenever you're open is fine" is the time, not a question about the hours)."""
    return (confidence >= REQUEST_MIN_CONFIDENCE and len(text.split()) >= 3
            and not TIME_PREFERENCE.search(text) and not looks_like_contact(text))


def looks_like_question(text: str) -> bool:
    """A question mark, or a sentence that starts like a question ("thanks! do i need...")."""
    if text.rstrip().endswith("?"):
        return True
    return any(QUESTION_START.match(part.strip()) for part in SENTENCE_BREAK.split(text) if part.strip())


def digression_answer(text: str, message: Dict[str, Any], any_intent: bool = False) -> Optional[str]:
    """The reply (an utter action) the form gives instead of taking a message as the
    answer it asked for, or None when the form takes it: a question the model answers
    with an FAQ topic or with the clinic's details (``FORM_INTENT_REPLIES``: "when r u
    open" had been taken as the visitor's name). With ``any_intent`` an FAQ answer counts
    whatever the intent: at the confirmation step "thanks! do i need to bring anything"
    is classified as thanks, but its question still deserves the answer. The
    evaluation of conversations (assistant/quality/sealed.py) asks the same."""
    text = tidy_field(text)
    intent = message.get("intent") or {}
    confidence = float(intent.get("confidence") or 0.0)
    if intent.get("name") == INTENT_THANKS and is_courtesy(text):
        return FORM_THANKS_REPLY  # "cheers": not a name, not a bad contact
    if intent.get("name") in FORM_INTENT_REPLIES and is_request(text, confidence):
        return FORM_INTENT_REPLIES[str(intent["name"])]  # "actually just give me the number"
    question = looks_like_question(text)
    if not question:
        return None
    if intent.get("name") in FORM_INTENT_REPLIES and confidence >= INTENT_MIN_CONFIDENCE:
        return FORM_INTENT_REPLIES[str(intent["name"])]
    if intent.get("name") == INTENT_PERSONAL_MEDICAL and confidence >= INTENT_MIN_CONFIDENCE:
        return personal_medical_reply(text)  # "he's got a pacemaker, is that an issue?" is not a name
    is_faq = intent.get("name") == "faq"
    if not (is_faq or any_intent):
        return None
    selected = selected_answer(message)
    utter_action = selected.get("utter_action")
    if not utter_action:
        return None
    if not is_faq and float(selected.get("confidence") or 0.0) < OTHER_INTENT_MIN_ANSWER_CONFIDENCE:
        return None  # no answer beats a wrong one
    return str(utter_action)


def answer_digression(dispatcher: CollectingDispatcher, tracker: Tracker, value: Any,
                      any_intent: bool = False) -> bool:
    """If the visitor asked an FAQ instead of answering, answer it (the form asks again)."""
    utter_action = digression_answer(str(value or ""), tracker.latest_message or {}, any_intent)
    if utter_action is None:
        return False
    dispatcher.utter_message(response=utter_action)
    return True


def example_phone(region: str) -> str:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return "your mobile number"
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)


class ValidateCallbackForm(FormValidationAction):
    def name(self) -> str:
        return "validate_callback_form"

    def validate_callback_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        if answer_digression(dispatcher, tracker, value):
            return {"callback_name": None}
        early = details_given_early(value, current_clinic().region, "callback_name")
        repeated = early.get("callback_time") is not None and early["callback_time"] == tracker.get_slot(
            "callback_time")
        if early and not repeated:
            opening = leading_name(value, current_clinic().region)
            if opening is not None:  # "Jo, after 5": the name, and the time noted
                if "callback_time" in early:
                    early["callback_time"] = opening[1]
                return {"callback_name": opening[0], **early}
            # "after 5 is best": noted, and the name is asked again
            dispatcher.utter_message(response="utter_callback_noted")
            return {"callback_name": None, **early}
        name = valid_name(value)
        if repeated and name is not None:  # "Sunday Adelaja" typed twice: a name, not a time
            return {"callback_name": name, "callback_time": None}
        if name is None:
            dispatcher.utter_message(response="utter_invalid_name", max_length=MAX_NAME)
        return {"callback_name": name}

    def validate_callback_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        if answer_digression(dispatcher, tracker, value):
            return {"callback_contact": None}
        region = current_clinic().region
        parsed = parse_contact(value, region)
        if parsed is not None:
            contact, kind = parsed
            early = details_given_early(value, region, "callback_contact")
            return {"callback_contact": contact, "callback_contact_type": kind, "callback_bad_contacts": 0,
                    **early}
        early = details_given_early(value, region, "callback_contact")
        if early:  # a time instead of the number: noted, not counted as a bad contact
            dispatcher.utter_message(response="utter_callback_noted")
            return {"callback_contact": None, **early}
        failures = int(tracker.get_slot("callback_bad_contacts") or 0) + 1
        if failures >= MAX_BAD_CONTACTS:
            dispatcher.utter_message(response="utter_callback_call_instead")
            # Ending the form early: action_finish_callback sees it wasn't confirmed.
            return {"callback_contact": None, "callback_bad_contacts": failures, "requested_slot": None}
        dispatcher.utter_message(response="utter_invalid_contact", example_phone=example_phone(region))
        return {"callback_contact": None, "callback_bad_contacts": failures}

    def validate_callback_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        if answer_digression(dispatcher, tracker, value):
            return {"callback_time": None}
        time = tidy_field(value)
        unusable = not time or len(time) > MAX_TIME or not any(ch.isalnum() for ch in time)
        if unusable or looks_like_contact(time):  # a number or email is never stored as the time
            dispatcher.utter_message(response="utter_invalid_time")
            return {"callback_time": None}
        return {"callback_time": time}

    def validate_callback_reason(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        reason = tidy_field(value)
        if reason.lower().strip(".!") in SKIP_WORDS or not reason:
            return {"callback_reason": NO_NOTE}
        if answer_digression(dispatcher, tracker, value):
            return {"callback_reason": None}  # a question, answered; a statement is the note
        if len(reason) > MAX_REASON:
            dispatcher.utter_message(response="utter_invalid_reason", max_length=MAX_REASON)
            return {"callback_reason": None}
        return {"callback_reason": reason}

    def validate_callback_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        if value is True:
            return {"callback_consent": True}
        if value is False:
            dispatcher.utter_message(response="utter_callback_no_consent")
            return {"callback_consent": False, "requested_slot": None}
        # Neither yes nor no: answer a question if there is one; the form then
        # asks again and says the request is not sent yet.
        answer_digression(dispatcher, tracker, value, any_intent=True)
        return {"callback_consent": None}
