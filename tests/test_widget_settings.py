"""The widget's settings from clinic.yml, and link-free website text, offline."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from assistant.kb.knowledge import KnowledgeBase
from assistant.paths import PROJECT_ROOT
from assistant.rasa_server.link_text import without_button_links
from assistant.rasa_server.widget_settings import WidgetConfigError, parse_widget, settings_json
from assistant.settings.clinic import load_clinic

BOOK = "https://booking.example.com/harbourside-physio"


def test_the_shipped_clinic_gives_the_widget_everything_it_shows(kb: KnowledgeBase) -> None:
    clinic = load_clinic(PROJECT_ROOT / "clinic.yml")
    settings = settings_json(clinic, kb)
    assert settings["phone"] == clinic.phone and settings["phoneE164"] == clinic.phone_e164
    assert settings["emergency"] == clinic.emergency_number and clinic.name in settings["welcome"]
    assert [b["payload"] for b in settings["starters"]] == [f"/faq/{t}" for t in clinic.widget.starters]
    assert all(b["title"].endswith("?") for b in settings["starters"])


@pytest.mark.parametrize(("raw", "named"), [
    ({"starters": ["no_such_topic"]}, "widget.starters"),
    ({"starters": ["what_is"] * 5}, "widget.starters"),
    ({"accent": "teal; background: url(x)"}, "widget.accent"),
    ({"welcom": "Hi"}, "widget.welcom"),
    ({"title": ""}, "widget.title"),
    ("yes", "'widget'"),
])
def test_a_mistake_in_the_widget_section_is_named(kb: KnowledgeBase, raw: Any, named: str) -> None:
    with pytest.raises(WidgetConfigError, match=named):
        parse_widget(raw, kb)


def test_the_widget_section_sets_its_values(kb: KnowledgeBase) -> None:
    settings = parse_widget({"title": "Ask us", "accent": "#123456", "starters": ["needles"]}, kb)
    assert (settings.title, settings.accent, settings.starters) == ("Ask us", "#123456", ("needles",))


def reply(text: str, *payloads: str) -> Dict[str, Any]:
    return {"text": text, "buttons": [{"title": p, "payload": p} for p in payloads]}


@pytest.mark.parametrize(("text", "expected"), [
    (f"Call us on (02) 5550 1234, book online at {BOOK}, or leave your details.",
     "Call us on (02) 5550 1234, book online, or leave your details."),
    (f"Please call (02) 5550 1234 or go to {BOOK}.", "Please call (02) 5550 1234 or book online."),
    (f"The online booking page at {BOOK} shows them.", "The online booking page shows them."),
])
def test_a_link_a_button_carries_is_not_repeated_in_the_text(text: str, expected: str) -> None:
    [message] = without_button_links([reply(text, "tel:+61255501234", BOOK)])
    assert message["text"] == expected


def test_a_link_without_its_button_stays() -> None:
    text = f"Book online at {BOOK}."
    assert without_button_links([reply(text, "/request_callback")])[0]["text"] == text
    assert without_button_links([{"text": text}])[0]["text"] == text


def test_clinic_yml_takes_a_widget_section_and_names_its_mistakes() -> None:
    import yaml

    from assistant.settings.clinic import ClinicConfigError, parse_clinic
    raw = yaml.safe_load((PROJECT_ROOT / "clinic.yml").read_text())
    assert parse_clinic({**raw, "widget": {"starters": ["needles"]}}).widget.starters == ("needles",)
    with pytest.raises(ClinicConfigError, match="widget.accent"):
        parse_clinic({**raw, "widget": {"accent": "red"}})
