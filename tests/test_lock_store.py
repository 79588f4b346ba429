"""The atomic Redis lock store against a real Redis server, from many threads,
each with its own connection as separate Rasa servers would have."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from tests.conftest import require_services

THREADS = 8


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_services()
    from assistant.services import LocalRedis

    server = LocalRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def new_store(redis_server: Any) -> Any:
    from assistant.lock_store import AtomicRedisLockStore

    return AtomicRedisLockStore(host="127.0.0.1", port=redis_server.port, password=redis_server.password)


def test_tickets_issued_at_once_by_many_servers_are_all_different(redis_server: Any) -> None:
    def issue(_: int) -> List[int]:
        store = new_store(redis_server)
        return [store.issue_ticket("tickets", lock_lifetime=60) for _ in range(50)]

    with ThreadPoolExecutor(THREADS) as pool:
        tickets = [number for batch in pool.map(issue, range(THREADS)) for number in batch]
    assert len(tickets) == THREADS * 50
    assert len(set(tickets)) == len(tickets), "the same ticket was issued twice"
    lock = new_store(redis_server).get_lock("tickets")
    assert sorted(ticket.number for ticket in lock.tickets) == sorted(tickets)


def test_the_lock_lets_one_holder_at_a_time_change_a_conversation(redis_server: Any) -> None:
    """Each holder reads a counter, yields, and writes it back plus one: without
    mutual exclusion increments are lost (as turns' events were)."""
    conversation = "counter"
    rounds = 15

    async def holder(store: Any) -> None:
        for _ in range(rounds):
            async with store.lock(conversation, lock_lifetime=30, wait_time_in_seconds=0.005):
                value = int(store.red.get("test-counter") or 0)
                await asyncio.sleep(0.002)
                store.red.set("test-counter", value + 1)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda _: asyncio.run(holder(new_store(redis_server))), range(THREADS)))
    store = new_store(redis_server)
    assert int(store.red.get("test-counter")) == THREADS * rounds
    assert store.get_lock(conversation) is None, "the lock outlived its last holder"


def test_a_dead_holders_ticket_expires_and_the_next_is_served(redis_server: Any) -> None:
    store = new_store(redis_server)
    store.issue_ticket("crashed", lock_lifetime=0.3)  # its server died holding it

    async def next_turn() -> None:
        async with store.lock("crashed", lock_lifetime=30, wait_time_in_seconds=0.05):
            pass

    asyncio.run(asyncio.wait_for(next_turn(), timeout=5))
    assert store.get_lock("crashed") is None


def test_it_is_built_from_the_production_endpoints(redis_server: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.lock_store import LockStore
    from rasa.core.utils import read_endpoints_from_path

    from assistant.knowledge import PROJECT_ROOT
    from assistant.lock_store import AtomicRedisLockStore

    for name, value in {"ACTION_SERVER_URL": "http://127.0.0.1:1/webhook", "POSTGRES_HOST": "db",
                        "POSTGRES_PORT": "5432", "POSTGRES_DB": "clinic", "POSTGRES_USER": "clinic",
                        "POSTGRES_PASSWORD": "secret", "REDIS_HOST": "127.0.0.1",
                        "REDIS_PORT": str(redis_server.port), "REDIS_PASSWORD": redis_server.password,
                        "REDIS_DB": "1"}.items():
        monkeypatch.setenv(name, value)
    endpoints = read_endpoints_from_path(str(Path(PROJECT_ROOT) / "endpoints.production.yml"))
    store = LockStore.create(endpoints.lock_store)
    assert isinstance(store, AtomicRedisLockStore)
    assert store.red.ping()
