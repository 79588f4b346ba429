"""clinic.yml: validated at start-up, every clinic value comes from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import ClinicConfigError, load_clinic, parse_clinic

OTHER = Path(__file__).parent / "fixtures" / "clinic_other.yml"


def shipped() -> Dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "clinic.yml").read_text())


def test_the_shipped_example_clinic_is_valid_and_fictional() -> None:
    clinic = load_clinic(PROJECT_ROOT / "clinic.yml")
    assert "example" in clinic.name.lower()
    assert clinic.phone_link == "tel:+61255501234"
    assert clinic.emergency_number == "000"
    assert clinic.booking_url.startswith("https://")


def test_a_second_clinic_changes_every_value() -> None:
    first, second = load_clinic(PROJECT_ROOT / "clinic.yml"), load_clinic(OTHER)
    assert second.phone_link == "tel:+442079460123"
    assert second.emergency_number == "999"
    assert "Samaritans" in second.crisis_line
    for key, value in first.slots().items():
        if key == "region_doctor":  # "GP" in Australia and in Britain alike
            continue
        assert second.slots()[key] != value, key


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": None}, "'phone' is missing"),
        ({"phone": "12"}, "'phone'"),
        ({"booking_url": "booking.example.com/x"}, "'booking_url' must be a full https:// URL"),
        ({"region": "XX"}, "'region' 'XX' is unknown"),
        ({"email": "not-an-email"}, "'email'"),
        ({"timezone": "Mars/Olympus"}, "'timezone'"),
        ({"opening_hours": []}, "'opening_hours'"),
        ({"name": ""}, "'name' is missing"),
        ({"retention_days": 0}, "'retention_days' 0 must be a whole number"),
        ({"retention_days": "forever"}, "'retention_days'"),
    ],
)
def test_a_bad_field_is_named_in_the_error(change: Dict[str, Any], field: str) -> None:
    raw = shipped()
    raw.update(change)
    with pytest.raises(ClinicConfigError, match=field.replace("(", r"\(")) as error:
        parse_clinic(raw)
    assert str(error.value).startswith("clinic config:")


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ClinicConfigError, match="not found"):
        load_clinic(tmp_path / "nope.yml")


def test_no_clinic_detail_is_hard_coded_outside_the_config() -> None:
    clinic = load_clinic(PROJECT_ROOT / "clinic.yml")
    details = [clinic.name, clinic.phone, clinic.phone_e164, clinic.booking_url, clinic.email,
               clinic.address, "5550 1234", "Harbourside"]
    # sources.yml names each article's publisher: the clinic itself for its own pages
    allowed = {"clinic.yml", "README.md", "sources.yml"}
    for path in [*PROJECT_ROOT.glob("*.yml"), *PROJECT_ROOT.glob("data/**/*.yml"),
                 *PROJECT_ROOT.glob("actions/*.py"), *PROJECT_ROOT.glob("assistant/**/*.py"),
                 *PROJECT_ROOT.glob("knowledge/**/*.yml")]:
        if path.name in allowed:
            continue
        text = path.read_text()
        for detail in details:
            assert detail not in text, f"{detail!r} hard-coded in {path.relative_to(PROJECT_ROOT)}"


def test_an_unknown_key_is_refused_by_name_with_the_likely_one() -> None:
    raw = shipped()
    raw["callback_webhook"] = "https://crm.example/hook"  # a typo of callback_webhook_url
    with pytest.raises(ClinicConfigError, match=r"unknown key 'callback_webhook'; "
                                                r"did you mean 'callback_webhook_url'\?"):
        parse_clinic(raw)


def test_every_key_the_parser_reads_is_allowed() -> None:
    raw = shipped()
    raw.update(callback_webhook_url="https://crm.example/hook", retention_days=30,
               emergency_number="000", crisis_line="Lifeline on 13 11 14")
    assert parse_clinic(raw).retention_days == 30
