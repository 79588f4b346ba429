"""Durable storage of call-back requests (SQLAlchemy), with an outbox for the webhook.

A request is written, together with its outbox row, in one transaction *before*
the bot tells the visitor it was received. Its ``request_key`` is unique, so a
repeated confirmation (double click, client retry, action re-run) stores it once
and returns the first copy.

The database is SQLite by default (``var/requests.db``); ``REQUESTS_DB_URL``
takes any SQLAlchemy URL, e.g. ``postgresql://user@host/clinic``.

Abuse and privacy:

* ``open_request_for(contact)`` lets the bot keep one open request per contact
  (actions/callback.py: "we already have your request CB-12"), so nobody can
  have the clinic phone a stranger again and again;
* references are never reused: on SQLite the ids are AUTOINCREMENT (without
  it SQLite hands out the highest deleted id again: CB-167 was reused after
  its deletion), and a database made before is rebuilt that way once;
* deletions are scrubbed from the SQLite file and its WAL (assistant/shared/sqlite_hygiene.py).
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, declarative_base, declared_attr, sessionmaker

from assistant.paths import PROJECT_ROOT
from assistant.shared.private_files import private_umask
from assistant.shared.sqlite_hygiene import enable_secure_delete, scrub

logger = logging.getLogger(__name__)

DEFAULT_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'requests.db'}"

Base: Any = declarative_base()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class CallbackRequest(Base):
    __tablename__ = "callback_requests"
    __table_args__ = {"sqlite_autoincrement": True}  # a deleted reference is never handed out again

    id = Column(Integer, primary_key=True)
    request_key = Column(String(64), unique=True, nullable=False)
    conversation_id = Column(String(255), index=True, nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    status = Column(String(16), nullable=False, default="open")  # open | done
    closed_at = Column(DateTime(timezone=True))
    name = Column(String(100), nullable=False)
    contact = Column(String(320), nullable=False)  # E.164 phone or normalised email
    contact_type = Column(String(8), nullable=False)  # phone | email
    preferred_time = Column(String(200), nullable=False)
    reason = Column(String(500))
    consent_at = Column(DateTime(timezone=True), nullable=False)


class _OutboxColumns:
    """What every delivery channel's outbox records per request: one row each,
    retried with back-off until delivered."""

    id = Column(Integer, primary_key=True)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    delivered_at = Column(DateTime(timezone=True))
    last_error = Column(Text)

    @declared_attr
    def request_id(cls) -> Column:  # SQLAlchemy calls it on each table class
        return Column(Integer, ForeignKey("callback_requests.id", ondelete="CASCADE"),
                      unique=True, nullable=False)


class OutboxMessage(_OutboxColumns, Base):
    """One pending webhook notification per request (only when a webhook is configured)."""

    __tablename__ = "callback_outbox"


class EmailOutboxMessage(_OutboxColumns, Base):
    """One pending e-mail alert per request (only when clinic.yml sets notify_email).

    A table of its own rather than a second row in ``callback_outbox``: each
    channel is marked delivered on its own (an e-mail sent never re-sends the
    webhook, and the reverse), and existing databases need no migration.
    """

    __tablename__ = "callback_email_outbox"


class RequestUpdate(Base):
    """A status change staff made (assistant/staff/): "called", "done", "open" again,
    with who, when and their note. It is about the patient, so it is deleted with
    the request ("forget me", retention, the console's delete): see ``_delete``."""

    __tablename__ = "callback_request_updates"

    id = Column(Integer, primary_key=True)
    request_id = Column(Integer, index=True, nullable=False)
    at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    staff = Column(String(320), nullable=False)
    status = Column(String(16), nullable=False)  # the status it set: called | done | open
    note = Column(Text)


class StoreUnavailable(RuntimeError):
    """The database could not be reached or written; nothing was stored."""


@dataclass(frozen=True)
class CallbackDraft:
    """What the form collected, ready to store."""

    request_key: str
    conversation_id: str
    name: str
    contact: str
    contact_type: str
    preferred_time: str
    reason: Optional[str]


class CallbackStore:
    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=True, future=True)
        enable_secure_delete(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, future=True)
        self._schema_ready = False

    def _session(self) -> Session:
        if not self._schema_ready:
            try:
                if self.url.startswith("sqlite:///"):
                    Path(self.url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
                with private_umask():  # whoever creates the file (the bot, a staff tool): 600
                    Base.metadata.create_all(self.engine)
                self._autoincrement_ids()
            except (SQLAlchemyError, OSError) as error:
                raise StoreUnavailable(str(error)) from error
            self._schema_ready = True
        return self._sessions()

    def _autoincrement_ids(self) -> None:
        """Rebuild a callback_requests table made before ids were AUTOINCREMENT
        (SQLite only: PostgreSQL sequences never hand out an id twice)."""
        if self.engine.dialect.name != "sqlite":
            return
        table = CallbackRequest.__tablename__
        with self.engine.begin() as connection:
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar()
            if sql is None or "AUTOINCREMENT" in sql.upper():
                return
            new_sql = re.sub(r"^CREATE TABLE \S+", f"CREATE TABLE {table}_rebuilt", sql)
            new_sql = re.sub(r"\bid INTEGER NOT NULL,", "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,",
                             new_sql, count=1)
            new_sql = re.sub(r",\s*PRIMARY KEY \(id\)", "", new_sql, count=1)
            connection.exec_driver_sql(new_sql)
            connection.exec_driver_sql(f"INSERT INTO {table}_rebuilt SELECT * FROM {table}")
            connection.exec_driver_sql(f"DROP TABLE {table}")
            connection.exec_driver_sql(f"ALTER TABLE {table}_rebuilt RENAME TO {table}")
            for index in CallbackRequest.__table__.indexes:
                index.create(connection, checkfirst=True)
        logger.info("call-back request ids are now AUTOINCREMENT (table rebuilt once)")

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """A session in one transaction; any database failure becomes StoreUnavailable."""
        try:
            with self._session() as session, session.begin():
                yield session
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        try:
            with self._session() as session:
                yield session
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error

    # ---- requests ---------------------------------------------------------

    def open_request_for(self, contact: str) -> Optional[CallbackRequest]:
        with self._reading() as session:
            return session.scalars(
                select(CallbackRequest).where(CallbackRequest.contact == contact,
                                              CallbackRequest.status == "open")
                .order_by(CallbackRequest.id)
            ).first()

    def submit(self, draft: CallbackDraft, notify: bool,
               email: bool = False) -> Tuple[CallbackRequest, bool]:
        """Store a request (and its outbox rows: webhook if `notify`, e-mail alert if
        `email`) once. Returns (request, newly_created)."""
        request = CallbackRequest(
            request_key=draft.request_key,
            conversation_id=draft.conversation_id,
            name=draft.name,
            contact=draft.contact,
            contact_type=draft.contact_type,
            preferred_time=draft.preferred_time,
            reason=draft.reason,
            consent_at=utcnow(),
            created_at=utcnow(),
        )
        try:
            with self._session() as session, session.begin():
                session.add(request)
                session.flush()
                if notify:
                    session.add(OutboxMessage(request_id=request.id, next_attempt_at=utcnow()))
                if email:
                    session.add(EmailOutboxMessage(request_id=request.id, next_attempt_at=utcnow()))
            logger.info("call-back request %s stored", request.id)
            return request, True
        except IntegrityError:
            existing = self.find_by_key(draft.request_key)
            if existing is None:  # pragma: no cover - a constraint other than the key failed
                raise StoreUnavailable("the request could not be stored") from None
            logger.info("call-back request %s confirmed again; kept the first copy", existing.id)
            return existing, False
        except SQLAlchemyError as error:
            logger.error("call-back request store unavailable: %s", type(error).__name__)
            raise StoreUnavailable(str(error)) from error

    def find_by_key(self, request_key: str) -> Optional[CallbackRequest]:
        with self._reading() as session:
            return session.scalars(
                select(CallbackRequest).where(CallbackRequest.request_key == request_key)
            ).first()

    def requests(self, status: Optional[str] = None) -> List[CallbackRequest]:
        query = select(CallbackRequest).order_by(CallbackRequest.created_at, CallbackRequest.id)
        if status:
            query = query.where(CallbackRequest.status == status)
        with self._reading() as session:
            return list(session.scalars(query))

    def mark_done(self, request_id: int) -> bool:
        with self._transaction() as session:
            request = session.get(CallbackRequest, request_id)
            if request is None:
                return False
            request.status = "done"
            request.closed_at = utcnow()
            return True

    def delete_conversation(self, conversation_id: str) -> int:
        """Remove every request of one conversation ("forget me")."""
        with self._transaction() as session:
            requests = list(session.scalars(
                select(CallbackRequest).where(CallbackRequest.conversation_id == conversation_id)
            ))
            for request in requests:
                self._delete(session, request)
        if requests:
            scrub(self.engine)
        return len(requests)

    def delete_closed_before(self, cutoff: datetime) -> int:
        """Retention: remove closed requests older than `cutoff`."""
        with self._transaction() as session:
            requests = list(session.scalars(
                select(CallbackRequest).where(
                    CallbackRequest.status == "done", CallbackRequest.created_at < cutoff
                )
            ))
            for request in requests:
                self._delete(session, request)
        if requests:
            scrub(self.engine)
        return len(requests)

    @staticmethod
    def _delete(session: Session, request: CallbackRequest) -> None:
        for channel in OUTBOXES:
            outbox = session.scalars(select(channel).where(channel.request_id == request.id)).first()
            if outbox is not None:
                session.delete(outbox)
        for change in session.scalars(select(RequestUpdate).where(RequestUpdate.request_id == request.id)):
            session.delete(change)  # staff notes about the patient
        session.delete(request)

    # ---- outbox -----------------------------------------------------------

    # Each method takes the channel's outbox table (`outbox`, one of OUTBOXES):
    # the webhook's by default.

    def due_notifications(self, now: datetime, limit: int = 20,
                          outbox: Any = OutboxMessage) -> List[Tuple[int, CallbackRequest]]:
        with self._reading() as session:
            rows = session.execute(
                select(outbox.id, CallbackRequest)
                .join(CallbackRequest, CallbackRequest.id == outbox.request_id)
                .where(outbox.delivered_at.is_(None), outbox.next_attempt_at <= now)
                .order_by(outbox.next_attempt_at)
                .limit(limit)
            ).all()
        return [(outbox_id, request) for outbox_id, request in rows]

    def claim(self, outbox_id: int, now: datetime, lease: timedelta, outbox: Any = OutboxMessage) -> bool:
        """Take a due message for one delivery attempt; False if another worker has it.

        The conditional UPDATE is atomic in SQLite and PostgreSQL alike, so with
        several notifier processes each attempt is made by exactly one of them.
        If the worker dies mid-attempt the lease runs out and the message is due again.
        """
        with self._transaction() as session:
            result = session.execute(
                update(outbox)
                .where(outbox.id == outbox_id, outbox.delivered_at.is_(None),
                       outbox.next_attempt_at <= now)
                .values(next_attempt_at=now + lease)
            )
            return bool(result.rowcount == 1)

    def mark_delivered(self, outbox_id: int, now: datetime, outbox: Any = OutboxMessage) -> None:
        with self._transaction() as session:
            message = session.get(outbox, outbox_id)
            if message is not None:
                message.attempts += 1
                message.delivered_at = now
                message.last_error = None

    def mark_failed(self, outbox_id: int, error: str, now: datetime,
                    delay_after: Callable[[int], timedelta], outbox: Any = OutboxMessage) -> int:
        """Record a failed attempt and schedule the next; returns the attempts so far.

        `delay_after(attempts)` is applied inside the transaction, so the back-off
        keeps growing even when different workers made the attempts.
        """
        with self._transaction() as session:
            message = session.get(outbox, outbox_id)
            if message is None:
                return 0
            message.attempts += 1
            message.last_error = error[:500]
            message.next_attempt_at = now + delay_after(message.attempts)
            return int(message.attempts)

    def pending_deliveries(self) -> List[OutboxMessage]:
        """Notifications not yet accepted by the clinic's webhook (for staff)."""
        with self._reading() as session:
            return list(session.scalars(
                select(OutboxMessage).where(OutboxMessage.delivered_at.is_(None))
                .order_by(OutboxMessage.id)
            ))

    def outbox(self, outbox: Any = OutboxMessage) -> List[Any]:
        with self._reading() as session:
            return list(session.scalars(select(outbox).order_by(outbox.id)))


OUTBOXES = (OutboxMessage, EmailOutboxMessage)  # one table per delivery channel


def store_url() -> str:
    return os.environ.get("REQUESTS_DB_URL") or DEFAULT_URL


@cache
def store_for(url: str) -> CallbackStore:
    """One store (engine + connection pool) per URL per process."""
    return CallbackStore(url)


def current_store() -> CallbackStore:
    return store_for(store_url())


