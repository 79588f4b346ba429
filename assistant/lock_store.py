"""Rasa's Redis lock store, with each change of a lock made atomically.

Rasa 3.6's ``RedisLockStore`` changes a conversation's ticket lock by reading it,
changing it in Python and writing it back. Two servers doing that at the same
moment overwrite each other: both get the same ticket, or one deletes the lock
the other is waiting on, and two turns of one conversation run at once; one
turn's events are then lost (RasaHQ/rasa#9213; a fix, #11256, was reverted in
#11428). tests/test_cluster.py caught it: two messages of one conversation sent
to two servers at once lost events.

Here every read-change-write runs in a Redis transaction (WATCH/MULTI/EXEC,
retried if another server changed the lock in between). The lock format,
ticket order and lifetimes are Rasa's own. Configured in endpoints.production.yml:

    lock_store:
      type: assistant.lock_store.AtomicRedisLockStore
      url: ...   # the same settings as Rasa's `redis` lock store
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Optional

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

# A lock nobody touches any more (its server died) disappears from Redis this
# long after its last ticket expired.
IDLE_KEY_SECONDS = 60


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # loaded by module path from endpoints.yml
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs}
        super().__init__(**kwargs)

    def _change(self, conversation_id: str, change: Callable[[TicketLock], Any]) -> Any:
        """Run `change` on the stored lock (a new, empty one if there is none) and
        store the result, atomically: saved while it holds tickets, deleted once
        it holds none."""
        key = self.key_prefix + conversation_id

        def transaction(pipe: Any) -> Any:
            stored = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(stored)) if stored else TicketLock(conversation_id)
            result = change(lock)
            pipe.multi()
            if lock.is_someone_waiting():
                expires = max(ticket.expires for ticket in lock.tickets)
                pipe.set(key, lock.dumps(), ex=max(1, int(expires - time.time()) + IDLE_KEY_SECONDS))
            elif stored:
                pipe.delete(key)
            return result

        return self.red.transaction(transaction, key, value_from_callable=True)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        try:
            return int(self._change(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime)))
        except Exception as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def update_lock(self, conversation_id: str) -> None:
        self._change(conversation_id, lambda lock: lock.remove_expired_tickets())

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        # finish_serving already deletes the lock, in the same transaction,
        # when nobody else holds a ticket for it.
        self.finish_serving(conversation_id, ticket_number)
