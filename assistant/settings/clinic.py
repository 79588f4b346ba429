"""The clinic's configuration (clinic.yml): loaded once, validated at start-up.

Every reply that mentions the clinic takes its values from here: the custom
``action_session_start`` copies them into slots that the responses interpolate
(``{clinic_phone}``, ``{clinic_booking_url}``...), and actions read them
directly. Nothing clinic-specific is written anywhere else.

``CLINIC_CONFIG`` points at another file (tests use a second clinic).

    python -m assistant.settings.clinic            # check the file, print what the bot will say
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from email_validator import EmailNotValidError, validate_email

from assistant.kb.knowledge import KnowledgeError, cached_knowledge
from assistant.paths import PROJECT_ROOT
from assistant.rasa_server.rate_limits import RateLimitConfigError, RateLimits, parse_rate_limits
from assistant.rasa_server.widget_settings import WidgetConfigError, WidgetSettings, parse_widget
from assistant.settings.email import (
    EmailConfigError,
    WeeklySummarySchedule,
    parse_notify_email,
    parse_weekly_summary,
)

DEFAULT_CONFIG = PROJECT_ROOT / "clinic.yml"
DEFAULT_RETENTION_DAYS = 90  # conversations and closed call-back requests
REGIONS_FILE = Path(__file__).with_name("regions.yml")


class ClinicConfigError(ValueError):
    """clinic.yml is invalid; the message names the field."""


@dataclass(frozen=True)
class Clinic:
    name: str
    phone: str  # as patients should see it
    phone_e164: str  # dialable, E.164
    booking_url: str
    email: str
    address: str
    parking: str
    opening_hours: List[str]
    region: str
    timezone: str
    emergency_number: str
    crisis_line: str
    # How patients in the region name their doctor and their health cover
    # (assistant/settings/regions.yml): "GP" / "doctor" / "family physician".
    doctor: str = "doctor"
    insurer: str = "health insurer"
    callback_webhook_url: Optional[str] = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    rate_limits: RateLimits = RateLimits()  # abuse limits (assistant/rasa_server/rate_limits.py)
    # The clinic's own answers to subjects the articles don't cover
    # (knowledge/long_tail.yml): subject id -> text. Baked into the training
    # data by `make data`; the bot gives them attributed to the clinic.
    answers: Dict[str, str] = field(default_factory=dict)
    # E-mail alerts (assistant/settings/email.py): who hears of each new call-back
    # request, and the manager's optional weekly summary.
    notify_email: List[str] = field(default_factory=list)
    weekly_summary: Optional[WeeklySummarySchedule] = None
    # The chat widget's title, welcome, colours and starter questions
    # (assistant/rasa_server/widget_settings.py), served to it at /webchat/settings.json.
    widget: WidgetSettings = WidgetSettings()

    @property
    def phone_link(self) -> str:
        return f"tel:{self.phone_e164}"

    @property
    def emergency_link(self) -> str:
        """tel: link to the first number of e.g. "112 or 999"."""
        match = re.search(r"\d+", self.emergency_number)
        return f"tel:{match.group()}" if match else ""

    @property
    def hours_text(self) -> str:
        return "; ".join(self.opening_hours)

    def slots(self) -> Dict[str, str]:
        """The values responses interpolate, as slot name -> value."""
        return {
            "clinic_name": self.name,
            "clinic_phone": self.phone,
            "clinic_phone_link": self.phone_link,
            "clinic_booking_url": self.booking_url,
            "clinic_email": self.email,
            "clinic_address": self.address,
            "clinic_parking": self.parking,
            "clinic_hours": self.hours_text,
            "emergency_number": self.emergency_number,
            "emergency_link": self.emergency_link,
            "crisis_line": self.crisis_line,
            "region_doctor": self.doctor,
            "region_insurer": self.insurer,
        }


def _text(raw: Dict[str, Any], key: str, required: bool = True) -> Optional[str]:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ClinicConfigError(f"clinic config: '{key}' is missing")
        return None
    if not isinstance(value, (str, int)):
        raise ClinicConfigError(f"clinic config: '{key}' must be text")
    return str(value).strip()


def _regions() -> Dict[str, Dict[str, str]]:
    return yaml.safe_load(REGIONS_FILE.read_text(encoding="utf-8"))


def _check_url(key: str, url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.netloc or " " in url:
        raise ClinicConfigError(f"clinic config: '{key}' must be a full https:// URL, not {url!r}")
    return url


def _check_phone(phone: str, region: str) -> str:
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException as error:
        raise ClinicConfigError(f"clinic config: 'phone' {phone!r} is not a phone number ({error})") from None
    if not phonenumbers.is_valid_number(number):
        raise ClinicConfigError(f"clinic config: 'phone' {phone!r} is not a valid number for {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _check_email(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ClinicConfigError(f"clinic config: 'email' {email!r} is not valid ({error})") from None


def _check_hours(raw: Dict[str, Any]) -> List[str]:
    hours = raw.get("opening_hours")
    if isinstance(hours, str):
        hours = [hours]
    if not hours or not all(isinstance(h, str) and h.strip() for h in hours):
        raise ClinicConfigError("clinic config: 'opening_hours' must list at least one line of text")
    return [h.strip() for h in hours]


def _check_retention(raw: Dict[str, Any]) -> int:
    days = raw.get("retention_days", DEFAULT_RETENTION_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ClinicConfigError(
            f"clinic config: 'retention_days' {days!r} must be a whole number of days >= 1")
    return days


def _check_answers(raw: Dict[str, Any]) -> Dict[str, str]:
    answers = raw.get("answers") or {}
    if not isinstance(answers, dict):
        raise ClinicConfigError("clinic config: 'answers' must map subject ids to text")
    try:
        subjects = cached_knowledge().subjects
    except KnowledgeError as error:  # start-up reports it as one line, like a clinic.yml mistake
        raise ClinicConfigError(f"knowledge base: {error}") from None
    checked: Dict[str, str] = {}
    for subject, text in answers.items():
        if subject not in subjects:
            raise ClinicConfigError(
                f"clinic config: 'answers' names unknown subject '{subject}' "
                f"(the subjects are in knowledge/long_tail.yml: {', '.join(sorted(subjects))})")
        if not isinstance(text, str) or not text.strip():
            raise ClinicConfigError(f"clinic config: 'answers.{subject}' must be text")
        checked[str(subject)] = " ".join(text.split())
    return checked


def _check_widget(raw: Dict[str, Any]) -> WidgetSettings:
    try:
        return parse_widget(raw.get("widget"), cached_knowledge())
    except KnowledgeError as error:
        raise ClinicConfigError(f"knowledge base: {error}") from None
    except WidgetConfigError as error:
        raise ClinicConfigError(str(error)) from None


class _ReadKeys(Dict[str, Any]):
    """clinic.yml's fields, noting which keys the parser asks for: the keys it
    reads are the keys a clinic may write, so a new setting needs no second list."""

    def __init__(self, raw: Dict[str, Any]) -> None:
        super().__init__(raw)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def parse_clinic(raw: Any) -> Clinic:
    """Validate a parsed clinic.yml; raises ClinicConfigError naming the bad field.

    A key the parser never reads is refused by name: a typo such as
    ``callback_webhook`` would otherwise be ignored and the clinic would quietly
    get no webhook."""
    if not isinstance(raw, dict):
        raise ClinicConfigError("clinic config: expected a mapping of fields")
    fields = _ReadKeys(raw)
    clinic = _parse_fields(fields)
    unknown = sorted(str(key) for key in raw if str(key) not in fields.read)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(fields.read), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ClinicConfigError(f"clinic config: unknown key '{unknown[0]}'{hint} "
                                f"(the keys are: {', '.join(sorted(fields.read))})")
    return clinic


def _parse_fields(raw: Dict[str, Any]) -> Clinic:
    region = (_text(raw, "region") or "").upper()
    regions = _regions()
    if region not in regions:
        raise ClinicConfigError(
            f"clinic config: 'region' {region!r} is unknown; use one of {', '.join(sorted(regions))} "
            "(or add it to assistant/settings/regions.yml)"
        )
    timezone = _text(raw, "timezone") or ""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ClinicConfigError(f"clinic config: 'timezone' {timezone!r} is not a known time zone") from None
    phone = _text(raw, "phone") or ""
    try:
        rate_limits = parse_rate_limits(raw.get("rate_limits"))
    except RateLimitConfigError as error:
        raise ClinicConfigError(str(error)) from None
    webhook = _text(raw, "callback_webhook_url", required=False)
    if webhook is not None:
        parsed = urlparse(webhook)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ClinicConfigError(f"clinic config: 'callback_webhook_url' {webhook!r} is not a URL")
    try:
        notify_email = parse_notify_email(raw.get("notify_email"))
        weekly_summary = parse_weekly_summary(raw.get("weekly_summary"))
    except EmailConfigError as error:
        raise ClinicConfigError(str(error)) from None
    return Clinic(
        name=_text(raw, "name") or "",
        phone=phone,
        phone_e164=_check_phone(phone, region),
        booking_url=_check_url("booking_url", _text(raw, "booking_url") or ""),
        email=_check_email(_text(raw, "email") or ""),
        address=_text(raw, "address") or "",
        parking=_text(raw, "parking", required=False) or "Please ask the clinic about parking.",
        opening_hours=_check_hours(raw),
        region=region,
        timezone=timezone,
        emergency_number=_text(raw, "emergency_number", required=False)
        or regions[region]["emergency_number"],
        crisis_line=_text(raw, "crisis_line", required=False) or regions[region]["crisis_line"],
        doctor=regions[region]["doctor"],
        insurer=regions[region]["insurer"],
        callback_webhook_url=webhook,
        retention_days=_check_retention(raw),
        rate_limits=rate_limits,
        answers=_check_answers(raw),
        notify_email=notify_email,
        weekly_summary=weekly_summary,
        widget=_check_widget(raw),
    )


def config_path() -> Path:
    return Path(os.environ.get("CLINIC_CONFIG") or DEFAULT_CONFIG)


def load_clinic(path: Optional[Path] = None) -> Clinic:
    path = path or config_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClinicConfigError(f"clinic config: {path} not found") from None
    except yaml.YAMLError as error:
        raise ClinicConfigError(f"clinic config: {path} is not valid YAML: {error}") from None
    try:
        return parse_clinic(raw)
    except ClinicConfigError as error:
        raise ClinicConfigError(f"{error} (in {path})") from None


@lru_cache(maxsize=1)
def current_clinic() -> Clinic:
    """The clinic of this process, read once (actions call this every turn)."""
    return load_clinic()


def main() -> int:
    try:
        clinic = load_clinic()
    except ClinicConfigError as error:
        print(error, file=sys.stderr)
        return 1
    width = max(len(k) for k in clinic.slots())
    for key, value in clinic.slots().items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
