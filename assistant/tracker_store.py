"""Rasa's SQL tracker store, plus the two deletions privacy needs.

Configured in endpoints.yml as ``type: assistant.tracker_store.PrivacySQLTrackerStore``
with the same settings as Rasa's ``SQL`` store (SQLite or PostgreSQL).

* "Forget me": the turn in which ``action_forget_me`` ran is not saved;
  instead every stored event of that conversation is deleted. Deleting from
  inside the action server would not work: Rasa would write the whole
  in-memory conversation back when the turn ends.
* Retention: ``delete_inactive_before`` removes conversations whose last event
  is older than a cut-off (``make retention``).
"""

from __future__ import annotations

import logging

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import func

logger = logging.getLogger(__name__)

FORGET_ACTION = "action_forget_me"


def forgotten_this_turn(tracker: DialogueStateTracker) -> bool:
    """Did action_forget_me run, and confirm, since the visitor's latest message?

    If the action server failed, no confirmation follows the action: the
    conversation is then kept, and the visitor can ask again.
    """
    confirmed = False
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, BotUttered):
            confirmed = True
        if isinstance(event, ActionExecuted) and event.action_name == FORGET_ACTION:
            return confirmed
    return False


class PrivacySQLTrackerStore(SQLTrackerStore):
    async def save(self, tracker: DialogueStateTracker) -> None:
        if forgotten_this_turn(tracker):
            deleted = self.delete_conversation(tracker.sender_id)
            logger.info("conversation forgotten at the visitor's request (%d events deleted)", deleted)
            return
        await super().save(tracker)

    def delete_conversation(self, sender_id: str) -> int:
        with self.session_scope() as session:
            deleted = (session.query(self.SQLEvent)
                       .filter(self.SQLEvent.sender_id == sender_id)
                       .delete(synchronize_session=False))
            session.commit()
            return int(deleted)

    def delete_inactive_before(self, cutoff_timestamp: float) -> int:
        """Delete every conversation whose latest event is older than the cut-off."""
        with self.session_scope() as session:
            stale = (session.query(self.SQLEvent.sender_id)
                     .group_by(self.SQLEvent.sender_id)
                     .having(func.max(self.SQLEvent.timestamp) < cutoff_timestamp)
                     .subquery())
            senders = [row[0] for row in session.query(stale.c.sender_id)]
            for start in range(0, len(senders), 500):  # keep IN (...) lists small
                (session.query(self.SQLEvent)
                 .filter(self.SQLEvent.sender_id.in_(senders[start:start + 500]))
                 .delete(synchronize_session=False))
            session.commit()
            return len(senders)
