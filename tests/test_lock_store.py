"""The atomic lock stores -- Redis (against a real Redis server) and SQLite (a
real file) -- from many threads, each with its own connection as separate Rasa
servers would have, and for SQLite from separate processes too."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

from tests.conftest import require_services

THREADS = 8


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_services()
    from assistant.ops.local_services import LocalRedis

    server = LocalRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.services), "sqlite"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    """A factory: each call is a new store object with its own connection."""
    from assistant.rasa_server.lock_store import AtomicRedisLockStore, SQLiteLockStore

    if request.param == "sqlite":
        return lambda: SQLiteLockStore(db=str(tmp_path / "locks.db"))
    redis_server = request.getfixturevalue("redis_server")
    return lambda: AtomicRedisLockStore(host="127.0.0.1", port=redis_server.port,
                                        password=redis_server.password)


def issue_tickets(new_store: Callable[[], Any]) -> List[int]:
    store = new_store()
    return [store.issue_ticket("tickets", lock_lifetime=60) for _ in range(50)]


def test_tickets_issued_at_once_by_many_servers_are_all_different(new_store: Callable[[], Any]) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        tickets = [number for batch in pool.map(lambda _: issue_tickets(new_store), range(THREADS))
                   for number in batch]
    assert len(tickets) == THREADS * 50
    assert len(set(tickets)) == len(tickets), "the same ticket was issued twice"
    lock = new_store().get_lock("tickets")
    assert sorted(ticket.number for ticket in lock.tickets) == sorted(tickets)


_STORE_BEFORE_FORK: List[Any] = []


def _issue_in_forked_process(_: int) -> List[int]:
    return issue_tickets(lambda: _STORE_BEFORE_FORK[0])


def test_sqlite_tickets_issued_by_separate_processes_are_all_different(tmp_path: Path) -> None:
    """As Sanic's forked workers use it: the store object made before the fork,
    one file, and a connection of its own in each process."""
    from assistant.rasa_server.lock_store import SQLiteLockStore

    store = SQLiteLockStore(db=str(tmp_path / "locks.db"))
    store.get_lock("tickets")  # this process's connection must not be used by the others
    _STORE_BEFORE_FORK[:] = [store]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        batches = pool.map(_issue_in_forked_process, range(4))
    tickets = [number for batch in batches for number in batch]
    assert len(set(tickets)) == len(tickets) == 200
    assert sorted(ticket.number for ticket in store.get_lock("tickets").tickets) == sorted(tickets)


def test_the_lock_lets_one_holder_at_a_time_change_a_conversation(new_store: Callable[[], Any]) -> None:
    """Each holder reads a counter, yields, and writes it back plus one: without
    mutual exclusion increments are lost (as turns' events were)."""
    conversation = "counter"
    rounds = 15
    counter: Dict[str, int] = {"value": 0}

    async def holder(store: Any) -> None:
        for _ in range(rounds):
            async with store.lock(conversation, lock_lifetime=30, wait_time_in_seconds=0.005):
                value = counter["value"]
                await asyncio.sleep(0.002)
                counter["value"] = value + 1

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda _: asyncio.run(holder(new_store())), range(THREADS)))
    assert counter["value"] == THREADS * rounds
    assert new_store().get_lock(conversation) is None, "the lock outlived its last holder"


def test_a_dead_holders_ticket_expires_and_the_next_is_served(new_store: Callable[[], Any]) -> None:
    store = new_store()
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

    from assistant.paths import PROJECT_ROOT
    from assistant.rasa_server.lock_store import AtomicRedisLockStore

    for name, value in {"ACTION_SERVER_URL": "http://127.0.0.1:1/webhook", "ACTION_SERVER_TOKEN": "unused",
                        "POSTGRES_HOST": "db",
                        "POSTGRES_PORT": "5432", "POSTGRES_DB": "clinic", "POSTGRES_USER": "clinic",
                        "POSTGRES_PASSWORD": "secret", "REDIS_HOST": "127.0.0.1",
                        "REDIS_PORT": str(redis_server.port), "REDIS_PASSWORD": redis_server.password,
                        "REDIS_DB": "1"}.items():
        monkeypatch.setenv(name, value)
    endpoints = read_endpoints_from_path(str(Path(PROJECT_ROOT) / "endpoints.production.yml"))
    store = LockStore.create(endpoints.lock_store)
    assert isinstance(store, AtomicRedisLockStore)
    assert store.red.ping()
