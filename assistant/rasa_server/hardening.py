"""The Rasa server's hardening (issue 16):

* Sanic's HTTP/1 transport gets framing checks, read deadlines and a connection
  cap (assistant/shared/transport.py), and a worker that dies is replaced
  (assistant/rasa_server/worker_pool.py);
* while the action server is down, custom actions answer "try again in a
  moment" instead of nothing (assistant/rasa_server/action_fallback.py);
* `/` says the server runs without naming Rasa's version.

Every patch is checked against the installed Rasa and Sanic versions first
(assistant/shared/patching.py).
"""

from __future__ import annotations

import sys
from typing import Any

from assistant.shared.patching import replace

ROOT_TEXT = "The assistant is running."


def hide_version_at_root() -> None:
    """Rasa's `/` answers "Hello from Rasa: 3.6.21": a version is a free hint
    for an attacker looking for known bugs. Same route, no version."""
    import rasa.server
    from sanic import response

    def add_root_route(app: Any) -> None:
        @app.get("/")
        async def hello(request: Any) -> Any:
            return response.text(ROOT_TEXT)

    replace(rasa.server, "add_root_route", add_root_route)


def harden_http() -> None:
    """Every Sanic app Rasa configures gets the transport limits (from the
    environment) before it runs; a bad limit stops start-up with its name."""
    import rasa.core.run

    from assistant.rasa_server import worker_pool
    from assistant.shared import transport

    try:
        limits = transport.TransportLimits.from_env()
    except ValueError as error:
        print(f"Cannot start: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    transport.patch_sanic()
    worker_pool.install()
    stock_configure_app = rasa.core.run.configure_app

    def configure_app(*args: Any, **kwargs: Any) -> Any:
        app = stock_configure_app(*args, **kwargs)
        transport.install(app, limits)
        return app

    replace(rasa.core.run, "configure_app", configure_app)


def apply_hardening() -> None:
    from assistant.rasa_server import action_fallback

    hide_version_at_root()
    harden_http()
    action_fallback.install()
