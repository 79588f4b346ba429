"""The website channel: the chat widget's webhook, its files and a demo page.

Registered in credentials.yml. It answers exactly like the REST channel (it
*is* one, with the same limits: assistant/rasa_server/rest_channel.py) and adds what a browser
on the clinic's own site needs:

* ``POST /webhooks/website/webhook`` -- the widget's webhook. Browsers on other
  sites are refused (403) unless their origin is listed in ``allowed_origins``
  (credentials.yml, or ``WEBCHAT_ALLOWED_ORIGINS``, comma-separated); the page
  the bot serves itself is always allowed. Never ``*``.
* ``GET /webchat/widget.js`` and ``/webchat/widget.css`` -- the widget (webchat/);
  ``/webchat/settings.json`` -- its settings from clinic.yml (title, welcome,
  phone, emergency number, colours, starter questions: assistant/rasa_server/widget_settings.py).
* A reply's text doesn't repeat an https address its own buttons carry
  (assistant/rasa_server/link_text.py); the REST channel keeps it.
* ``GET /webchat/`` -- a mock clinic page with the widget, filled from clinic.yml,
  so ``make run`` and opening http://localhost:5005/webchat/ is the whole demo.

Every page and file is served with a Content-Security-Policy that allows our
own origin only: nothing a visitor types can reach a third party.

This is the public channel, so it also guards each conversation and the bot:

* **Conversation token.** The reply to the first message of a new
  conversation carries ``X-Conversation-Token`` (assistant/rasa_server/conversation_token.py);
  the widget sends it back as ``"token"`` with every later message and hand-off
  report. A message for an existing conversation without it gets a 403 (code
  ``conversation_token``) and reaches nothing: no reply, no form step, no deletion.
* **Only offered payloads.** A message starting with "/" is a button payload only
  when it is one of the buttons of the bot's latest turn in that conversation;
  anything else a visitor types, e.g. ``/emergency`` or ``/forget_me``, is taken
  as text (without the slash), so it goes through the model and its thresholds.
* **Rate limits** per IP address and per conversation (assistant/rasa_server/rate_limits.py):
  429 with ``Retry-After`` and a JSON error the widget shows as a friendly note.
  The visitor's address reaches the action server only as a keyed hash in the
  message metadata (``client``), for the call-back request limit.
* ``POST /webhooks/website/feedback`` -- thumbs up or down under an answer,
  recorded in the conversation (slot ``answer_feedback``: "down:<utter action>")
  for the report's "answers with the most thumbs-down".
* The hand-off and feedback endpoints need an ``Origin`` header (browsers always send one
  with a POST) and the conversation's token.
"""

from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path
from string import Template
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import urlparse

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.core.events import BotUttered, SlotSet, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant.contracts import FEEDBACK_RATINGS, SLOT_ANSWER_FEEDBACK
from assistant.kb.knowledge import cached_knowledge
from assistant.paths import PROJECT_ROOT
from assistant.rasa_server.conversation_token import (
    CLIENT_METADATA_KEY,
    TOKEN_FIELD,
    TOKEN_HEADER,
    client_key,
    token_for,
    token_valid,
)
from assistant.rasa_server.link_text import without_button_links
from assistant.rasa_server.rate_limits import (
    MESSAGES_PER_CONVERSATION,
    MESSAGES_PER_IP,
    NEW_CONVERSATIONS_PER_IP,
    limiter_for,
)
from assistant.rasa_server.rest_channel import (
    DEFAULT_MAX_MESSAGE_CHARS,
    GuardedRestInput,
    client_address,
    error,
    json_with_sender,
)
from assistant.rasa_server.widget_settings import settings_json, starter_buttons
from assistant.settings.clinic import Clinic, current_clinic
from assistant.shared.log_privacy import keep_message_text_out_of_logs

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
FEEDBACK_PATH = "/webhooks/website/feedback"  # thumbs up / down under an answer
SETTINGS_FILE = "settings.json"  # the widget's settings (assistant/rasa_server/widget_settings.py)
# sanic-cors (which Rasa installs app-wide) leaves a request alone once this is set.
SANIC_CORS_EVALUATED = "_sanic_cors_e"
TOKEN_REFUSED_CODE = "conversation_token"  # the widget starts a new conversation on this
RATE_LIMITED_CODE = "rate_limited"


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


# Replies that are not answers to rate: the form's questions and notes, errors.
NOT_ANSWERS = ("utter_ask_", "utter_callback", "utter_invalid", "utter_try_again")
ANSWER_FIELD = "answer"  # in a reply: true when the widget offers thumbs up / down under it


class AnswerMarkingCollector(CollectingOutputChannel):
    """Collects a turn's replies like the REST channel, marking each that is an
    answer (a response, not a form's question), so the widget offers thumbs
    up / down under answers only."""

    async def send_response(self, recipient_id: str, message: Dict[str, Any]) -> None:
        utter = str(message.get("utter_action") or "")
        before = len(self.messages)
        await super().send_response(recipient_id, dict(message))
        if utter and not utter.startswith(NOT_ANSWERS):
            for collected in self.messages[before:]:
                collected[ANSWER_FIELD] = True


class WebsiteInput(GuardedRestInput):
    @classmethod
    def name(cls) -> str:
        return "website"

    def collector(self) -> CollectingOutputChannel:
        return AnswerMarkingCollector()

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
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Expose-Headers": TOKEN_HEADER} if origin else {}

    @staticmethod
    def authorise(request: Request) -> Optional[HTTPResponse]:
        return None  # public: each conversation is guarded by its token instead

    async def handle(self, request: Request,
                     on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> HTTPResponse:
        problem, sender, text = self.validate(request)
        if problem is not None:
            return problem
        agent = request.app.ctx.agent
        try:
            refused, new = await conversation_access(agent, sender, request.json.get(TOKEN_FIELD))
            if refused is not None:
                return refused
            address = client_address(request)
            key = client_key(address) if address is not None else None
            if key is not None:
                waiting = rate_limited(key, sender, new)
                if waiting is not None:
                    return waiting
            if text.startswith(INTENT_MESSAGE_PREFIX):
                text = await offered_or_text(agent, sender, text)
        except Exception as failure:  # the tracker store or the limits' storage is down
            logger.error("website message refused, a store is unavailable: %s", type(failure).__name__)
            return error(503, "the assistant could not handle this message; please try again")
        reply = await self.run_turn(sender, text, on_new_message,
                                    {CLIENT_METADATA_KEY: key} if key is not None else None)
        if reply.status == 200:
            messages = without_button_links(json.loads(reply.body or b"[]"))
            kept = {k: v for k, v in reply.headers.items()
                    if k.lower() not in ("content-length", "content-type")}
            reply = response.json(messages, headers=kept)
        if new and reply.status == 200 and text:
            reply.headers[TOKEN_HEADER] = token_for(sender)
        return reply

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
            if request.method != "OPTIONS" or request.path not in (WEBHOOK_PATH, HANDOFF_PATH, FEEDBACK_PATH):
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
        site.add_route(preflight, FEEDBACK_PATH, methods=["OPTIONS"], name="website_feedback_preflight")

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
            if problem is None and "origin" not in request.headers:
                problem = error(403, "hand-off reports come from the widget only (no Origin header)")
            if problem is None and not token_valid(sender, request.json.get(TOKEN_FIELD)):
                problem = error(403, "not this conversation's token", code=TOKEN_REFUSED_CODE)
            if problem is None and choice:
                try:
                    await record_handoff(request.app.ctx.agent, sender, choice)
                except Exception as failure:  # the store is down: the visitor is unaffected
                    logger.error("hand-off choice not recorded: %s", type(failure).__name__)
                    problem = error(503, "not recorded")
            reply = problem or response.empty(status=204)
            reply.headers.update(self.cors_headers(request))
            return reply

        @site.route(FEEDBACK_PATH, methods=["POST"])
        async def feedback(request: Request) -> HTTPResponse:
            _cors_done_here(request)
            if not self.origin_allowed(request):
                return error(403, refused)
            problem, body = json_with_sender(request, '{"sender": "...", "rating": "down", "answer": "..."}')
            if problem is None and (body.get("rating") not in FEEDBACK_RATINGS
                                    or not isinstance(body.get("answer"), str)):
                problem = error(400, "'rating' must be up or down and 'answer' the answer's text")
            if problem is None and "origin" not in request.headers:
                problem = error(403, "feedback comes from the widget only (no Origin header)")
            if problem is None and not token_valid(body["sender"], request.json.get(TOKEN_FIELD)):
                problem = error(403, "not this conversation's token", code=TOKEN_REFUSED_CODE)
            if problem is None:
                try:
                    await record_feedback(request.app.ctx.agent, body["sender"], body["rating"],
                                          body["answer"])
                except Exception as failure:  # the store is down: the visitor is unaffected
                    logger.error("answer feedback not recorded: %s", type(failure).__name__)
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
            if filename == SETTINGS_FILE:
                headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
                if self.origin_allowed(request):  # another site may read it only if allowed
                    headers.update(self.cors_headers(request))
                return response.json(settings_json(current_clinic(), cached_knowledge()), headers=headers)
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


async def conversation_access(agent: Any, sender: str,
                              token: Any) -> Tuple[Optional[HTTPResponse], bool]:
    """(403 or None, whether this message starts a new conversation).

    With the conversation's token: go on. Without it: only a conversation that
    does not exist yet may start (its first reply carries the token)."""
    if token_valid(sender, token):
        return None, False
    if token is None and await stored_trackers(agent).retrieve(sender) is None:
        return None, True
    return error(403, "this conversation needs its token; start a new chat",
                 code=TOKEN_REFUSED_CODE), False


def stored_trackers(agent: Any) -> Any:
    """The tracker store itself: Rasa's fail-safe wrapper answers "no such
    conversation" when the store is down, which must not pass for a new one."""
    store = agent.tracker_store
    return getattr(store, "_tracker_store", store)


def rate_limited(key: str, sender: str, new: bool) -> Optional[HTTPResponse]:
    """A 429 when this client or conversation is over one of its limits."""
    limiter = limiter_for(current_clinic().rate_limits)
    checks = [(MESSAGES_PER_IP, key), (MESSAGES_PER_CONVERSATION, sender)]
    if new:
        checks.insert(0, (NEW_CONVERSATIONS_PER_IP, key))
    for name, subject in checks:
        retry_after = limiter.hit(name, subject)
        if retry_after is not None:
            # DEBUG: a flood of refused requests must not become a flood of log lines
            logger.debug("website request over its rate limit (%s)", name)
            reply = error(429, "too many messages; please wait a moment", code=RATE_LIMITED_CODE,
                          retry_after=retry_after)
            reply.headers["Retry-After"] = str(retry_after)
            return reply
    return None


def offered_payloads(events: Iterable[Any]) -> List[str]:
    """The button payloads of the bot's latest turn (what the widget shows)."""
    payloads: List[str] = []
    for event in reversed(list(events)):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, BotUttered):
            payloads += [str(b.get("payload", "")) for b in (event.data or {}).get("buttons") or []
                         if isinstance(b, dict)]
    return payloads


async def offered_or_text(agent: Any, sender: str, text: str) -> str:
    """`text` if the bot just offered it as a button; otherwise the same words as
    plain text, so that nobody can pick an intent (/emergency, /forget_me,
    /inform{...}) the model would not have chosen."""
    clinic = current_clinic()
    if text in [b["payload"] for b in starter_buttons(clinic.widget, cached_knowledge())]:
        return text  # the welcome screen's starter questions (FAQ topics only)
    tracker = await stored_trackers(agent).retrieve(sender)
    if tracker is not None and text in offered_payloads(tracker.events):
        return text
    return text.lstrip(INTENT_MESSAGE_PREFIX).strip()


async def record_handoff(agent: Any, sender: str, choice: str) -> bool:
    """Add the choice to the conversation (a slot event); not for unknown ones."""
    async with agent.lock_store.lock(sender):
        tracker = await agent.tracker_store.retrieve(sender)
        if tracker is None:
            return False
        tracker.update(SlotSet(HANDOFF_SLOT, choice))
        await agent.tracker_store.save(tracker)
        return True


def rated_answer(events: Iterable[Any], shown: str) -> Optional[str]:
    """The response name of the bot message the widget showed as `shown` (the
    latest one with that text, as the website channel sent it), if any."""
    for event in reversed(list(events)):
        if not isinstance(event, BotUttered) or not event.text:
            continue
        buttons = (event.data or {}).get("buttons") or []
        [sent] = without_button_links([{"text": event.text, "buttons": buttons}])
        if sent["text"] == shown.strip():
            return str((event.metadata or {}).get("utter_action") or "")
    return None


async def record_feedback(agent: Any, sender: str, rating: str, shown: str) -> bool:
    """Add "up:<utter action>" / "down:<utter action>" to the conversation (a
    slot event); nothing for an unknown conversation or an answer it never got."""
    async with agent.lock_store.lock(sender):
        tracker = await agent.tracker_store.retrieve(sender)
        if tracker is None:
            return False
        answer = rated_answer(tracker.events, shown)
        if answer is None:
            return False
        tracker.update(SlotSet(SLOT_ANSWER_FEEDBACK, f"{rating}:{answer}"))
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
            keep_message_text_out_of_logs()  # after Rasa set up its logging and warnings

        app.register_listener(put_first, "before_server_start")
        return super().register(app, {**options, "url_prefix": None})
