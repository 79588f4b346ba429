"""The staff console's tables, in the requests database next to ``callback_requests``.

They are declared on the same SQLAlchemy ``Base`` as the call-back requests
(assistant/callback_requests/store.py), so they live wherever ``REQUESTS_DB_URL`` points
(SQLite or PostgreSQL) and a staff tool and the bot see the same accounts.
``ensure_tables`` creates only these tables, privately (umask 077), because
the console may be used before the bot has stored its first request.

* ``staff_accounts``: one row per person, the Argon2id hash and nothing else
  secret;
* ``callback_request_updates`` (declared in assistant/callback_requests/store.py, which
  deletes them with their request however it is deleted): each status change
  of a request ("called", "done", "reopened") with who, when and a note;
* ``staff_audit``: who signed in (or failed to), who changed or deleted which
  request, when. It names requests by number only, so it may outlive them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import Column, DateTime, Integer, String
from sqlalchemy.engine import Engine

from assistant.callback_requests.store import Base, CallbackStore, RequestUpdate, utcnow
from assistant.shared.private_files import private_umask

EMAIL_CHARS = 320


class StaffAccount(Base):
    __tablename__ = "staff_accounts"

    id = Column(Integer, primary_key=True)
    email = Column(String(EMAIL_CHARS), unique=True, nullable=False)
    password_hash = Column(String(255), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    password_changed_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    # Raised at each sign-out: every session of the account signed before it ends,
    # so a copied cookie is worthless once its owner has signed out.
    session_epoch = Column(Integer, nullable=False, default=0)


class AuditEntry(Base):
    __tablename__ = "staff_audit"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    staff = Column(String(EMAIL_CHARS), nullable=False)
    action = Column(String(32), nullable=False)
    request_id = Column(Integer)
    detail = Column(String(EMAIL_CHARS))  # e.g. the account an administrator changed
    client = Column(String(64))  # a keyed hash of the address (assistant/rasa_server/conversation_token.py)


STAFF_TABLES = [StaffAccount.__table__, RequestUpdate.__table__, AuditEntry.__table__]


def ensure_tables(store: CallbackStore) -> Engine:
    """Create the staff tables once per store (and process); returns its engine."""
    _create(store)
    return store.engine


@cache
def _create(store: CallbackStore) -> None:
    if store.url.startswith("sqlite:///"):
        Path(store.url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    with private_umask():
        Base.metadata.create_all(store.engine)  # ours, and the requests' if this comes first
