"""Deterministic red-flag detection: emergencies and crisis messages.

The patterns live in ``knowledge/red_flags.yml`` so a clinic can extend them;
see that file for the matching rules. This module has no model and no state:
the same text always gives the same answer, which is what a safety check needs.
It is run as the last NLU component (``assistant/nlu/red_flags.py``), so a red
flag overrides whatever the trained model predicted, and by the tests directly.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, List, Optional, Pattern, Tuple

import yaml

from assistant.knowledge import PROJECT_ROOT

DEFAULT_PATTERNS = PROJECT_ROOT / "knowledge" / "red_flags.yml"
PAYLOAD = re.compile(r"^/[a-z_/]+(\{.*\})?$")
CATEGORIES = ("emergency", "crisis")  # also the intent names they trigger; emergency wins


class RedFlagConfigError(ValueError):
    """The patterns file is malformed; the message names the entry at fault."""


@dataclass(frozen=True)
class RedFlag:
    category: str  # "emergency" or "crisis"
    flag_id: str  # e.g. "chest_pain"


@dataclass(frozen=True)
class _Flag:
    category: str
    flag_id: str
    match: Tuple[Pattern[str], ...]
    ignore: Tuple[Pattern[str], ...]

    def fires_on(self, text: str) -> bool:
        for pattern in self.ignore:
            text = pattern.sub(" ", text)
        return any(pattern.search(text) for pattern in self.match)


def normalise(text: str) -> str:
    """Lower-case, no accents or apostrophes, letters/digits/single spaces only."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"['`]", "", text.lower())
    text = re.sub(r"[^a-z0-9]+", " ", text)
    text = re.sub(r"([a-z])\1{2,}", r"\1\1", text)  # "pleeease" -> "pleease"
    return f" {text.strip()} "


def _compile(expression: Any, where: str) -> Pattern[str]:
    if not isinstance(expression, str) or not expression.strip():
        raise RedFlagConfigError(f"{where}: expected a regular expression")
    try:
        return re.compile(rf"\b(?:{expression})\b")
    except re.error as error:
        raise RedFlagConfigError(f"{where}: {error}") from None


def parse_flags(raw: Any, source: str = "red_flags.yml") -> List[_Flag]:
    if not isinstance(raw, dict) or not set(raw) <= set(CATEGORIES):
        raise RedFlagConfigError(f"{source}: top level must be 'emergency' and/or 'crisis'")
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
            ))
    return flags


class RedFlagDetector:
    def __init__(self, flags: List[_Flag]) -> None:
        self.flags = flags  # emergency flags first: they win over crisis

    @classmethod
    def from_file(cls, path: Path = DEFAULT_PATTERNS) -> RedFlagDetector:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise RedFlagConfigError(f"{path}: {error}") from None
        return cls(parse_flags(raw, path.name))

    def detect(self, text: Optional[str]) -> Optional[RedFlag]:
        if not text or PAYLOAD.match(text):  # our buttons' payloads are never red flags
            return None
        normalised = normalise(text)
        for flag in self.flags:
            if flag.fires_on(normalised):
                return RedFlag(flag.category, flag.flag_id)
        return None


@lru_cache(maxsize=4)
def detector_for(path: Path = DEFAULT_PATTERNS) -> RedFlagDetector:
    return RedFlagDetector.from_file(path)
