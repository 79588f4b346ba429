"""Phone shorthand spelled out before the intent model reads a message.

Visitors type on phones: "wat abt my lower back", "ok hw much", "y do they hurt
so much", "whats the diff". The intent model's character n-grams catch part of
that, but the sentence embedding (sentence_embeddings.py) reads "hw" and "wat"
as unknown word pieces, and a word n-gram learnt from "how much" says nothing
about "hw much". Spelling the shorthand out, in training and at run time alike,
lets one training phrasing stand for both spellings.

Voice dictation's mishearings of our own words ("dry kneeling") are spelled
right the same way. Only whole words whose meaning in a clinic chat is not in doubt are here. Left
as written: numbers ("2", "4"); every single letter but "u" ("y" and "n" are
also yes and no in the call-back form, "r" and "k" a right knee and K-tape);
abbreviations with a second meaning ("hr" is also HR, "rn" a registered nurse,
"bc" a province, "dn" down or a district nurse as well as dry needling);
contractions without their apostrophe ("im", "whats": spelling them out cost
25 tuned-on conversations when measured).
"""

from __future__ import annotations

import re
from typing import Dict

SHORTHAND: Dict[str, str] = {
    # question words
    "wat": "what", "wot": "what", "wht": "what", "hw": "how", "wen": "when", "whn": "when",
    # pronouns and verbs
    "u": "you", "ur": "your", "shld": "should", "cud": "could", "wud": "would",
    "gonna": "going to", "wanna": "want to",
    # small words
    "abt": "about", "bout": "about", "b4": "before", "cuz": "because", "coz": "because",
    "cos": "because", "thru": "through", "tho": "though", "pls": "please", "plz": "please",
    "thx": "thanks", "thnx": "thanks", "ty": "thanks", "kk": "ok", "ppl": "people",
    "smth": "something", "sth": "something", "diff": "difference",
    # time and appointments
    "tmrw": "tomorrow", "tmr": "tomorrow", "2moro": "tomorrow", "1st": "first",
    "2nd": "second", "3rd": "third", "appt": "appointment", "appts": "appointments",
    "sesh": "session", "wk": "week", "wks": "weeks", "hrs": "hours", "mins": "minutes",
    "yrs": "years",
    # whole phrases
    "idk": "i don't know", "tbh": "to be honest", "ngl": "not going to lie", "nvm": "never mind",
    # voice dictation's mishearings of our own words (a blind set in that style, dev98):
    # only phrases with no other reading in a clinic chat
    "dry kneeling": "dry needling", "a cue puncture": "acupuncture", "acu puncture": "acupuncture",
    "tricker point": "trigger point", "tricker points": "trigger points", "my grains": "my migraines",
    # round 40 (dev112, dictated): "dry needle in" is how a phone hears "dry needling"; the verb
    # ("can physios dry needle in nz") is spelt out the same way in training and at run time;
    # and words run together
    "dry needle in": "dry needling", "trigger pints": "trigger points", "acupuncher": "acupuncture",
    "need les": "needles", "plant are fasciitis": "plantar fasciitis",
    "howmuch": "how much", "howlong": "how long", "howmany": "how many",
}
# An apostrophe, straight or curly, joins a letter to its word: "y'all", "u’s".
_SHORTHAND = re.compile(r"(?<![\w'\u2019])(" + "|".join(map(re.escape, SHORTHAND)) + r")(?![\w'\u2019])",
                        re.IGNORECASE)


def spelled_out(text: str) -> str:
    """The text with each shorthand word replaced by its spelling: "wat abt u" ->
    "what about you". Everything else, case included, stays as written."""
    return _SHORTHAND.sub(lambda match: SHORTHAND[match.group(1).lower()], text)
