"""Subjects the articles don't answer (knowledge/long_tail.yml): an honest
deferral naming the subject, or the clinic's own answer from clinic.yml."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from assistant.contracts import selected_answer
from assistant.kb.build_data import CLINIC_ANSWER, HANDOFF_BUTTONS, render_responses
from assistant.kb.knowledge import KnowledgeBase
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import ClinicConfigError, parse_clinic

# Every subject the issue lists must be in the catalogue.
REQUIRED_SUBJECTS = {
    "serious_risks", "other_side_effects", "exercise_after", "heat_or_ice", "bath_sauna",
    "alcohol_after", "water_after", "driving_after", "session_frequency", "results_duration",
    "what_to_wear", "what_to_bring", "needle_count_size", "electrical_stimulation", "minimum_age",
    "referral", "qualifications", "regulation", "cost", "insurance", "cancel_reschedule", "running_late",
}
# Words that would be an invented fact in a deferral.
INVENTED = re.compile(
    r"\$|\b\d+\s*(minutes?|mins?|hours?|days?|weeks?|years?|dollars?|mm)\b|\bit'?s safe\b", re.I)


def _clinic_raw() -> Any:
    return yaml.safe_load((PROJECT_ROOT / "clinic.yml").read_text(encoding="utf-8"))


def test_the_catalogue_has_every_subject_with_enough_questions(kb: KnowledgeBase) -> None:
    assert len(kb.subjects) >= 25
    assert set(kb.subjects) >= REQUIRED_SUBJECTS
    for subject in kb.subjects.values():
        assert len(subject.questions) >= 10, subject.id


@pytest.mark.parametrize("subject_id", ["cost", "exercise_after", "minimum_age", "what_to_wear"])
def test_a_deferral_says_the_articles_do_not_cover_it_and_invents_nothing(kb: KnowledgeBase,
                                                                        subject_id: str) -> None:
    reply = kb.subjects[subject_id].reply
    assert re.search(r"(articles|information) (don't|do not|doesn't)", reply), reply
    assert not INVENTED.search(reply), reply


def test_every_deferral_invents_no_figures(kb: KnowledgeBase) -> None:
    invented = [s.id for s in kb.subjects.values() if INVENTED.search(s.reply)]
    assert not invented


def test_a_clinic_answer_replaces_the_deferral_and_is_attributed(kb: KnowledgeBase) -> None:
    rendered = yaml.safe_load(render_responses(kb, {"cost": "An assessment is $95."}))["responses"]
    cost = rendered["utter_faq/cost"][0]
    assert cost["text"].startswith(CLINIC_ANSWER.format(answer="An assessment is $95."))
    assert "{clinic_phone}" in cost["text"] and "{clinic_booking_url}" in cost["text"]
    assert "{clinic_name}" in cost["text"] and cost["buttons"] == HANDOFF_BUTTONS
    assert rendered["utter_faq/insurance"][0]["text"].startswith(kb.subjects["insurance"].reply)


def test_clinic_answers_are_validated_and_an_unknown_subject_is_refused_by_name() -> None:
    raw = _clinic_raw()
    clinic = parse_clinic({**raw, "answers": {"what_to_wear": "  Loose shorts\n and a T-shirt. "}})
    assert clinic.answers == {"what_to_wear": "Loose shorts and a T-shirt."}
    with pytest.raises(ClinicConfigError, match="unknown subject 'parking_fees'"):
        parse_clinic({**raw, "answers": {"parking_fees": "Free."}})
    with pytest.raises(ClinicConfigError, match="'answers.cost' must be text"):
        parse_clinic({**raw, "answers": {"cost": ""}})


def test_the_shipped_clinic_invents_no_answers() -> None:
    assert parse_clinic(_clinic_raw()).answers == {}


@pytest.mark.parametrize("text", [
    "can dry needling kill you", "could the needling kill me", "can you die from it", "is it deadly"])
def test_a_question_about_dying_gets_the_serious_risks_never_does_it_hurt(parse: Any, text: str) -> None:
    """Round 30 taught "does it kill when the needle goes in" (slang for does it hurt); a
    reviewer found "can it kill you" then read as does it hurt (0.91), a confident wrong
    answer to a safety question. The first three are not training examples."""
    answer = selected_answer(parse(text)).get("intent_response_key")
    assert answer == "faq/serious_risks", answer
