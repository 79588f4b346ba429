"""Rasa's REST channel with limits: bad input gets a clear 4xx at once.

Registered in credentials.yml in place of Rasa's ``rest`` (same URL,
``/webhooks/rest/webhook``, same request and reply format). Stock Rasa 3.6
accepts anything: a 1 MB message took 26 s and stalled every other
conversation. Here:

* the request must say ``Content-Type: application/json`` (else 415);
* the body must be a JSON object with a ``sender`` (1-128 letters, digits and
  ``-_.:@``) and a string ``message``; anything else is a 400 with a JSON error;
* a message longer than ``max_message_chars`` (default 1,000) is a 413; bodies
  beyond Sanic's ``REQUEST_MAX_SIZE`` (the launcher sets 64 KB) never get here;
* control characters are removed; an empty message gets a friendly prompt
  without touching the model or the tracker store;
* if the bot fails internally the reply is a 503 with a JSON error -- never a
  claim that the message was handled -- and the log line carries no message text.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

SENDER = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
DEFAULT_MAX_MESSAGE_CHARS = 1000
EMPTY_MESSAGE_REPLY = "It looks like that message was empty. What would you like to know about dry needling?"


def error(status: int, message: str, **extra: Any) -> HTTPResponse:
    return response.json({"error": message, **extra}, status=status)


def clean_text(text: str) -> str:
    """Drop control and format characters (keeping line breaks and tabs as spaces)."""
    text = re.sub(r"[\r\n\t]+", " ", text)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()


def json_with_sender(request: Request, usage: str) -> Tuple[Optional[HTTPResponse], Dict[str, Any]]:
    """(error response or None, the request's JSON object with a valid "sender")."""
    if (request.content_type or "").split(";")[0].strip().lower() != "application/json":
        return error(415, "send JSON with 'Content-Type: application/json'"), {}
    try:
        body = request.json
    except Exception:  # Sanic raises its own InvalidUsage for broken JSON
        body = None
    if not isinstance(body, dict):
        return error(400, f"send a JSON object: {usage}"), {}
    sender = body.get("sender")
    if not isinstance(sender, str) or not SENDER.match(sender):
        return error(400, "'sender' must be 1-128 letters, digits or -_.:@"), {}
    return None, body


class GuardedRestInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        credentials = credentials or {}
        return cls(int(credentials.get("max_message_chars", DEFAULT_MAX_MESSAGE_CHARS)))

    def __init__(self, max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS) -> None:
        self.max_message_chars = max_message_chars

    def validate(self, request: Request) -> Tuple[Optional[HTTPResponse], str, str]:
        """(error response or None, sender, cleaned message)."""
        problem, body = json_with_sender(request, '{"sender": "...", "message": "..."}')
        if problem is not None:
            return problem, "", ""
        sender, message = body["sender"], body.get("message")
        if not isinstance(message, str):
            return error(400, "'message' must be a string"), "", ""
        if len(message) > self.max_message_chars:
            return error(413, f"message too long: at most {self.max_message_chars} characters",
                         max_message_chars=self.max_message_chars), "", ""
        return None, sender, clean_text(message)

    async def handle(self, request: Request,
                     on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> HTTPResponse:
        """Validate one webhook request, run the turn, return the bot's messages."""
        problem, sender, text = self.validate(request)
        if problem is not None:
            return problem
        if not text:
            return response.json([{"recipient_id": sender, "text": EMPTY_MESSAGE_REPLY}])
        collector = CollectingOutputChannel()
        try:
            await on_new_message(UserMessage(text, collector, sender, input_channel=self.name()))
        except Exception as failure:  # the model, an action or the tracker store failed
            logger.error("message from a %s conversation could not be handled: %s",
                         self.name(), type(failure).__name__)
            return error(503, "the assistant could not handle this message; please try again")
        return response.json(collector.messages)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"guarded_webhook_{self.name()}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self.handle(request, on_new_message)

        return webhook
