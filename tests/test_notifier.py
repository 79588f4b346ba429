"""The webhook outbox: a real HTTP receiver on loopback, a real SQLite store, a controllable clock."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta
from pathlib import Path
from typing import Iterator, List

import pytest

from assistant.callback_requests import cli as requests_cli
from assistant.callback_requests.notifier import Backoff, Notifier, run
from assistant.callback_requests.store import CallbackDraft, CallbackStore
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import Clinic, load_clinic
from tests.helpers.callbacks import Clock
from tests.webhook_receiver import WebhookReceiver


def clinic_with_webhook(url: str) -> Clinic:
    clinic = load_clinic(PROJECT_ROOT / "clinic.yml")
    return Clinic(**{**clinic.__dict__, "callback_webhook_url": url})


def draft(n: int) -> CallbackDraft:
    return CallbackDraft(
        request_key=f"key-{n}", conversation_id=f"conv-{n}", name=f"Visitor {n}",
        contact="+61412345678", contact_type="phone", preferred_time="mornings", reason=None,
    )


@pytest.fixture()
def store(tmp_path: Path) -> CallbackStore:
    return CallbackStore(f"sqlite:///{tmp_path / 'requests.db'}")


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


def test_backoff_doubles_and_is_capped() -> None:
    backoff = Backoff()
    assert [backoff.after(n).total_seconds() for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff.after(50) == timedelta(hours=1)


def test_a_webhook_that_is_down_is_retried_later_and_delivered_once(
    store: CallbackStore, receiver: WebhookReceiver
) -> None:
    request, _ = store.submit(draft(1), notify=True)
    clock = Clock()
    notifier = Notifier(store, clinic_with_webhook(receiver.url), clock=clock)

    receiver.status = 503
    assert notifier.deliver_due() == 0
    assert len(receiver.attempts()) == 1
    [message] = store.outbox()
    assert message.attempts == 1 and message.delivered_at is None and message.last_error == "HTTP 503"

    # not hammered: nothing is due again before the back-off has passed
    receiver.status = 200
    clock.advance(seconds=4)
    assert notifier.deliver_due() == 0 and len(receiver.attempts()) == 1

    clock.advance(seconds=2)
    assert notifier.deliver_due() == 1
    clock.advance(hours=2)
    assert notifier.deliver_due() == 0  # delivered means never again

    [accepted] = receiver.accepted()
    assert {a["key"] for a in receiver.attempts()} == {request.request_key}
    assert accepted["body"]["reference"] == f"CB-{request.id}"
    assert accepted["body"]["contact"] == "+61412345678" and accepted["body"]["name"] == "Visitor 1"
    assert store.pending_deliveries() == []


def test_refused_connections_and_timeouts_back_off_without_losing_the_request(
    store: CallbackStore,
) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        store.submit(draft(1), notify=True)
        clock = Clock()
        notifier = Notifier(store, clinic_with_webhook(f"http://127.0.0.1:{port}/"),
                            timeout=0.5, clock=clock)
        assert notifier.deliver_due() == 0
    [message] = store.outbox()
    assert message.last_error == "ReadTimeout"

    notifier.url = f"http://127.0.0.1:{port}/"  # closed: nothing listens there now
    delays: List[float] = []
    for _ in range(3):
        clock.advance(hours=2)
        before = clock.now
        assert notifier.deliver_due() == 0
        [message] = store.outbox()
        delays.append((message.next_attempt_at.replace(tzinfo=None) - before.replace(tzinfo=None))
                      .total_seconds())
    assert message.last_error == "ConnectionError" and message.attempts == 4
    assert delays == [10, 20, 40]
    assert len(store.requests()) == 1


def test_two_workers_never_deliver_the_same_request_twice(
    store: CallbackStore, receiver: WebhookReceiver
) -> None:
    requests = [store.submit(draft(n), notify=True)[0] for n in range(30)]
    workers = [Notifier(store, clinic_with_webhook(receiver.url)) for _ in range(2)]

    def passes(worker: Notifier) -> None:
        for _ in range(4):  # a pass takes at most 20; both race for the same ones
            worker.deliver_due()

    threads = [threading.Thread(target=passes, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    keys = [a["key"] for a in receiver.accepted()]
    assert sorted(keys) == sorted(r.request_key for r in requests)  # each exactly once
    assert store.pending_deliveries() == []


def test_requests_stored_without_a_webhook_have_no_outbox_row(store: CallbackStore) -> None:
    store.submit(draft(1), notify=False)
    assert store.outbox() == []


def run_briefly(notifier: Notifier) -> threading.Thread:
    """Run the worker loop for ~0.3 s (passes every 0.05 s), stop it, return its thread."""
    stop = threading.Event()
    worker = threading.Thread(target=run, args=(notifier, 0.05, stop))
    worker.start()
    stop.wait(0.3)
    stop.set()
    worker.join(timeout=5)
    return worker


def test_a_database_outage_does_not_stop_the_worker(
    tmp_path: Path, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = CallbackStore(f"sqlite:///{tmp_path / 'missing-dir' / 'x' / 'requests.db'}")
    (tmp_path / "missing-dir").write_text("a file where a folder should be")
    notifier = Notifier(unreachable, clinic_with_webhook(receiver.url))
    worker = run_briefly(notifier)
    assert not worker.is_alive()
    assert "request database unavailable" in caplog.text


def test_staff_see_requests_the_webhook_has_not_accepted(
    store: CallbackStore, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store.submit(draft(1), notify=True)
    receiver.status = 500
    Notifier(store, clinic_with_webhook(receiver.url)).deliver_due()
    monkeypatch.setenv("REQUESTS_DB_URL", store.url)
    assert requests_cli.main([]) == 0
    output = capsys.readouterr().out
    assert "1 request(s) not yet accepted" in output and "HTTP 500" in output


def test_an_unexpected_error_in_a_pass_does_not_stop_the_worker(
    store: CallbackStore, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(store, clinic_with_webhook(receiver.url))
    passes: List[int] = []

    def broken_pass() -> int:
        passes.append(1)
        raise RuntimeError("unexpected")

    notifier.deliver_due = broken_pass  # type: ignore[method-assign]
    worker = run_briefly(notifier)
    assert not worker.is_alive() and len(passes) >= 2
    assert "webhook delivery pass failed: RuntimeError" in caplog.text
