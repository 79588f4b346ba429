"""Conversation tokens: only the visitor who started a conversation can continue it.

The sender id used to be the only credential: anyone who knew or guessed one
could send ``/affirm`` as that visitor, read their name and e-mail back from the
summary, submit their request or delete their conversation. Now the website
channel answers the first message of a new conversation with a token
(``X-Conversation-Token``) and refuses every later message, and every hand-off
report, that does not carry it.

The token is an HMAC-SHA256 of the sender id under a server secret, so no
token is stored anywhere and every worker and every server that shares the
secret can check it. The secret comes from ``CONVERSATION_SECRET`` (set it on
every server of a cluster that spans machines), else from the file
``conversation.key`` next to the tracker store (``var/`` by default), which the
first process that needs it creates with mode 600.

The same secret keys the hash of a visitor's IP address that rate limits and
the call-back limit use (``client_key``): no raw address is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Optional

from assistant.paths import beside_tracker_db
from assistant.shared.private_files import make_private_dir, private_umask

SECRET_ENV = "CONVERSATION_SECRET"
SECRET_FILE_NAME = "conversation.key"
TOKEN_HEADER = "X-Conversation-Token"
TOKEN_FIELD = "token"  # in the JSON body of the widget's requests
CLIENT_METADATA_KEY = "client"  # message metadata: client_key() of the visitor's address
MIN_SECRET_CHARS = 32
_TOKEN_CONTEXT = b"conversation:"
_CLIENT_CONTEXT = b"client:"


class SecretError(RuntimeError):
    """The conversation secret is unusable; the message says why."""


def secret_file() -> Path:
    """Next to the tracker store (the launcher exports TRACKER_DB), i.e. var/ by default."""
    return beside_tracker_db(SECRET_FILE_NAME)


def _read_or_create(path: Path) -> bytes:
    if not path.exists():
        make_private_dir(path.parent)
        candidate = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with private_umask():
            candidate.write_text(secrets.token_urlsafe(48), encoding="ascii")
        try:
            os.link(candidate, path)  # atomic: of two workers starting together, one wins
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    value = path.read_text(encoding="ascii").strip()
    if len(value) < MIN_SECRET_CHARS:
        raise SecretError(f"{path} holds fewer than {MIN_SECRET_CHARS} characters")
    return value.encode()


@lru_cache(maxsize=1)
def server_secret() -> bytes:
    from_env = os.environ.get(SECRET_ENV)
    if from_env is not None:
        if len(from_env.strip()) < MIN_SECRET_CHARS:
            raise SecretError(f"{SECRET_ENV} must be at least {MIN_SECRET_CHARS} characters")
        return from_env.strip().encode()
    return _read_or_create(secret_file())


def _mac(context: bytes, value: str, secret: Optional[bytes] = None) -> bytes:
    return hmac.new(secret or server_secret(), context + value.encode(), hashlib.sha256).digest()


def token_for(sender: str, secret: Optional[bytes] = None) -> str:
    """The conversation's token (under `secret`, by default this server's)."""
    return base64.urlsafe_b64encode(_mac(_TOKEN_CONTEXT, sender, secret)).decode().rstrip("=")


def token_valid(sender: str, token: Optional[object]) -> bool:
    return isinstance(token, str) and hmac.compare_digest(token.encode(), token_for(sender).encode())


def client_key(address: str) -> str:
    """A stable pseudonym for an IP address (rate-limit keys, message metadata)."""
    return _mac(_CLIENT_CONTEXT, address).hex()[:20]
