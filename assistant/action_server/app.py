"""The action server: rasa_sdk's app, on loopback, behind the shared secret.

    python -m assistant.action_server.app --port 5055     # what the launcher starts

rasa_sdk's own command line (`python -m rasa_sdk`) always listens on every
interface, allows any CORS origin and asks for no credentials. This starts the
same app (same routes, same executor, same plugins) from code instead:

* it listens on ``ACTIONS_HOST`` (default 127.0.0.1: only the Rasa server on
  the same machine reaches it);
* every request but ``/health`` (a liveness probe that reveals nothing) needs
  ``Authorization: Bearer <ACTION_SERVER_TOKEN>`` (assistant/shared/action_secret.py):
  401 without it, 403 with a wrong one, /actions and /webhook included;
* no CORS: no browser page has any business calling it;
* the same HTTP limits as the Rasa server (assistant/shared/transport.py).
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys
from typing import Any, List, Optional

from assistant.shared.patching import exit_if_unsupported

DEFAULT_HOST = "127.0.0.1"
HOST_ENV = "ACTIONS_HOST"
OPEN_PATHS = frozenset({"/health"})
ACTIONS_PACKAGE = "actions"


def refusal(request: Any, secret: str) -> Optional[Any]:
    """The 401/403 response for a request without the right secret, else None."""
    from sanic import response

    from assistant.shared.action_secret import AUTH_SCHEME

    if request.path in OPEN_PATHS:
        return None
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != AUTH_SCHEME.lower() or not given:
        return response.json({"error": "authentication required"}, status=401,
                             headers={"WWW-Authenticate": AUTH_SCHEME})
    if not hmac.compare_digest(given.strip().encode(), secret.encode()):
        return response.json({"error": "forbidden"}, status=403)
    return None


def create_app(secret: str, actions: str = ACTIONS_PACKAGE) -> Any:
    from rasa_sdk.endpoint import create_app as sdk_create_app
    from rasa_sdk.plugin import plugin_manager

    from assistant.shared import transport

    app = sdk_create_app(actions, cors_origins="")

    @app.middleware("request")
    async def require_secret(request: Any) -> Optional[Any]:
        return refusal(request, secret)

    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    transport.install(app)
    return app


def main(argv: Optional[List[str]] = None) -> int:
    exit_if_unsupported("rasa-sdk", "sanic")
    from rasa_sdk import utils

    from assistant.ops.launcher import Settings
    from assistant.shared import transport
    from assistant.shared.action_secret import SecretError, action_secret

    parser = argparse.ArgumentParser(description="Run the action server (loopback, shared secret).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("ACTIONS_PORT") or 5055))
    parser.add_argument("--host", default=os.environ.get(HOST_ENV) or DEFAULT_HOST,
                        help=f"interface to listen on ({HOST_ENV}; default {DEFAULT_HOST})")
    parser.add_argument("--actions", default=ACTIONS_PACKAGE)
    args = parser.parse_args(argv)
    try:
        secret = action_secret(Settings.from_env().action_secret_file)
        transport.TransportLimits.from_env()
    except (SecretError, ValueError, OSError) as error:
        print(f"Cannot start the action server: {error}", file=sys.stderr, flush=True)
        return 2
    utils.configure_colored_logging(logging.INFO)
    utils.update_sanic_log_level()
    transport.patch_sanic()
    app = create_app(secret, args.actions)
    logging.getLogger(__name__).info("Action server listening on http://%s:%d", args.host, args.port)
    app.run(args.host, args.port, workers=utils.number_of_sanic_workers(), access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
