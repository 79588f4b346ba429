"""The staff console's doors, over HTTP against the real server (the session's `stack`):
every /staff route refuses a visitor who isn't signed in, a form post without
the CSRF token gets 403, an idle session expires, and the cookie is locked down."""

from __future__ import annotations

import re
import time
from typing import Any, Iterator, List, Tuple
from unittest import mock

import pytest
import requests
from sanic import Sanic

from assistant.staff.routes import PUBLIC_ROUTES, Paths, StaffConsole, staff_routes
from assistant.staff.sessions import COOKIE_NAME, CSRF_FIELD, SECRET_FILE_NAME, SessionCodec, idle_seconds
from tests.helpers.staff import HTML, add_account, csrf_in, http_sign_in

EMAIL = "routes@clinic.example"
PASSWORD = "routes test password"


def session_codec(stack: Any) -> SessionCodec:
    """The running server's cookie codec, from the secret it generated next to its tracker store."""
    secret = stack.settings.tracker_db.with_name(SECRET_FILE_NAME).read_text(encoding="ascii").strip()
    return SessionCodec(secret, idle_seconds())


@pytest.fixture(scope="module")
def account(stack: Any) -> Iterator[None]:
    add_account(stack, EMAIL, PASSWORD)
    yield


def console_routes() -> List[Tuple[str, Tuple[str, ...]]]:
    """(path, methods) of every route the console's blueprint adds to an app."""
    app = Sanic("staff_routes_listing")
    app.blueprint(StaffConsole().blueprint(lambda message: None))  # type: ignore[arg-type,return-value]
    return staff_routes(app)


def concrete(path: str) -> str:
    return re.sub(r"<[^>]+>", "1", path)


def test_every_staff_route_but_sign_in_refuses_a_visitor_who_is_not_signed_in(stack: Any) -> None:
    routes = console_routes()
    paths = {path for path, _ in routes}
    assert Paths.inbox in paths and Paths.export in paths and len(paths) >= 10
    assert paths >= PUBLIC_ROUTES
    checked = 0
    for path, methods in routes:
        for method in methods:
            if path in PUBLIC_ROUTES:
                continue
            url = f"{stack.url}{concrete(path)}"
            as_api = requests.request(method, url, allow_redirects=False, timeout=30,
                                      headers={"Accept": "application/json"}, data={"action": "done"})
            assert as_api.status_code == 401, (method, path, as_api.status_code)
            as_page = requests.request(method, url, allow_redirects=False, timeout=30, headers=HTML)
            assert as_page.status_code in (302, 303), (method, path, as_page.status_code)
            assert as_page.headers["Location"].startswith(Paths.signin)
            assert "Content-Security-Policy" in as_page.headers
            checked += 1
    assert checked >= 10
    # A forged cookie is no better than none.
    forged = requests.get(f"{stack.url}{Paths.summary}", cookies={COOKIE_NAME: "eyJjIjoieCIsImEiOjF9.x.y"},
                          timeout=30)
    assert forged.status_code == 401


def test_the_sign_in_page_is_strict_and_sets_a_locked_down_cookie(stack: Any) -> None:
    reply = requests.get(f"{stack.url}{Paths.signin}", headers=HTML, timeout=30)
    assert reply.status_code == 200 and "<form" in reply.text
    policy = reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "unsafe" not in policy
    assert "<script" not in reply.text and "http://" not in reply.text.replace(stack.url, "")
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/staff" in cookie
    assert "Secure" not in cookie  # plain HTTP here...
    behind_https = requests.get(f"{stack.url}{Paths.signin}", timeout=30,
                                headers={**HTML, "X-Forwarded-Proto": "https"})
    assert "Secure" in behind_https.headers["Set-Cookie"]  # ...Secure behind the HTTPS proxy
    secret = stack.settings.tracker_db.with_name(SECRET_FILE_NAME)
    assert secret.stat().st_mode & 0o777 == 0o600


def test_a_post_without_the_csrf_token_gets_403(stack: Any, account: None) -> None:
    client, csrf = http_sign_in(stack, EMAIL, PASSWORD)
    without = client.post(f"{stack.url}{Paths.status_of(1)}", data={"action": "done"}, headers=HTML,
                          allow_redirects=False, timeout=30)
    assert without.status_code == 403
    wrong = client.post(f"{stack.url}{Paths.signout}", data={CSRF_FIELD: csrf[::-1]}, headers=HTML,
                        allow_redirects=False, timeout=30)
    assert wrong.status_code == 403
    assert client.get(f"{stack.url}{Paths.summary}", timeout=30).status_code == 200  # still signed in
    anonymous = requests.Session()
    anonymous.get(f"{stack.url}{Paths.signin}", timeout=30)
    no_token = anonymous.post(f"{stack.url}{Paths.signin}", data={"email": EMAIL, "password": PASSWORD},
                              allow_redirects=False, timeout=30)
    assert no_token.status_code == 403  # the sign-in form too
    copied = client.cookies.get(COOKIE_NAME)
    signed_out = client.post(f"{stack.url}{Paths.signout}", data={CSRF_FIELD: csrf}, headers=HTML,
                             allow_redirects=False, timeout=30)
    assert signed_out.status_code == 303
    assert client.get(f"{stack.url}{Paths.summary}", timeout=30).status_code == 401
    # A copy of the cookie taken before signing out is no use either.
    assert requests.get(f"{stack.url}{Paths.summary}", cookies={COOKIE_NAME: copied},
                        timeout=30).status_code == 401


def test_an_idle_session_expires(stack: Any, account: None) -> None:
    client, _ = http_sign_in(stack, EMAIL, PASSWORD)
    codec = session_codec(stack)
    session, expired = codec.loads(client.cookies.get(COOKIE_NAME))
    assert session is not None and session.account_id is not None and not expired
    with mock.patch("time.time", return_value=time.time() - idle_seconds() - 60):
        stale = codec.dumps(session)  # signed by the server's key, last used beyond the idle timeout
    stale_client = requests.Session()
    stale_client.cookies.set(COOKIE_NAME, stale)
    assert stale_client.get(f"{stack.url}{Paths.summary}", timeout=30).status_code == 401
    page = stale_client.get(f"{stack.url}{Paths.inbox}", headers=HTML, allow_redirects=False, timeout=30)
    assert page.status_code == 303 and page.headers["Location"] == f"{Paths.signin}?expired=1"
    assert "session ended" in stale_client.get(f"{stack.url}{page.headers['Location']}", timeout=30).text
    assert client.get(f"{stack.url}{Paths.summary}", timeout=30).status_code == 200  # the fresh one works


def test_after_signing_in_staff_land_on_the_page_they_asked_for_and_only_a_console_page(
        stack: Any, account: None) -> None:
    wanted = f"{Paths.inbox}?show=all&q=CB-1"  # the link in an e-mail alert
    client = requests.Session()
    refused = client.get(f"{stack.url}{wanted}", headers=HTML, allow_redirects=False, timeout=30)
    assert refused.status_code == 303
    form = client.get(f"{stack.url}{refused.headers['Location']}", headers=HTML, timeout=30)
    assert 'name="next" value="/staff/requests?show=all&amp;q=CB-1"' in form.text
    for asked, lands in ((wanted, wanted), ("https://evil.example/", Paths.inbox),
                         ("//evil.example/staff/", Paths.inbox), ("/staff/../elsewhere", Paths.inbox)):
        form = client.get(f"{stack.url}{Paths.signin}", headers=HTML, timeout=30)
        reply = client.post(f"{stack.url}{Paths.signin}", headers=HTML, allow_redirects=False, timeout=30,
                            data={CSRF_FIELD: csrf_in(form.text), "email": EMAIL, "password": PASSWORD,
                                  "next": asked})
        assert reply.status_code == 303 and reply.headers["Location"] == lands, asked
