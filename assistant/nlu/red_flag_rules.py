"""Deterministic red-flag detection: emergencies, crisis messages, and warning
signs after a needling session that need a doctor the same day.

The patterns live in ``knowledge/red_flags.yml`` so a clinic can extend them;
see that file for the matching rules. This module has no model and no state:
the same text always gives the same answer, which is what a safety check needs.

Some signs are only alarming when *reported*: "my lips are swelling since the
session" is an emergency, "can needling make your lips swell?" is a question
that deserves an honest answer, not an ambulance. Flags marked ``report_only``
therefore skip a message framed as a question (``question_frames``) unless it
also carries a report marker (``report_markers``: "since", "now", "i feel",
"my chest is"...). A question with a real report inside it still fires.
Misspelt sign words ("brethe", "sweling", "neddle") are put right first, word by
word, from the file's ``spellings``, so every pattern reads them; so are the
symbols listed there ("🪡 still stuck in my back": the needle emoji is "needle"),
which the normalisation would otherwise drop.
It is run as the last NLU component (``assistant/nlu/red_flags.py``), so a red
flag overrides whatever the trained model predicted, and by the tests directly.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Pattern, Tuple

import yaml

from assistant.paths import PROJECT_ROOT

DEFAULT_PATTERNS = PROJECT_ROOT / "knowledge" / "red_flags.yml"
PAYLOAD = re.compile(r"^/[a-z_/]+(\{.*\})?$")
# Also the intent names they trigger, highest urgency first: the first that fires wins.
CATEGORIES = ("emergency", "crisis", "urgent")
# A message with an emergency and a crisis sign at once ("my pills are lined up and I'll take
# the lot and not wake up") gets one reply with both the emergency number and the crisis
# line: either alone leaves out help the person needs.
EMERGENCY_AND_CRISIS = "emergency_and_crisis"
# Every intent a red flag can set.
INTENTS = (*CATEGORIES, EMERGENCY_AND_CRISIS)
# How urgent each is: an answer at least as urgent as a report needs counts as caught.
URGENCY = {"urgent": 1, "crisis": 2, "emergency": 2, EMERGENCY_AND_CRISIS: 2}
FRAMING_KEYS = ("question_frames", "report_markers", "hypotheticals", "present_markers")
SPELLINGS_KEY = "spellings"
WORD = re.compile(r"^[a-z0-9]+( [a-z0-9]+)*$")
SYMBOL = re.compile(r"^[^\w\s]+$")  # an emoji or another symbol: no letter, digit or space


class RedFlagConfigError(ValueError):
    """The patterns file is malformed; the message names the entry at fault."""


@dataclass(frozen=True)
class RedFlag:
    category: str  # one of INTENTS
    flag_id: str  # e.g. "chest_pain"


@dataclass(frozen=True)
class _Flag:
    category: str
    flag_id: str
    match: Tuple[Pattern[str], ...]
    ignore: Tuple[Pattern[str], ...]
    report_only: bool = False

    def fires_on(self, text: str) -> bool:
        for pattern in self.ignore:
            text = pattern.sub(" ", text)
        text = re.sub(" +", " ", text)  # a blanked phrase leaves one space, as the words around it had
        return any(pattern.search(text) for pattern in self.match)


def is_payload_or_empty(text: Optional[str]) -> bool:
    """Our buttons' payloads ("/faq/does_it_hurt") are never red flags; Rasa strips them first."""
    return not text or not text.strip() or bool(PAYLOAD.match(text.strip()))


def normalise(text: str) -> str:
    """Lower-case, no accents or apostrophes, letters/digits/single spaces only."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"['`]", "", text.lower())
    text = re.sub(r"[^a-z0-9]+", " ", text)
    text = re.sub(r"([a-z])\1{2,}", r"\1\1", text)  # "pleeease" -> "pleease"
    return f" {text.strip()} "


def _compile(expression: Any, where: str, bounded: bool = True) -> Pattern[str]:
    if not isinstance(expression, str) or not expression.strip():
        raise RedFlagConfigError(f"{where}: expected a regular expression")
    if bounded:
        # The normalised text starts with a space, where a leading \b can never
        # match: an entry anchored at the start ("^ has anyone...") gets no \b
        # there, and ends on "not followed by a letter" rather than \b, so that an
        # entry made only of look-aheads (which matches nothing at position 0,
        # before that space) can still match.
        expression = (rf"(?:{expression})(?!\w)" if expression.startswith("^")
                      else rf"\b(?:{expression})\b")
    try:
        return re.compile(expression)
    except re.error as error:
        raise RedFlagConfigError(f"{where}: {error}") from None


@dataclass(frozen=True)
class Framing:
    """Tells a question about a risk from a report of it (see the module docstring)."""

    question_frames: Tuple[Pattern[str], ...] = ()
    report_markers: Tuple[Pattern[str], ...] = ()
    # "say I felt...", "if my arm went numb...": a supposition, even in the first
    # person, unless something is happening now (`present_markers`).
    hypotheticals: Tuple[Pattern[str], ...] = ()
    present_markers: Tuple[Pattern[str], ...] = ()

    def is_question_only(self, text: str) -> bool:
        if any(p.search(text) for p in self.hypotheticals):
            return not any(p.search(text) for p in self.present_markers)
        return (any(p.search(text) for p in self.question_frames)
                and not any(p.search(text) for p in self.report_markers))


def _check_top_level(raw: Any, source: str) -> None:
    allowed = (*CATEGORIES, *FRAMING_KEYS, SPELLINGS_KEY)
    if not isinstance(raw, dict) or not set(raw) & set(CATEGORIES):
        raise RedFlagConfigError(f"{source}: top level must list flags under {', '.join(CATEGORIES)}")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise RedFlagConfigError(f"{source}: unknown top-level key '{unknown[0]}' "
                                 f"(expected {', '.join(allowed)})")


def parse_framing(raw: Any, source: str = "red_flags.yml") -> Framing:
    def patterns(key: str) -> Tuple[Pattern[str], ...]:
        entries = raw.get(key) or []
        if not isinstance(entries, list):
            raise RedFlagConfigError(f"{source}: '{key}' must be a list of regular expressions")
        return tuple(_compile(e, f"{source}: {key}[{i}]", bounded=False) for i, e in enumerate(entries))
    return Framing(*(patterns(key) for key in FRAMING_KEYS))


def parse_spellings(raw: Any, source: str = "red_flags.yml") -> Dict[str, str]:
    """`spellings: {breath: [breth, brethe]}` -> {"breth": "breath", "brethe": "breath"}.
    A misspelling may also be a symbol (`needle: [🪡]`), read before the normalisation."""
    entries = raw.get(SPELLINGS_KEY) or {}
    if not isinstance(entries, dict):
        raise RedFlagConfigError(f"{source}: '{SPELLINGS_KEY}' must map a word to its misspellings")
    spellings: Dict[str, str] = {}
    for word, wrong in entries.items():
        where = f"{source}: {SPELLINGS_KEY}: {word}"
        if not isinstance(word, str) or not WORD.match(word) or not isinstance(wrong, list) or not wrong:
            raise RedFlagConfigError(f"{where}: expected a lower-case word and a list of its misspellings")
        for misspelt in wrong:
            if not isinstance(misspelt, str) or not (WORD.match(misspelt) and " " not in misspelt
                                                     or SYMBOL.match(misspelt)):
                raise RedFlagConfigError(f"{where}: '{misspelt}' must be one lower-case word or a symbol")
            if misspelt in spellings or misspelt in entries:
                raise RedFlagConfigError(f"{where}: '{misspelt}' is listed twice or is itself a word here")
            spellings[misspelt] = word
    return spellings


def with_symbols_as_words(text: str, symbols: Dict[str, str]) -> str:
    """The symbols ``spellings`` lists as words ("🪡 stuck" -> " needle  stuck")."""
    for symbol, word in symbols.items():
        if symbol in text:
            text = text.replace(symbol, f" {word} ")
    return text


def respell(normalised: str, spellings: Dict[str, str]) -> str:
    """Put misspelt words right in normalised text (" i cant brethe " -> " i cant breathe ")."""
    if not spellings:
        return normalised
    return " " + " ".join(spellings.get(word, word) for word in normalised.split()) + " "


def parse_flags(raw: Any, source: str = "red_flags.yml") -> List[_Flag]:
    _check_top_level(raw, source)
    flags = []
    for category in CATEGORIES:
        for index, entry in enumerate(raw.get(category) or []):
            flag_id = entry.get("id") if isinstance(entry, dict) else None
            where = f"{source}: {category}[{index}]" + (f" ({flag_id})" if flag_id else "")
            if not flag_id or not entry.get("match"):
                raise RedFlagConfigError(f"{where}: needs an 'id' and a 'match' list")
            flags.append(_Flag(
                category=category,
                flag_id=str(flag_id),
                match=tuple(_compile(e, f"{where} match") for e in entry["match"]),
                ignore=tuple(_compile(e, f"{where} ignore") for e in entry.get("ignore") or []),
                report_only=bool(entry.get("report_only", False)),
            ))
    return flags


class _NoDuplicateKeys(yaml.SafeLoader):
    """YAML keeps the last of two equal keys without a word: a flag with two
    `ignore:` lists would silently lose the first. Refuse it instead."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.YAMLError(f"'{key}' appears twice in one entry (line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep)


class RedFlagDetector:
    def __init__(self, flags: List[_Flag], framing: Framing = Framing(),
                 spellings: Optional[Dict[str, str]] = None) -> None:
        self.flags = flags  # in CATEGORIES order: the most urgent wins
        self.crisis_flags = [flag for flag in flags if flag.category == "crisis"]  # read after an emergency
        self.framing = framing
        self.spellings = spellings or {}
        self.symbols = {symbol: word for symbol, word in self.spellings.items() if SYMBOL.match(symbol)}

    @classmethod
    def from_file(cls, path: Path = DEFAULT_PATTERNS) -> RedFlagDetector:
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoDuplicateKeys)
        except (OSError, yaml.YAMLError) as error:
            raise RedFlagConfigError(f"{path}: {error}") from None
        name = path.name
        return cls(parse_flags(raw, name), parse_framing(raw, name), parse_spellings(raw, name))

    def detect(self, text: Optional[str]) -> Optional[RedFlag]:
        if text is None or is_payload_or_empty(text):
            return None
        normalised = self.normalised(text)
        question_only = self.framing.is_question_only(normalised)
        first = self._first(normalised, question_only, self.flags)
        if first is None or first.category != "emergency":
            return first
        crisis = self._first(normalised, question_only, self.crisis_flags)
        if crisis is None:
            return first
        return RedFlag(EMERGENCY_AND_CRISIS, f"{first.flag_id}+{crisis.flag_id}")

    def normalised(self, text: str) -> str:
        """The text every pattern reads: symbols and misspellings put right, normalised."""
        return respell(normalise(with_symbols_as_words(text, self.symbols)), self.spellings)

    @staticmethod
    def _first(normalised: str, question_only: bool, flags: List[_Flag]) -> Optional[RedFlag]:
        for flag in flags:
            if flag.report_only and question_only:
                continue
            if flag.fires_on(normalised):
                return RedFlag(flag.category, flag.flag_id)
        return None


@lru_cache(maxsize=4)
def detector_for(path: Path = DEFAULT_PATTERNS) -> RedFlagDetector:
    return RedFlagDetector.from_file(path)
