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

It is the channel for trusted integrations, so it is authenticated: with
``REST_API_TOKEN`` set, every request needs ``Authorization: Bearer <token>``
(else 401); without it, only direct loopback clients are answered (local
development, tests, scripts on the server; else 403). A request that came
through a proxy (``X-Forwarded-For``, ``Forwarded`` or ``X-Real-IP``) is not
direct, and the cluster's nginx never forwards this channel. Trusted clients
may send button payloads (``/intent``) as messages, as Rasa allows; the public
website channel accepts only the payloads it offered (assistant/rasa_server/website_channel.py).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import unicodedata
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple, Union

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

# Matched with fullmatch: "$" alone would also accept a trailing newline.
SENDER = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
REST_TOKEN_ENV = "REST_API_TOKEN"
# Headers a reverse proxy adds: a request carrying one is not from a direct client.
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
DEFAULT_MAX_MESSAGE_CHARS = 1000
EMPTY_MESSAGE_REPLY = "It looks like that message was empty. What would you like to know about dry needling?"


def error(status: int, message: str, **extra: Any) -> HTTPResponse:
    return response.json({"error": message, **extra}, status=status)


def printable_message(text: str) -> str:
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
    if not isinstance(sender, str) or not SENDER.fullmatch(sender):
        return error(400, "'sender' must be 1-128 letters, digits or -_.:@"), {}
    return None, body


def _ip(value: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    try:
        address = ipaddress.ip_address(value.strip().strip('"').strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def proxied(request: Request) -> bool:
    return any(name in request.headers for name in PROXY_HEADERS)


def direct_loopback(request: Request) -> bool:
    """A client on this machine talking to us directly, not through a proxy."""
    peer = _ip(request.ip or "")
    return peer is not None and peer.is_loopback and not proxied(request)


def client_address(request: Request) -> Optional[str]:
    """The visitor's IP address for rate limits; None for a direct loopback client.

    Only a proxy on this machine (loopback peer) is believed about the client:
    its address is the last one it appended to X-Forwarded-For (nginx's
    $proxy_add_x_forwarded_for), else the last ``for=`` of Forwarded, else
    X-Real-IP. Anyone else is taken at their socket's address, whatever
    headers they send."""
    peer = _ip(request.ip or "")
    if peer is None:
        return request.ip or "unknown"
    if not peer.is_loopback:
        return str(peer)
    if not proxied(request):
        return None
    forwarded = [part for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    standard = re.findall(r"for=\"?\[?([^\]\";,]+)", request.headers.get("forwarded", ""), re.IGNORECASE)
    candidates = forwarded[-1:] + standard[-1:] + [request.headers.get("x-real-ip", "")]
    for candidate in candidates:
        address = _ip(candidate)
        if address is not None:
            return str(address)
    return "proxied-unknown"  # a proxy that names no client: limited as one client


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
        return None, sender, printable_message(message)

    @staticmethod
    def authorise(request: Request) -> Optional[HTTPResponse]:
        """None when this trusted-integration channel may answer the request."""
        expected = os.environ.get(REST_TOKEN_ENV)
        if expected:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                      expected.encode()):
                reply = error(401, "send 'Authorization: Bearer <REST_API_TOKEN>'")
                reply.headers["WWW-Authenticate"] = "Bearer"
                return reply
            return None
        if direct_loopback(request):
            return None
        return error(403, "this channel answers local clients only; set REST_API_TOKEN to use it remotely")

    async def handle(self, request: Request,
                     on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> HTTPResponse:
        """Check the caller, validate one webhook request, run the turn, return the bot's messages."""
        refused = self.authorise(request)
        if refused is not None:
            return refused
        problem, sender, text = self.validate(request)
        if problem is not None:
            return problem
        return await self.run_turn(sender, text, on_new_message)

    def collector(self) -> CollectingOutputChannel:
        """Where a turn's replies are gathered (the website channel marks its answers)."""
        return CollectingOutputChannel()

    async def run_turn(self, sender: str, text: str,
                       on_new_message: Callable[[UserMessage], Awaitable[Any]],
                       metadata: Optional[Dict[str, Any]] = None) -> HTTPResponse:
        if not text:
            return response.json([{"recipient_id": sender, "text": EMPTY_MESSAGE_REPLY}])
        collector = self.collector()
        try:
            await on_new_message(UserMessage(text, collector, sender, input_channel=self.name(),
                                             metadata=metadata))
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
