"""The chat widget's settings, served by the bot so the embed is one tag.

The widget fetches ``GET /webchat/settings.json`` when it starts: its title,
welcome text, the clinic's phone number and emergency number (from clinic.yml,
so the embed can't go stale when they change), its colours and the starter
questions on its welcome screen. A ``data-`` attribute on the script tag still
overrides any of them.

clinic.yml's optional ``widget`` section sets the widget's own values::

    widget:
      title: Ask about dry needling
      welcome: Hi! ...
      accent: "#0b5563"          # buttons and header; text on it: accent_text
      accent_text: "#ffffff"
      starters: [what_is, does_it_hurt, session_length]   # topic ids, at most 4
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from assistant.kb.knowledge import KnowledgeBase, topic_payload

SECTION = "widget"
MAX_STARTERS = 4
MAX_TEXT = 300
DEFAULT_TITLE = "Ask about dry needling"
DEFAULT_STARTERS = ("what_is", "does_it_hurt", "session_length", "soreness_after")
COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
KEYS = ("title", "welcome", "accent", "accent_text", "starters")


class WidgetConfigError(ValueError):
    """The ``widget`` section of clinic.yml is invalid; the message names the key."""


@dataclass(frozen=True)
class WidgetSettings:
    title: str = DEFAULT_TITLE
    welcome: Optional[str] = None  # None: a welcome naming the clinic
    accent: str = "#0b5563"
    accent_text: str = "#ffffff"
    starters: Tuple[str, ...] = DEFAULT_STARTERS  # FAQ topic ids

    def welcome_for(self, clinic_name: str) -> str:
        return self.welcome or (
            f"Hi! I can answer questions about dry needling at {clinic_name}. My answers are "
            "general information, not medical advice. What would you like to know?")


def _fail(key: str, problem: str) -> WidgetConfigError:
    return WidgetConfigError(f"clinic config: '{SECTION}.{key}' {problem}")


def _text(raw: Dict[str, Any], key: str) -> Optional[str]:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise _fail(key, f"must be text of 1 to {MAX_TEXT} characters")
    return " ".join(value.split())


def parse_widget(raw: Any, kb: KnowledgeBase) -> WidgetSettings:
    """Validate clinic.yml's ``widget`` section (absent: the defaults)."""
    if raw is None:
        return WidgetSettings()
    if not isinstance(raw, dict):
        raise WidgetConfigError(f"clinic config: '{SECTION}' must be a mapping ({', '.join(KEYS)})")
    unknown = sorted(str(key) for key in raw if key not in KEYS)
    if unknown:
        raise _fail(unknown[0], f"is not a setting; use {', '.join(KEYS)}")
    colours = {}
    for key in ("accent", "accent_text"):
        value = raw.get(key)
        if value is not None and not (isinstance(value, str) and COLOUR.match(value)):
            raise _fail(key, "must be a colour like \"#0b5563\"")
        colours[key] = value or getattr(WidgetSettings, key)
    starters = raw.get("starters", list(DEFAULT_STARTERS))
    if not isinstance(starters, list) or len(starters) > MAX_STARTERS:
        raise _fail("starters", f"must list at most {MAX_STARTERS} topic ids")
    for topic in starters:
        if topic not in kb.topics:
            raise _fail("starters", f"names {topic!r}, which is not a topic in knowledge/topics")
    return WidgetSettings(title=_text(raw, "title") or DEFAULT_TITLE, welcome=_text(raw, "welcome"),
                          accent=colours["accent"], accent_text=colours["accent_text"],
                          starters=tuple(str(topic) for topic in starters))


def starter_buttons(settings: WidgetSettings, kb: KnowledgeBase) -> List[Dict[str, str]]:
    """The welcome screen's buttons: each topic's title, asking for that topic."""
    return [{"title": kb.topics[topic].title, "payload": topic_payload(topic)}
            for topic in settings.starters if topic in kb.topics]


def settings_json(clinic: Any, kb: KnowledgeBase) -> Dict[str, Any]:
    """What ``GET /webchat/settings.json`` answers (names as the widget's data- attributes)."""
    settings: WidgetSettings = clinic.widget
    return {
        "title": settings.title,
        "welcome": settings.welcome_for(clinic.name),
        "phone": clinic.phone,
        "phoneE164": clinic.phone_e164,
        "emergency": clinic.emergency_number,
        "accent": settings.accent,
        "accentText": settings.accent_text,
        "starters": starter_buttons(settings, kb),
    }
