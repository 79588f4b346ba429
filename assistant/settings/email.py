"""The e-mail parts of clinic.yml: who is alerted (``notify_email``) and the
manager's weekly summary (``weekly_summary``).

Kept out of assistant/settings/clinic.py (which only calls the two parsers) so the
e-mail rules live in one place; the SMTP server itself is configured from the
environment (assistant/settings/smtp.py), because it holds a password.

    notify_email:                 # one address or a list: one e-mail per new call-back request
      - reception@clinic.example
    weekly_summary:               # optional: the headline figures of the past week
      day: monday                 # when, in the clinic's time zone
      time: "08:00"
      to: manager@clinic.example
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Any, List, Optional

from email_validator import EmailNotValidError, validate_email

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SUMMARY_KEYS = ("day", "time", "to")


class EmailConfigError(ValueError):
    """notify_email or weekly_summary is invalid; the message names the field."""


@dataclass(frozen=True)
class WeeklySummarySchedule:
    weekday: int  # Monday is 0, as datetime.weekday()
    at: time  # local time in the clinic's time zone
    to: str

    @property
    def day_name(self) -> str:
        return WEEKDAYS[self.weekday].capitalize()


def check_address(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EmailConfigError(f"clinic config: '{key}' must be an e-mail address, not {value!r}")
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise EmailConfigError(f"clinic config: '{key}' {value!r} is not a valid e-mail address ({error})") \
            from None


def parse_notify_email(raw: Any) -> List[str]:
    """The addresses alerted of each new request: none, one, or a list (duplicates, in any
    letter case, dropped)."""
    if raw is None:
        return []
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list):
        raise EmailConfigError("clinic config: 'notify_email' must be an e-mail address or a list of them")
    addresses: List[str] = []
    for index, value in enumerate(values):
        address = check_address(f"notify_email[{index}]", value)
        if address.lower() not in (known.lower() for known in addresses):  # one inbox, one copy
            addresses.append(address)
    return addresses


def _time_of_day(value: Any) -> time:
    # YAML 1.1 reads an unquoted 8:30 as the number 510 (base 60); take it back
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str):
        try:
            hours, minutes = value.strip().split(":")
            return time(int(hours), int(minutes))
        except ValueError:
            pass
    raise EmailConfigError(f"clinic config: 'weekly_summary.time' {value!r} must be a time like \"08:00\"")


def parse_weekly_summary(raw: Any) -> Optional[WeeklySummarySchedule]:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise EmailConfigError("clinic config: 'weekly_summary' must have 'day', 'time' and 'to'")
    unknown = sorted(set(map(str, raw)) - set(SUMMARY_KEYS))
    if unknown:
        raise EmailConfigError(f"clinic config: 'weekly_summary' has unknown key(s) {', '.join(unknown)} "
                               f"(use {', '.join(SUMMARY_KEYS)})")
    missing = [key for key in SUMMARY_KEYS if raw.get(key) in (None, "")]
    if missing:
        raise EmailConfigError(f"clinic config: 'weekly_summary' needs {', '.join(missing)}")
    day = str(raw["day"]).strip().lower()
    if day not in WEEKDAYS:
        raise EmailConfigError(f"clinic config: 'weekly_summary.day' {raw['day']!r} must be one of "
                               f"{', '.join(WEEKDAYS)}")
    return WeeklySummarySchedule(weekday=WEEKDAYS.index(day), at=_time_of_day(raw["time"]),
                                 to=check_address("weekly_summary.to", raw["to"]))
