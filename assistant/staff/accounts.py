"""Staff accounts: Argon2id password hashes in the requests database.

Accounts are made on the server's command line (``make staff``, see
assistant/staff/cli.py), never through the web: there is no sign-up page to
attack. A password is hashed with Argon2id (argon2-cffi's defaults, RFC 9106's
low-memory profile); the hash carries its own parameters, so a later change of
parameters rehashes at the next sign-in.

E-mail addresses are compared lower-cased. A sign-in attempt for an unknown
address still costs one hash, so the time it takes does not tell an attacker
which addresses have accounts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import List, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.callback_requests.store import CallbackStore, utcnow
from assistant.staff.tables import StaffAccount, ensure_tables

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # hashing a megabyte "password" is a cheap way to burn CPU

_hasher = PasswordHasher()
# Verified against when the address is unknown, so both cases cost the same.
_DUMMY_HASH = _hasher.hash("no such account; this only keeps the timing even")


class AccountError(ValueError):
    """An account operation was refused; the message says why, for the person at the terminal."""


@dataclass(frozen=True)
class Account:
    """What a session needs to know about a signed-in person."""

    id: int
    email: str
    # Changes whenever the password does and at every sign-out: a session signed
    # before (or for a removed account) no longer matches and is refused.
    version: str


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise AccountError(f"{email!r} is not an e-mail address")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"the password must be at most {MAX_PASSWORD_CHARS} characters")


def _version(password_hash: str, epoch: int) -> str:
    return hashlib.sha256(f"{epoch}:{password_hash}".encode()).hexdigest()[:16]


def _account(row: StaffAccount) -> Account:
    return Account(id=int(row.id), email=str(row.email),
                   version=_version(str(row.password_hash), int(row.session_epoch or 0)))


class Accounts:
    """Staff accounts in one requests database."""

    def __init__(self, store: CallbackStore) -> None:
        self.engine = ensure_tables(store)

    def _session(self) -> Session:
        return Session(self.engine, future=True, expire_on_commit=False)

    def _find(self, session: Session, email: str) -> Optional[StaffAccount]:
        return session.scalars(select(StaffAccount).where(StaffAccount.email == email)).first()

    def add(self, email: str, password: str) -> Account:
        email = normalise_email(email)
        check_password(password)
        with self._session() as session, session.begin():
            if self._find(session, email) is not None:
                raise AccountError(f"{email} already has an account (use 'reset' for a new password)")
            row = StaffAccount(email=email, password_hash=_hasher.hash(password))
            session.add(row)
            session.flush()
            return _account(row)

    def reset(self, email: str, password: str) -> Account:
        email = normalise_email(email)
        check_password(password)
        with self._session() as session, session.begin():
            row = self._find(session, email)
            if row is None:
                raise AccountError(f"{email} has no account")
            row.password_hash = _hasher.hash(password)
            row.password_changed_at = utcnow()
            return _account(row)

    def remove(self, email: str) -> None:
        email = normalise_email(email)
        with self._session() as session, session.begin():
            row = self._find(session, email)
            if row is None:
                raise AccountError(f"{email} has no account")
            session.delete(row)

    def end_sessions(self, account_id: int) -> None:
        """Sign-out: this account's sessions, on every device, are over."""
        with self._session() as session, session.begin():
            row = session.get(StaffAccount, account_id)
            if row is not None:
                row.session_epoch = int(row.session_epoch or 0) + 1

    def emails(self) -> List[str]:
        with self._session() as session:
            return list(session.scalars(select(StaffAccount.email).order_by(StaffAccount.email)))

    def by_id(self, account_id: int) -> Optional[Account]:
        with self._session() as session:
            row = session.get(StaffAccount, account_id)
            return _account(row) if row is not None else None

    def verify(self, email: str, password: str) -> Optional[Account]:
        """The account when `password` is right; None otherwise. Slow on purpose
        (Argon2id): call it off the event loop."""
        try:
            email = normalise_email(email)
        except AccountError:
            email = ""
        with self._session() as session, session.begin():
            row = self._find(session, email) if email else None
            stored = str(row.password_hash) if row is not None else _DUMMY_HASH
            try:
                _hasher.verify(stored, password[:MAX_PASSWORD_CHARS])
            except (VerificationError, InvalidHashError):
                return None
            if row is None:
                return None
            if _hasher.check_needs_rehash(stored):
                row.password_hash = _hasher.hash(password)
            return _account(row)
