"""Staff accounts and signing in to the console, over HTTP and in the browser."""

from __future__ import annotations

import contextlib
import re
from typing import Any, Tuple

import requests

from assistant.callback_requests.store import store_for
from assistant.staff.accounts import AccountError, Accounts
from assistant.staff.routes import Paths
from assistant.staff.sessions import CSRF_FIELD

EMAIL = "reception@clinic.example"
PASSWORD = "reception test password"
HTML = {"Accept": "text/html,application/xhtml+xml"}


def sign_in(page: Any, stack: Any, email: str, password: str) -> None:
    page.goto(f"{stack.url}/staff/")
    assert page.url.endswith(Paths.signin)  # sent to sign in first
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def add_account(stack: Any, email: str, password: str) -> None:
    with contextlib.suppress(AccountError):  # another test module of this session made it
        Accounts(store_for(stack.settings.extra_env["REQUESTS_DB_URL"])).add(email, password)


def csrf_in(page: str) -> str:
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page)
    assert found, "no CSRF token in the form"
    return found.group(1)


def http_sign_in(stack: Any, email: str, password: str) -> Tuple[requests.Session, str]:
    """A signed-in HTTP client and its CSRF token."""
    client = requests.Session()
    form = client.get(f"{stack.url}{Paths.signin}", headers=HTML, timeout=30)
    reply = client.post(f"{stack.url}{Paths.signin}", headers=HTML, timeout=30, allow_redirects=False,
                        data={CSRF_FIELD: csrf_in(form.text), "email": email, "password": password})
    assert reply.status_code == 303 and reply.headers["Location"] == Paths.inbox, reply.text[:300]
    inbox = client.get(f"{stack.url}{Paths.inbox}", headers=HTML, timeout=30)
    assert inbox.status_code == 200
    return client, csrf_in(inbox.text)
