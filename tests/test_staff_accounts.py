"""Staff accounts from the command line (make staff): Argon2id hashes in the
requests database, passwords from STAFF_PASSWORD or a prompt, a minimum length,
and the same formatting in `make requests` as in the console."""

from __future__ import annotations

import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, List
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from assistant.callback_requests import cli as requests_cli
from assistant.callback_requests.store import CallbackDraft, store_for
from assistant.staff import cli
from assistant.staff.accounts import MIN_PASSWORD_CHARS, Accounts
from assistant.staff.formatting import age, clinic_time, national_phone
from assistant.staff.inbox import Filters, Inbox

PASSWORD = "a long enough password"
SYDNEY = ZoneInfo("Australia/Sydney")


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'requests.db'}"
    monkeypatch.setenv("REQUESTS_DB_URL", url)
    monkeypatch.setenv(cli.PASSWORD_ENV, PASSWORD)
    yield url


def run(*argv: str) -> int:
    return cli.main(list(argv))


def test_add_list_reset_remove(db_url: str, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("add", "Reception@Clinic.example") == 0
    assert run("add", "manager@clinic.example") == 0
    assert run("add", "reception@clinic.example") == 1  # once per address, whatever the case
    capsys.readouterr()
    assert run("list") == 0
    assert capsys.readouterr().out.split() == ["manager@clinic.example", "reception@clinic.example"]

    accounts = Accounts(store_for(db_url))
    before = accounts.verify("reception@clinic.example", PASSWORD)
    assert before is not None and accounts.verify("RECEPTION@clinic.example", PASSWORD) is not None
    assert accounts.verify("reception@clinic.example", PASSWORD + "!") is None
    assert accounts.verify("nobody@clinic.example", PASSWORD) is None

    monkeypatch.setenv(cli.PASSWORD_ENV, "another long password")
    assert run("reset", "reception@clinic.example") == 0
    after = accounts.verify("reception@clinic.example", "another long password")
    assert after is not None and after.version != before.version  # older sessions end
    assert accounts.verify("reception@clinic.example", PASSWORD) is None

    assert run("remove", "reception@clinic.example") == 0
    assert accounts.by_id(before.id) is None
    assert run("remove", "reception@clinic.example") == 1
    actions = [line.action for line in Inbox(store_for(db_url)).audit()]
    assert actions.count("account_add") == 2 and "account_reset" in actions and "account_removed" in actions


def test_passwords_are_argon2id_hashes_in_a_private_database(db_url: str, tmp_path: Path) -> None:
    assert run("add", "reception@clinic.example") == 0
    with create_engine(db_url).connect() as connection:
        [stored] = connection.execute(text("SELECT password_hash FROM staff_accounts")).scalars()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert stat.S_IMODE((tmp_path / "requests.db").stat().st_mode) == 0o600


def test_a_short_password_is_refused(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(cli.PASSWORD_ENV, "x" * (MIN_PASSWORD_CHARS - 1))
    assert run("add", "reception@clinic.example") == 1
    assert f"at least {MIN_PASSWORD_CHARS} characters" in capsys.readouterr().err
    assert Accounts(store_for(db_url)).emails() == []


def test_without_the_variable_the_password_is_asked_for_twice(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.PASSWORD_ENV)
    answers: List[str] = [PASSWORD, PASSWORD + " typo"]
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: answers.pop(0))
    assert run("add", "reception@clinic.example") == 1  # the two differ
    answers[:] = [PASSWORD, PASSWORD]
    assert run("add", "reception@clinic.example") == 0
    assert Accounts(store_for(db_url)).verify("reception@clinic.example", PASSWORD) is not None


def test_shared_formatting_clinic_time_national_phone_and_age() -> None:
    now = datetime(2026, 11, 3, 5, 0, tzinfo=timezone.utc)  # 16:00 in Sydney (AEDT)
    assert clinic_time(datetime(2026, 11, 3, 3, 5), SYDNEY, now) == "today 14:05"  # stored naive UTC
    assert clinic_time(datetime(2026, 11, 2, 3, 5, tzinfo=timezone.utc), SYDNEY, now) == "yesterday 14:05"
    assert clinic_time(datetime(2026, 10, 26, 3, 5, tzinfo=timezone.utc), SYDNEY, now) == "Mon 26 Oct"
    assert clinic_time(datetime(2025, 10, 27, 3, 5, tzinfo=timezone.utc), SYDNEY, now) == "Mon 27 Oct 2025"
    assert national_phone("+61491570156") == "0491 570 156"
    assert age(datetime(2026, 11, 3, 2, 0, tzinfo=timezone.utc), now) == "3 h ago"


def test_make_requests_shows_what_the_console_shows(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    note = "Left knee, worse on stairs since the weekend; prefers the physio who saw her last year"
    store = store_for(db_url)
    request, _ = store.submit(CallbackDraft("k", "conv", "Robin Example", "+61491570156", "phone",
                                            "weekday mornings", note), notify=False)
    assert requests_cli.main(["done", f"CB-{request.id}", "--note", "booked Tue 9:00"]) == 0
    capsys.readouterr()
    assert requests_cli.main(["--all"]) == 0
    listing = capsys.readouterr().out
    assert note in listing  # the full note, not 40 characters
    assert "0491 570 156" in listing and "today" in listing and "UTC" not in listing
    assert "done by" in listing and "(command line)" in listing and "booked Tue 9:00" in listing
    assert requests_cli.main(["reopen", str(request.id)]) == 0
    assert requests_cli.main(["done", "CB-999"]) == 1
    capsys.readouterr()
    assert requests_cli.main([]) == 0
    assert "reopened by" in capsys.readouterr().out


def test_staff_notes_go_with_their_request_however_it_is_deleted(db_url: str) -> None:
    store = store_for(db_url)
    inbox = Inbox(store)
    forgotten, _ = store.submit(CallbackDraft("f", "conv-f", "Robin Example", "+61491570156", "phone",
                                              "mornings", None), notify=True)
    retained, _ = store.submit(CallbackDraft("r", "conv-r", "Sam Example", "+61491570157", "phone",
                                             "evenings", None), notify=False)
    assert inbox.set_status(forgotten.id, "called", "ana@clinic.example", "her knee, left a message")
    assert inbox.set_status(retained.id, "done", "ana@clinic.example", "booked Tue")
    assert store.delete_conversation("conv-f") == 1  # "forget me" in the chat
    assert store.delete_closed_before(datetime.now(timezone.utc)) == 1  # retention
    with create_engine(db_url).connect() as connection:
        notes = connection.execute(text("SELECT note FROM callback_request_updates")).scalars().all()
    assert notes == []
    assert [line.request_id for line in inbox.audit() if line.action.startswith("status_")] \
        == [retained.id, forgotten.id]  # the audit keeps the numbers only


def test_the_inbox_search_finds_a_reference_exactly_and_a_number_in_any_format(db_url: str) -> None:
    store = store_for(db_url)
    made = [store.submit(CallbackDraft(f"k{i}", f"conv-{i}", f"Patient {i}", f"+6149157{i:04d}", "phone",
                                       "mornings", "knee" if i == 1 else None), notify=False)[0]
            for i in range(1, 12)]
    inbox = Inbox(store)

    def found(text: str) -> List[int]:
        return [item.id for item in inbox.views(SYDNEY, Filters(text=text))]

    assert found(f"CB-{made[0].id}") == [made[0].id]  # not CB-10, CB-11
    assert found(f"cb-{made[0].id} knee") == [made[0].id]
    assert found(f"CB-{made[1].id} knee") == []
    assert found("0491 570 001") == [made[0].id]  # national format finds the E.164 number
