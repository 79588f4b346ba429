"""`make retention`: old conversations and closed requests go, recent ones and open requests stay."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from assistant.callback_requests.store import CallbackDraft, CallbackRequest, CallbackStore, utcnow
from assistant.ops import retention
from assistant.rasa_server.tracker_store import PrivacySQLTrackerStore

DAY = 24 * 3600


def add_events(store: PrivacySQLTrackerStore, sender: str, *ages_in_days: float) -> None:
    with store.session_scope() as session:
        for age in ages_in_days:
            session.add(store.SQLEvent(sender_id=sender, type_name="user",
                                       timestamp=time.time() - age * DAY, data="{}"))
        session.commit()


def senders(store: PrivacySQLTrackerStore) -> set:
    with store.session_scope() as session:
        return {row[0] for row in session.query(store.SQLEvent.sender_id).distinct()}


def backdate(requests: CallbackStore, request_id: int, days: int) -> None:
    with requests._transaction() as session:
        session.get(CallbackRequest, request_id).created_at = utcnow() - timedelta(days=days)


def test_retention_deletes_only_what_is_old_and_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACKER_DB", str(tmp_path / "tracker.db"))
    monkeypatch.setenv("REQUESTS_DB_URL", f"sqlite:///{tmp_path / 'requests.db'}")
    trackers = PrivacySQLTrackerStore(dialect="sqlite", db=str(tmp_path / "tracker.db"))
    add_events(trackers, "old", 100, 95)
    add_events(trackers, "came-back", 100, 2)  # old start, recent activity: kept whole
    add_events(trackers, "recent", 1)

    requests = CallbackStore(f"sqlite:///{tmp_path / 'requests.db'}")
    ids = {}
    for key in ("old-done", "old-open", "new-done"):
        request, _ = requests.submit(
            CallbackDraft(key, key, "Sam", "+61412345678", "phone", "mornings", None), notify=False)
        ids[key] = request.id
    backdate(requests, ids["old-done"], 60)
    backdate(requests, ids["old-open"], 60)
    requests.mark_done(ids["old-done"])
    requests.mark_done(ids["new-done"])

    assert retention.main(["--days", "30"]) == 0
    assert "Deleted 1 conversation(s)" in capsys.readouterr().out
    assert senders(trackers) == {"came-back", "recent"}
    with trackers.session_scope() as session:
        assert session.query(trackers.SQLEvent).filter_by(sender_id="came-back").count() == 2
    assert sorted(r.conversation_id for r in requests.requests()) == ["new-done", "old-open"]


def test_retention_days_come_from_clinic_yml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRACKER_DB", str(tmp_path / "tracker.db"))
    monkeypatch.setenv("REQUESTS_DB_URL", f"sqlite:///{tmp_path / 'requests.db'}")
    assert retention.main([]) == 0
    assert "inactive for 90+ days" in capsys.readouterr().out
