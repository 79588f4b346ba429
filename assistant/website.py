"""The website channel: the chat widget's webhook, its files and a demo page.

Registered in credentials.yml. It answers exactly like the REST channel (it
*is* one, with the same limits: assistant/channels.py) and adds what a browser
on the clinic's own site needs:

* ``POST /webhooks/website/webhook`` -- the widget's webhook. Browsers on other
  sites are refused (403) unless their origin is listed in ``allowed_origins``
  (credentials.yml, or ``WEBCHAT_ALLOWED_ORIGINS``, comma-separated); the page
  the bot serves itself is always allowed. Never ``*``.
* ``GET /webchat/widget.js`` and ``/webchat/widget.css`` -- the widget (webchat/).
* ``GET /webchat/`` -- a mock clinic page with the widget, filled from clinic.yml,
  so ``make run`` and opening http://localhost:5005/webchat/ is the whole demo.

Every page and file is served with a Content-Security-Policy that allows our
own origin only: nothing a visitor types can reach a third party.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from string import Template
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import urlparse

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.shared.core.events import SlotSet
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant.channels import DEFAULT_MAX_MESSAGE_CHARS, GuardedRestInput, error, json_with_sender
from assistant.clinic import Clinic, current_clinic
from assistant.knowledge import PROJECT_ROOT

logger = logging.getLogger(__name__)

WEBCHAT_DIR = PROJECT_ROOT / "webchat"
ORIGINS_ENV = "WEBCHAT_ALLOWED_ORIGINS"
# The files the widget is made of; nothing else in webchat/ is served.
STATIC_FILES = {
    "widget.js": "text/javascript; charset=utf-8",
    "widget.css": "text/css; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
PREFLIGHT_MAX_AGE_SECONDS = "600"
WEBHOOK_PATH = "/webhooks/website/webhook"
# The widget reports a tap on the clinic's phone number or booking link here,
# for the hand-off funnel of `make report`.
HANDOFF_PATH = "/webhooks/website/handoff"
HANDOFF_SLOT = "handoff_choice"
# sanic-cors (which Rasa installs app-wide) leaves a request alone once this is set.
SANIC_CORS_EVALUATED = "_sanic_cors_e"


class WebsiteConfigError(ValueError):
    """The website channel's settings are invalid; the message names the setting."""


def parse_origins(values: Iterable[str]) -> Tuple[str, ...]:
    """Normalised origins (``scheme://host[:port]``); anything else is refused at start-up."""
    origins = []
    for value in values:
        value = value.strip().rstrip("/")
        if not value:
            continue
        parts = urlparse(value)
        if value == "*" or parts.scheme not in ("http", "https") or not parts.netloc \
                or parts.path or parts.query or parts.fragment:
            raise WebsiteConfigError(
                f"allowed_origins: {value!r} is not an origin like https://www.your-clinic.com "
                "(scheme and host only; '*' is not allowed)")
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(origins)


def configured_origins(credentials: Dict[str, Any]) -> Tuple[str, ...]:
    from_env = os.environ.get(ORIGINS_ENV)
    if from_env is not None:
        return parse_origins(from_env.split(","))
    listed = credentials.get("allowed_origins") or []
    if not isinstance(listed, list):
        raise WebsiteConfigError("allowed_origins must be a list of origins")
    return parse_origins(str(v) for v in listed)


def render_demo_page(clinic: Clinic, template: Path = WEBCHAT_DIR / "demo.html") -> str:
    """The mock clinic page, with the clinic's details escaped into it."""
    values = {
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "clinic_phone_e164": clinic.phone_e164,
        "clinic_address": clinic.address,
        "clinic_booking_url": clinic.booking_url,
        "clinic_hours": "; ".join(clinic.opening_hours),
        "emergency_number": clinic.emergency_number,
    }
    return Template(template.read_text(encoding="utf-8")).substitute(
        {key: html.escape(value, quote=True) for key, value in values.items()})


class WebsiteInput(GuardedRestInput):
    @classmethod
    def name(cls) -> str:
        return "website"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        credentials = credentials or {}
        return cls(int(credentials.get("max_message_chars", DEFAULT_MAX_MESSAGE_CHARS)),
                   configured_origins(credentials))

    def __init__(self, max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
                 allowed_origins: Tuple[str, ...] = ()) -> None:
        super().__init__(max_message_chars)
        self.allowed_origins = allowed_origins

    def origin_allowed(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None:  # not a cross-site browser request (curl, a server)
            return True
        origin = origin.rstrip("/").lower()
        # Our own demo page; request.host is the Host header, so this also holds behind a proxy.
        same_site = urlparse(origin).netloc == (request.host or "").lower()
        return same_site or origin in self.allowed_origins

    @staticmethod
    def cors_headers(request: Request) -> Dict[str, str]:
        origin = request.headers.get("origin")
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        site = _UnprefixedBlueprint(f"website_{id(self)}", __name__)
        demo_page = render_demo_page(current_clinic())  # at start-up: a bad clinic.yml stops it here
        refused = "this website is not allowed to use the assistant (allowed_origins)"

        @site.route("/webhooks/website/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        async def preflight(request: Request) -> Optional[HTTPResponse]:
            # An app-wide middleware that runs first: Rasa's app-wide sanic-cors
            # otherwise answers every OPTIONS request itself, allowing no origin.
            if request.method != "OPTIONS" or request.path not in (WEBHOOK_PATH, HANDOFF_PATH):
                return None
            _cors_done_here(request)
            if not self.origin_allowed(request):
                return error(403, refused)
            return response.empty(headers={
                **self.cors_headers(request),
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_SECONDS,
            })

        site.ctx.first_request_middleware.append(preflight)
        # The route must exist too, or the router refuses OPTIONS before any middleware.
        site.add_route(preflight, WEBHOOK_PATH, methods=["OPTIONS"], name="website_preflight")
        site.add_route(preflight, HANDOFF_PATH, methods=["OPTIONS"], name="website_handoff_preflight")

        @site.route(WEBHOOK_PATH, methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            _cors_done_here(request)
            if not self.origin_allowed(request):
                return error(403, refused)
            reply = await self.handle(request, on_new_message)
            reply.headers.update(self.cors_headers(request))
            return reply

        @site.route(HANDOFF_PATH, methods=["POST"])
        async def handoff(request: Request) -> HTTPResponse:
            _cors_done_here(request)
            if not self.origin_allowed(request):
                return error(403, refused)
            problem, sender, choice = handoff_choice(request, current_clinic())
            if problem is None and choice:
                try:
                    await record_handoff(request.app.ctx.agent, sender, choice)
                except Exception as failure:  # the store is down: the visitor is unaffected
                    logger.error("hand-off choice not recorded: %s", type(failure).__name__)
                    problem = error(503, "not recorded")
            reply = problem or response.empty(status=204)
            reply.headers.update(self.cors_headers(request))
            return reply

        @site.route("/webchat", methods=["GET"])
        async def demo(request: Request) -> HTTPResponse:
            return response.html(demo_page, headers=SECURITY_HEADERS)

        @site.route("/webchat/<filename:str>", methods=["GET"])
        async def widget_file(request: Request, filename: str) -> HTTPResponse:
            if not filename:  # "/webchat/" arrives here with an empty name
                return await demo(request)
            content_type = STATIC_FILES.get(filename)
            if content_type is None:
                return error(404, "not found")
            return await response.file(WEBCHAT_DIR / filename, mime_type=content_type,
                                       headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

        return site


def handoff_choice(request: Request, clinic: Clinic) -> Tuple[Optional[HTTPResponse], str, str]:
    """(error or None, sender, "call" | "book_online" | "" for a link that is neither)."""
    problem, body = json_with_sender(request, '{"sender": "...", "payload": "tel:..."}')
    if problem is None and not isinstance(body.get("payload"), str):
        problem = error(400, "'payload' must be the link's address")
    if problem is not None:
        return problem, "", ""
    sender = body["sender"]
    choices = {clinic.phone_link: "call", clinic.booking_url: "book_online"}
    return None, sender, choices.get(body["payload"], "")


async def record_handoff(agent: Any, sender: str, choice: str) -> bool:
    """Add the choice to the conversation (a slot event); not for unknown ones."""
    async with agent.lock_store.lock(sender):
        tracker = await agent.tracker_store.retrieve(sender)
        if tracker is None:
            return False
        tracker.update(SlotSet(HANDOFF_SLOT, choice))
        await agent.tracker_store.save(tracker)
        return True


def _cors_done_here(request: Request) -> None:
    setattr(request.ctx, SANIC_CORS_EVALUATED, "1")


class _UnprefixedBlueprint(Blueprint):
    """Rasa mounts every channel under /webhooks/<name>/; the widget's files and
    demo page live at /webchat/, so this blueprint keeps the paths as written.

    It can also put request middleware in front of the app's own: Rasa installs
    sanic-cors app-wide, which answers every OPTIONS request itself (allowing no
    origin) from a middleware it puts first when the server starts. Ours is put
    first after that, by a listener registered later than sanic-cors's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx.first_request_middleware = []  # Sanic allows new attributes only on ctx

    def register(self, app: Any, options: Dict[str, Any]) -> List[Any]:
        first = list(self.ctx.first_request_middleware)

        async def put_first(app: Any, loop: Any) -> None:
            for middleware in reversed(first):
                app.request_middleware.appendleft(middleware)

        app.register_listener(put_first, "before_server_start")
        return super().register(app, {**options, "url_prefix": None})
