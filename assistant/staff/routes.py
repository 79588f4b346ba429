"""The staff console's pages, as a blueprint of the Rasa server (credentials.yml).

Registered like the website channel (assistant/rasa_server/website_channel.py): Rasa builds every
input channel's blueprint into its Sanic app, so the console is served by the
bot's own process on its own port, and one HTTPS proxy serves both. Rasa would
mount a channel under /webhooks/staff/; ``_StaffBlueprint`` keeps /staff.

Every route but the sign-in page (``PUBLIC_ROUTES``) goes through
``signed_in``: without a valid session a browser asking for HTML is sent to the
sign-in page, anything else gets 401; a POST without the session's CSRF token
gets 403. Signed-in responses carry the cookie again, which restarts the idle
timeout (assistant/staff/sessions.py).

Pages are server-rendered (Jinja2, autoescaped: visitors' text is never
markup), with our own CSS inline (allowed by its hash) and one small script
(staff.js, the live count and list). The Content-Security-Policy allows
nothing else: no third-party script, style, font or connection. Pages hold
patients' details, so nothing is cached.

Database work and password hashing run in the default executor, off the event
loop that also answers the chat.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, partial, wraps
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant.callback_requests.store import current_store
from assistant.rasa_server.conversation_token import client_key
from assistant.rasa_server.rest_channel import client_address
from assistant.settings.clinic import current_clinic
from assistant.staff.accounts import Account, Accounts
from assistant.staff.export import CSV_MEDIA_TYPE, csv_text
from assistant.staff.formatting import CALLED, DONE, OPEN, clinic_timestamp, describe_change
from assistant.staff.inbox import (
    EXPORTED,
    SHOW_ALL,
    SHOW_CHOICES,
    SHOW_DONE,
    SHOW_OPEN,
    SIGN_IN_FAILED,
    SIGNED_IN,
    SIGNED_OUT,
    Filters,
    Inbox,
)
from assistant.staff.report import ReportFailed, report_html, review_yaml
from assistant.staff.sessions import (
    COOKIE_NAME,
    CSRF_FIELD,
    SessionData,
    codec,
    cookie_settings,
    csrf_valid,
    throttle,
)

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
SIGN_IN_THROTTLED = "sign_in_throttled"
REPORT_DOWNLOADED = "report_downloaded"
REVIEW_DOWNLOADED = "review_downloaded"
FRAMED_TEXT_POLICY = "default-src 'none'; frame-ancestors 'self'"
# What each status button sets.
ACTIONS = {"called": CALLED, "done": DONE, "reopen": OPEN}
SHOW_LABELS = {SHOW_OPEN: "Open (new and called)", SHOW_DONE: "Done", SHOW_ALL: "All"}
MAX_QUERY_CHARS = 200
MAX_BACK_CHARS = 600
HTML_TYPE = "text/html"
T = TypeVar("T")


class Paths:
    """Every URL of the console, in one place (the templates use these too)."""

    home = "/staff"
    signin = "/staff/signin"
    signout = "/staff/signout"
    inbox = "/staff/requests"
    rows = "/staff/requests/rows"
    export = "/staff/requests.csv"
    summary = "/staff/api/summary"
    audit = "/staff/audit"
    report = "/staff/report"
    report_file = "/staff/report/file"
    review_file = "/staff/report/unanswered.yml"
    script = "/staff/staff.js"

    @staticmethod
    def status_of(request_id: int) -> str:
        return f"/staff/requests/{request_id}/status"

    @staticmethod
    def delete_of(request_id: int) -> str:
        return f"/staff/requests/{request_id}/delete"


PATHS = Paths()
# The only routes a visitor who is not signed in may use (GET the form, POST it).
PUBLIC_ROUTES = frozenset({Paths.signin})


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)


@cache
def _css() -> Tuple[str, str]:
    """The stylesheet and its CSP hash (it is inlined, so no route serves it)."""
    css = (TEMPLATES / "staff.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return css, f"'sha256-{digest}'"


def security_headers() -> Dict[str, str]:
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'self'; style-src {_css()[1]}; connect-src 'self'; "
            "img-src 'self' data:; frame-src 'self'; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'none'"),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """Run blocking work (database, Argon2) in the executor, not on the chat's loop."""
    return await asyncio.get_running_loop().run_in_executor(None, partial(function, *args))


@cache
def _accounts() -> Accounts:
    return Accounts(current_store())


@cache
def _inbox() -> Inbox:
    return Inbox(current_store())


def _zone() -> ZoneInfo:
    return ZoneInfo(current_clinic().timezone)


def _client(request: Request) -> str:
    address = client_address(request)
    return client_key(address) if address else "local"


def _https(request: Request) -> bool:
    return request.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def _wants_html(request: Request) -> bool:
    return HTML_TYPE in request.headers.get("accept", "")


def _finish(request: Request, reply: HTTPResponse, session: Optional[SessionData]) -> HTTPResponse:
    """Security headers on every reply (unless a route set its own); the (re-signed)
    session cookie when there is one."""
    for name, value in security_headers().items():
        reply.headers.setdefault(name, value)
    if session is not None:
        reply.cookies[COOKIE_NAME] = codec().dumps(session)
        for key, value in cookie_settings(_https(request), codec().max_age).items():
            reply.cookies[COOKIE_NAME][key] = value
    return reply


def _end_session(request: Request, reply: HTTPResponse) -> HTTPResponse:
    reply.headers.update(security_headers())
    reply.cookies[COOKIE_NAME] = ""
    for key, value in cookie_settings(_https(request), 0).items():
        reply.cookies[COOKIE_NAME][key] = value
    return reply


def render(template: str, session: SessionData, staff: Optional[Account] = None, **values: Any) -> str:
    return _environment().get_template(template).render(
        css=_css()[0], paths=PATHS, csrf=session.csrf, csrf_field=CSRF_FIELD,
        staff=staff.email if staff else "", clinic_name=current_clinic().name,
        describe=describe_change, **values)


@dataclass(frozen=True)
class Signed:
    """A signed-in request's account and session."""

    account: Account
    session: SessionData


Handler = Callable[..., Awaitable[HTTPResponse]]


def signed_in(handler: Callable[..., Awaitable[HTTPResponse]]) -> Handler:
    """Only for a signed-in staff member; POSTs need the session's CSRF token too."""

    @wraps(handler)
    async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
        session, expired = codec().loads(request.cookies.get(COOKIE_NAME))
        account = None
        if session is not None and session.account_id is not None:
            account = await off_loop(_accounts().by_id, session.account_id)
        if session is None or account is None or account.version != session.version:
            if _wants_html(request):
                here = request.path + (f"?{request.query_string}" if request.query_string else "")
                back = {"next": here} if here not in (Paths.home, f"{Paths.home}/", Paths.inbox) else {}
                if expired:
                    back["expired"] = "1"
                target = f"{Paths.signin}?{urlencode(back)}" if back and request.method == "GET" \
                    else Paths.signin
                return _finish(request, response.redirect(target, status=303), None)
            return _finish(request, response.json({"error": "sign in first"}, status=401), None)
        if request.method == "POST" and not csrf_valid(session, request.form.get(CSRF_FIELD)):
            return _finish(request, response.text("Forbidden: the form's security token is missing or "
                                                  "out of date. Reload the page and try again.",
                                                  status=403), session)
        reply = await handler(request, Signed(account, session), *args, **kwargs)
        ended = COOKIE_NAME in reply.cookies  # sign-out cleared it: not signed again
        return _finish(request, reply, None if ended else session)

    return guarded


def _filters(request: Request) -> Filters:
    show = request.args.get("show", SHOW_OPEN)
    return Filters(show=show if show in SHOW_CHOICES else SHOW_OPEN,
                   text=(request.args.get("q") or "")[:MAX_QUERY_CHARS],
                   since=_date(request.args.get("since")), until=_date(request.args.get("until")))


def _date(value: Optional[str]) -> Optional[date]:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _query(filters: Filters) -> str:
    values = {"show": filters.show if filters.show != SHOW_OPEN else "", "q": filters.text,
              "since": filters.since.isoformat() if filters.since else "",
              "until": filters.until.isoformat() if filters.until else ""}
    encoded = urlencode({key: value for key, value in values.items() if value})
    return f"?{encoded}" if encoded else ""


def _back(request: Request, anchor: str = "") -> HTTPResponse:
    """Back to the list with the filters it had (only ever our own list: no open redirect)."""
    back = request.form.get("back") or ""
    if not back.startswith("?") or len(back) > MAX_BACK_CHARS or "#" in back:
        back = ""
    return response.redirect(f"{Paths.inbox}{back}{anchor}", status=303)


@cache
def _report_policy() -> str:
    """The report's own page: no script at all, its one inline stylesheet (by hash)
    and embedded PNGs; framed only by the console."""
    from assistant.insights.html import STYLE  # (matplotlib: loaded when a report is first asked for)

    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    return (f"default-src 'none'; img-src data:; style-src 'sha256-{digest}'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'self'")


def _period(request: Request) -> Tuple[date, date]:
    """The report's days; by default this month so far. The clinic's days, as the report
    counts them (UTC's date can still be yesterday's)."""
    today = datetime.now(_zone()).date()
    until = _date(request.args.get("until")) or today
    since = _date(request.args.get("since")) or until.replace(day=1)
    return (since, until) if since <= until else (until, since)


def _next_page(value: Optional[str]) -> str:
    """Where to go after signing in: a console page asked for before (an e-mail's
    link to a request), never anywhere else (no open redirect)."""
    if value and value.startswith(Paths.home + "/") and not any(bad in value for bad in ("\\", "//", "..")) \
            and not value.startswith(Paths.signin) and len(value) <= MAX_BACK_CHARS:
        return value
    return Paths.inbox


def _sign_in_page(session: SessionData, message: str = "", email: str = "",
                  status: int = 200, next_page: str = "") -> HTTPResponse:
    return response.html(render("signin.html", session, title="Sign in", message=message, email=email,
                                next_page=_next_page(next_page),
                                open_count=0), status=status)


def build_blueprint() -> Blueprint:
    codec()  # the session secret and idle timeout are checked (and the secret made) at start-up
    console = _StaffBlueprint("staff_console")

    @console.route(Paths.signin, methods=["GET"])
    async def signin_form(request: Request) -> HTTPResponse:
        session, expired = codec().loads(request.cookies.get(COOKIE_NAME))
        if session is None or session.account_id is not None:
            session = SessionData.anonymous()  # a fresh CSRF token for the form
        message = ""
        if expired or request.args.get("expired"):
            message = "Your session ended because it was not used for a while. Please sign in again."
        elif request.args.get("signed_out"):
            message = "You have signed out."
        return _finish(request, _sign_in_page(session, message, next_page=request.args.get("next")), session)

    @console.route(Paths.signin, methods=["POST"])
    async def signin(request: Request) -> HTTPResponse:
        session, _ = codec().loads(request.cookies.get(COOKIE_NAME))
        if not csrf_valid(session, request.form.get(CSRF_FIELD)) or session is None:
            return _finish(request, response.text("Forbidden: reload the sign-in page and try again.",
                                                  status=403), None)
        email = (request.form.get("email") or "").strip()[:320]
        password = request.form.get("password") or ""
        next_page = _next_page(request.form.get("next"))
        address = client_address(request)
        wait = await off_loop(throttle().wait_seconds, email, address)
        if wait is not None:
            await off_loop(_inbox().record, email or "?", SIGN_IN_THROTTLED, None, None, _client(request))
            minutes = max(1, round(wait / 60))
            reply = _sign_in_page(session, f"Too many failed sign-ins. Please try again in {minutes} "
                                           f"minute{'s' if minutes > 1 else ''}.", email, status=429,
                                 next_page=next_page)
            reply.headers["Retry-After"] = str(wait)
            return _finish(request, reply, session)
        account = await off_loop(_accounts().verify, email, password)
        if account is None:
            await off_loop(throttle().failed, email, address)
            await off_loop(_inbox().record, email or "?", SIGN_IN_FAILED, None, None, _client(request))
            return _finish(request, _sign_in_page(session, "Wrong e-mail or password.", email, status=401,
                                                  next_page=next_page), session)
        await off_loop(_inbox().record, account.email, SIGNED_IN, None, None, _client(request))
        return _finish(request, response.redirect(next_page, status=303),
                       session.signed_in(account.id, account.version))

    @console.route(Paths.signout, methods=["POST"])
    @signed_in
    async def signout(request: Request, staff: Signed) -> HTTPResponse:
        await off_loop(_accounts().end_sessions, staff.account.id)
        await off_loop(_inbox().record, staff.account.email, SIGNED_OUT, None, None, _client(request))
        return _end_session(request, response.redirect(f"{Paths.signin}?signed_out=1", status=303))

    @console.route(Paths.home, methods=["GET"], strict_slashes=False)
    @signed_in
    async def home(request: Request, staff: Signed) -> HTTPResponse:
        return response.redirect(Paths.inbox, status=303)

    async def listing(request: Request, staff: Signed, template: str) -> HTTPResponse:
        filters = _filters(request)
        items = await off_loop(_inbox().views, _zone(), filters)
        summary = await off_loop(_inbox().summary)
        return response.html(render(
            template, staff.session, staff.account, title="Call-back requests", items=items,
            filters=filters, query=_query(filters), open_count=summary["open"], latest=summary["latest"],
            show_choices=[(value, SHOW_LABELS[value]) for value in SHOW_CHOICES]))

    @console.route(Paths.inbox, methods=["GET"])
    @signed_in
    async def inbox(request: Request, staff: Signed) -> HTTPResponse:
        return await listing(request, staff, "inbox.html")

    @console.route(Paths.rows, methods=["GET"])
    @signed_in
    async def rows(request: Request, staff: Signed) -> HTTPResponse:
        return await listing(request, staff, "rows.html")

    @console.route(Paths.summary, methods=["GET"])
    @signed_in
    async def summary(request: Request, staff: Signed) -> HTTPResponse:
        return response.json(await off_loop(_inbox().summary))

    @console.route("/staff/requests/<request_id:int>/status", methods=["POST"])
    @signed_in
    async def change_status(request: Request, staff: Signed, request_id: int) -> HTTPResponse:
        status = ACTIONS.get(request.form.get("action") or "")
        if status is None:
            return response.text("Unknown action.", status=400)
        note = request.form.get("note") or ""
        if not await off_loop(_inbox().set_status, request_id, status, staff.account.email, note,
                              _client(request)):
            return response.text("No such request (it may have been deleted).", status=404)
        return _back(request, f"#CB-{request_id}")

    @console.route("/staff/requests/<request_id:int>/delete", methods=["POST"])
    @signed_in
    async def delete(request: Request, staff: Signed, request_id: int) -> HTTPResponse:
        if not await off_loop(_inbox().delete, request_id, staff.account.email, _client(request)):
            return response.text("No such request (it may have been deleted already).", status=404)
        return _back(request)

    @console.route(Paths.export, methods=["GET"])
    @signed_in
    async def export(request: Request, staff: Signed) -> HTTPResponse:
        items = await off_loop(_inbox().views, _zone(), _filters(request))
        await off_loop(_inbox().record, staff.account.email, EXPORTED, None, f"{len(items)} requests",
                       _client(request))
        name = f"callback-requests-{datetime.now(_zone()).date().isoformat()}.csv"
        return response.text(csv_text(items), content_type=CSV_MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @console.route(Paths.audit, methods=["GET"])
    @signed_in
    async def audit(request: Request, staff: Signed) -> HTTPResponse:
        lines = await off_loop(_inbox().audit)
        summary = await off_loop(_inbox().summary)
        zone = _zone()
        return response.html(render("audit.html", staff.session, staff.account, title="Audit trail",
                                    lines=lines, open_count=summary["open"],
                                    when=lambda at: clinic_timestamp(at, zone)))

    @console.route(Paths.report, methods=["GET"])
    @signed_in
    async def report(request: Request, staff: Signed) -> HTTPResponse:
        since, until = _period(request)
        summary = await off_loop(_inbox().summary)
        query = "?" + urlencode({"since": since.isoformat(), "until": until.isoformat()})
        return response.html(render("report.html", staff.session, staff.account, title="Report",
                                    since=since.isoformat(), until=until.isoformat(), query=query,
                                    open_count=summary["open"]))

    @console.route(Paths.report_file, methods=["GET"])
    @signed_in
    async def report_file(request: Request, staff: Signed) -> HTTPResponse:
        since, until = _period(request)
        try:
            html = await report_html(since, until)
        except (ReportFailed, OSError) as error:  # the store is down, or not a tracker store
            logger.error("staff console: the report failed: %s", error)
            return response.text(f"The report could not be made ({error}). Please try again later.",
                                 status=503, headers={"X-Frame-Options": "SAMEORIGIN",  # shown in the frame
                                                      "Content-Security-Policy": FRAMED_TEXT_POLICY})
        headers = {}
        if request.args.get("download"):
            await off_loop(_inbox().record, staff.account.email, REPORT_DOWNLOADED, None,
                           f"{since.isoformat()} to {until.isoformat()}", _client(request))
            headers["Content-Disposition"] = (f'attachment; filename="report-{since.isoformat()}-to-'
                                              f'{until.isoformat()}.html"')
        # Its own policy (kept by _finish): framed by the console's report page.
        headers.update({"Content-Security-Policy": _report_policy(), "X-Frame-Options": "SAMEORIGIN"})
        return response.html(html, headers=headers)

    @console.route(Paths.review_file, methods=["GET"])
    @signed_in
    async def review_file(request: Request, staff: Signed) -> HTTPResponse:
        since, until = _period(request)
        try:
            text = await review_yaml(since, until)
        except (ReportFailed, OSError) as error:
            logger.error("staff console: the review list failed: %s", error)
            return response.text(f"The review list could not be made ({error}). Please try again later.",
                                 status=503)
        await off_loop(_inbox().record, staff.account.email, REVIEW_DOWNLOADED, None,
                       f"{since.isoformat()} to {until.isoformat()}", _client(request))
        name = f"unanswered-{since.isoformat()}-to-{until.isoformat()}.yml"
        return response.text(text, content_type="text/yaml; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @console.route(Paths.script, methods=["GET"])
    @signed_in
    async def script(request: Request, staff: Signed) -> HTTPResponse:
        return response.text((TEMPLATES / "staff.js").read_text(encoding="utf-8"),
                             content_type="text/javascript; charset=utf-8")

    return console


def staff_routes(app: Any) -> List[Tuple[str, Tuple[str, ...]]]:
    """(path, methods) of every /staff route registered in `app` (for tests and checks)."""
    found = []
    for route in app.router.routes:
        path = "/" + route.path.lstrip("/")
        if path == Paths.home or path.startswith(Paths.home + "/"):
            found.append((path, tuple(sorted(route.methods))))
    return sorted(set(found))


class _StaffBlueprint(Blueprint):
    """Rasa mounts every channel under /webhooks/<name>/; the console keeps /staff."""

    def register(self, app: Any, options: Dict[str, Any]) -> Any:
        return super().register(app, {**options, "url_prefix": None})


class StaffConsole(InputChannel):
    """Not a chat channel: it only adds the console's routes to the server (credentials.yml)."""

    @classmethod
    def name(cls) -> str:
        return "staff"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        return build_blueprint()


