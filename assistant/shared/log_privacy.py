"""No message text in the logs, not even in Rasa's own warnings.

Rasa 3.6 unpacks messages that start with "/" (``/intent{"entity": ...}``) and,
when one is malformed or names an unknown intent or entity, warns with the
whole message: ``Failed to parse arguments in line '/inform{"email":
"someone@mail.example"}'...`` (a Python warning), or logs it as the
``user_text`` of a ``message.parsing.failed`` event (structlog). Visitors can
type such messages, and trusted integrations may send them.

``keep_message_text_out_of_logs`` (run in each server process once Rasa has set
up its own logging and warning filters: the website channel registers it as
a start-up listener) ignores those warnings and drops those log records. Other
warnings and log lines are untouched.
"""

from __future__ import annotations

import logging
import warnings

# Rasa's warnings that quote a message ("Failed to parse arguments in line '/...'").
QUOTING_WARNINGS = r"Failed to parse arguments in line"
# Rasa's structlog event that carries the message as user_text.
QUOTING_LOG_EVENTS = ("message.parsing.failed",)


class DropMessageText(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot be formatted: leave it to the handler
            return True
        return not (any(event in text for event in QUOTING_LOG_EVENTS)
                    or "Failed to parse arguments in line" in text)


_FILTER = DropMessageText()


def keep_message_text_out_of_logs() -> None:
    """Idempotent; filters are put first, ahead of Rasa's "once" for UserWarning."""
    warnings.filterwarnings("ignore", message=QUOTING_WARNINGS)
    root = logging.getLogger()
    for handler in root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    if _FILTER not in root.filters:
        root.addFilter(_FILTER)
