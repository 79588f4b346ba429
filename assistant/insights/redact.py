"""Take personal details out of visitors' messages before staff see them in a report.

What is replaced, and how it is found:

* e-mail addresses (a pattern) -> ``[email]``;
* phone numbers: anything `phonenumbers` recognises for the clinic's region,
  plus any run of 6 or more digits however it is spaced or punctuated (a
  partial or foreign number is still personal) -> ``[phone]``;
* names: the values the call-back form collected in the same conversation,
  wherever they appear; a word after "my name is", "I'm", "this is", "call me",
  "it's" and the like when it is not an ordinary word; and any capitalised word
  in the middle of a sentence that is not an ordinary English or clinic word
  -> ``[name]``.

The last two are heuristics: a name typed in lower case with no cue before it,
which is also an ordinary word ("rose", "hope"), stays. That is why the report
shows only messages the bot did not understand, never the call-back form's
answers, and only to the clinic's own staff.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Set

import phonenumbers

from assistant.paths import PROJECT_ROOT

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 6+ digits, possibly separated by spaces, dots, dashes, brackets or a leading +
DIGITS = re.compile(r"\+?\(?\d(?:[\s().-]{0,2}\d){5,}")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
NAME_CUE = re.compile(
    r"\b(?:my name is|my name's|name is|i am|i'm|im|this is|call me|it's|its|ask for|speak to|"
    r"talk to|regards|thanks|cheers|from)\s+((?:[A-Za-z][A-Za-z'-]*)(?:\s+[A-Z][A-Za-z'-]*)?)",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def ordinary_words() -> Set[str]:
    """Words that are not names: the bot's everyday vocabulary, i.e. the words its
    training data and knowledge base use in lower case somewhere (the names in
    the form's examples are only ever capitalised)."""
    words: Set[str] = set(COMMON_WORDS)
    for folder in ("data", "knowledge"):
        for path in (PROJECT_ROOT / folder).rglob("*.yml"):
            words.update(word for word in WORD.findall(path.read_text(encoding="utf-8")) if word.islower())
    return words


def _replace_phones(text: str, region: str) -> str:
    matches = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE)
    for match in reversed(list(matches)):
        text = text[:match.start] + "[phone]" + text[match.end:]
    return DIGITS.sub("[phone]", text)


def _replace_known(text: str, known: Iterable[str]) -> str:
    for value in sorted({v.strip() for v in known if v and len(v.strip()) >= 2}, key=len, reverse=True):
        text = re.sub(re.escape(value), "[name]", text, flags=re.IGNORECASE)
        for part in value.split():  # "Robin" alone, later in the conversation
            if len(part) >= 3 and part.lower() not in ordinary_words():
                text = re.sub(rf"\b{re.escape(part)}\b", "[name]", text, flags=re.IGNORECASE)
    return text


def _replace_cued_names(text: str) -> str:
    def replace(match: re.Match) -> str:
        words = match.group(1).split()
        kept = [w for w in words if w.lower() in ordinary_words()]
        if len(kept) == len(words):
            return match.group(0)
        start = match.start(1) - match.start(0)
        return match.group(0)[:start] + "[name]"

    return NAME_CUE.sub(replace, text)


def _replace_capitalised(text: str) -> str:
    """A capitalised word that is not an ordinary word is taken for a name, even
    at the start of a sentence (a typo there is lost too; privacy comes first)."""
    def replace(match: re.Match) -> str:
        word = match.group(0)
        return "[name]" if word[0].isupper() and word.lower() not in ordinary_words() else word

    return WORD.sub(replace, text)


def redact(text: str, region: str = "AU", known_names: Iterable[str] = ()) -> str:
    text = EMAIL.sub("[email]", text)
    text = _replace_phones(text, region)
    text = _replace_known(text, known_names)
    text = _replace_cued_names(text)
    return _replace_capitalised(text)


# Everyday words a visitor may use that our YAML files may not contain.
_COMMON = """
a about after again all also am an and any are as at back bad be because been before being
best better big but by can cannot could day days did do does doing done dont don't down each
even ever every feel feeling few find fine for from get gets getting give go going good got had
has have having he her here hey hi him his how however i if im i'm in into is it its it's just
keep know last left let like little long look lot lots lot made make many may maybe me mean more
most much must my need never new next no not now of off ok okay old on once one only or other
our out over please pretty quite really right said same saw say see seen she should since so
some something soon still such sure take tell than thank thanks that the their them then there
these they thing things think this those though through time to today told too tried try two
under until up us very want was way we week well went were what when where which while who why
will with without work would yeah yes yet you your yesterday tomorrow morning afternoon evening
night monday tuesday wednesday thursday friday saturday sunday january february march april
june july august september october november december english australia sydney melbourne
brisbane perth adelaide google facebook covid dr mr mrs ms miss
"""
COMMON_WORDS = set(_COMMON.split())
