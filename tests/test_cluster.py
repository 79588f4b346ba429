"""The production profile for real: two Rasa servers behind nginx, sharing a real
PostgreSQL (conversations and call-back requests) and a real Redis (locks).

The servers are started by the test itself from the Debian packages (`make
services` installs them) on free loopback ports. Without the packages these
tests skip, except where REQUIRE_SERVICES=1 (CI), where that is a failure.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from assistant.ops.local_services import DatabaseSettings
from assistant.paths import PROJECT_ROOT
from tests.conftest import require_services

FORM_SCRIPT = ["/request_callback", "Robin Example", "0412 345 678", "Weekday mornings", "skip",
               "/affirm"]
# The app's own limits (clinic.yml rate_limits, counted in the cluster's Redis):
# generous for the load these tests send from 127.0.0.1 through nginx, low for
# the addresses the limit tests name.
CLUSTER_LIMITS_NEW_CONVERSATIONS = 60
CLUSTER_RATE_LIMITS = {"messages_per_ip": "3000/minute", "messages_per_conversation": "600/minute",
                       "new_conversations_per_ip": f"{CLUSTER_LIMITS_NEW_CONVERSATIONS}/minute",
                       "callback_requests_per_ip": "2/hour"}
FAQ_SCRIPT = ["hello", "does it hurt?", "how long does a session take", "is it the same as acupuncture",
              "thanks"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[Any]:
    require_services()
    from assistant.ops.cluster import Cluster
    from assistant.ops.launcher import free_port
    from assistant.ops.local_services import ProxyLimits, local_databases

    workdir = tmp_path_factory.mktemp("cluster")
    postgres, lock_redis, databases = local_databases(workdir, durable=False)
    # These tests send dozens of turns a second from one address: nginx's
    # per-client limits (tested in tests/test_transport.py) are lifted here.
    unlimited = ProxyLimits(rate=10_000, burst=10_000, connections=10_000)
    clinic = workdir / "clinic.yml"
    clinic.write_text((PROJECT_ROOT / "clinic.yml").read_text(encoding="utf-8") + "\nrate_limits:\n"
                      + "".join(f"  {key}: {value}\n" for key, value in CLUSTER_RATE_LIMITS.items()),
                      encoding="utf-8")
    running = Cluster(databases, servers=2, proxy_port=free_port(), run_dir=workdir / "run",
                      model=model_path, log_dir=workdir / "logs", proxy_limits=unlimited,
                      extra_env={"CLINIC_CONFIG": str(clinic)})
    try:
        running.start()
        yield running
    finally:
        running.stop()
        lock_redis.stop()
        postgres.stop()


def post(url: str, sender: str, message: str, timeout: float = 60) -> List[Dict[str, Any]]:
    """A message on the REST channel: to one server directly (nginx never forwards it)."""
    request = urllib.request.Request(
        url + "/webhooks/rest/webhook", data=json.dumps({"sender": sender, "message": message}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


TOKENS: Dict[str, str] = {}  # conversation -> its token, kept as the widget keeps it


def web(url: str, sender: str, message: str, timeout: float = 60,
        headers: Optional[Dict[str, str]] = None) -> List[Dict[str, Any]]:
    """A message on the website channel (through nginx, as visitors send them)."""
    body = {"sender": sender, "message": message, **({"token": TOKENS[sender]} if sender in TOKENS else {})}
    request = urllib.request.Request(url + "/webhooks/website/webhook", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.headers.get("X-Conversation-Token"):
            TOKENS[sender] = response.headers["X-Conversation-Token"]
        return json.loads(response.read())


def text_of(replies: List[Dict[str, Any]]) -> str:
    return " ".join(reply.get("text", "") for reply in replies)


def query(databases: DatabaseSettings, sql: str, *args: Any) -> List[Tuple]:
    import psycopg2

    connection = psycopg2.connect(host=databases.postgres_host, port=databases.postgres_port,
                                  dbname=databases.postgres_db, user=databases.postgres_user,
                                  password=databases.postgres_password)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            rows = cursor.fetchall()
        connection.commit()
        return rows
    finally:
        connection.close()


def stored_events(cluster: Any, sender: str) -> List[Dict[str, Any]]:
    rows = query(cluster.databases, "SELECT data FROM events WHERE sender_id = %s ORDER BY id", sender)
    return [json.loads(data) for (data,) in rows]


def user_texts(events: List[Dict[str, Any]]) -> List[str]:
    return [event["text"] for event in events if event["event"] == "user"]


def assert_stored_once_in_order(events: List[Dict[str, Any]]) -> None:
    """No event twice, timestamps never going back, and every visitor message
    followed by the bot's whole turn (ending in action_listen) before the next."""
    keys = [json.dumps(event, sort_keys=True) for event in events]
    assert len(keys) == len(set(keys)), "an event was stored twice"
    stamps = [event["timestamp"] for event in events]
    assert stamps == sorted(stamps), "events out of order"
    seen_user = False
    for event in events:
        if event["event"] == "user":
            assert not seen_user, "a message arrived before the bot finished the previous turn"
            seen_user = True
        elif event["event"] == "action" and event["name"] == "action_listen":
            seen_user = False


def test_a_call_back_form_alternating_between_two_servers_is_stored_once(cluster: Any) -> None:
    sender = f"cluster-form-{uuid.uuid4().hex[:8]}"
    replies = [text_of(post(cluster.server_url(turn % 2), sender, message))
               for turn, message in enumerate(FORM_SCRIPT)]
    assert "What name" in replies[0]
    assert "phone number" in replies[1]
    assert "+61412345678" in replies[4] and "Robin Example" in replies[4]
    assert "saved (reference CB-" in replies[5]

    events = stored_events(cluster, sender)
    assert user_texts(events) == FORM_SCRIPT
    assert_stored_once_in_order(events)
    requests = query(cluster.databases,
                     "SELECT name, status FROM callback_requests WHERE conversation_id = %s", sender)
    assert requests == [("Robin Example", "open")]


def run_conversation(url: str, sender: str, script: List[str]) -> List[str]:
    return [text_of(web(url, sender, message)) for message in script]


def test_many_concurrent_conversations_across_the_proxy_store_every_event_once(cluster: Any) -> None:
    senders = [f"cluster-many-{index}-{uuid.uuid4().hex[:6]}" for index in range(24)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda sender: run_conversation(cluster.url, sender, FAQ_SCRIPT), senders))
    for replies in answers:
        assert all(replies), "a turn got no answer"
        assert "uncomfortable" in replies[1]
    for sender in senders:
        events = stored_events(cluster, sender)
        assert user_texts(events) == FAQ_SCRIPT, sender
        assert_stored_once_in_order(events)


def test_concurrent_messages_of_one_conversation_are_serialised(cluster: Any) -> None:
    sender = f"cluster-burst-{uuid.uuid4().hex[:8]}"
    web(cluster.url, sender, "hello")
    burst = ["does it hurt?", "how long does a session take", "is it the same as acupuncture",
             "what is dry needling", "will i be sore afterwards", "is it safe"]
    with ThreadPoolExecutor(max_workers=len(burst)) as pool:
        # half to each server, all at once
        list(pool.map(lambda pair: post(cluster.server_url(pair[0] % 2), sender, pair[1]), enumerate(burst)))
    events = stored_events(cluster, sender)
    assert sorted(user_texts(events)) == sorted(["hello", *burst])
    assert_stored_once_in_order(events)


def test_a_killed_server_does_not_stop_the_cluster_and_history_survives_its_restart(cluster: Any) -> None:
    # Conversations in the middle of the call-back form, on both servers.
    waiting = [f"cluster-kill-form-{index}-{uuid.uuid4().hex[:6]}" for index in range(6)]
    for index, sender in enumerate(waiting):
        for message in FORM_SCRIPT[:2]:
            post(cluster.server_url(index % 2), sender, message)

    # Visitors keep chatting through nginx while server 0 is killed.
    results: List[Tuple[float, bool]] = []
    done = threading.Event()
    killed_at: List[float] = []

    def visitor(index: int) -> None:
        sender = f"cluster-kill-load-{index}-{uuid.uuid4().hex[:6]}"
        turn = 0
        while not done.is_set():
            started = time.monotonic()
            try:
                web(cluster.url, sender, FAQ_SCRIPT[1 + turn % 4])
                results.append((started, True))
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                results.append((started, False))
            turn += 1

    threads = [threading.Thread(target=visitor, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    cluster.kill_server(0)
    killed_at.append(time.monotonic())
    time.sleep(5)
    done.set()
    for thread in threads:
        thread.join(timeout=90)

    after_kill = [ok for started, ok in results if started > killed_at[0] + 0.5]
    before_kill = [ok for started, ok in results if started < killed_at[0] - 1]
    assert before_kill and all(before_kill)
    assert len(after_kill) >= 6, "no load after the kill"
    assert all(after_kill), f"{after_kill.count(False)} requests failed after the kill"

    cluster.restart_server(0)
    # Every waiting form goes on where it stopped, on the restarted server: it
    # asks for the preferred time, so it knew the name and the form from before.
    for sender in waiting:
        reply = text_of(post(cluster.server_url(0), sender, FORM_SCRIPT[2]))
        assert "When is a good time" in reply, reply
        events = stored_events(cluster, sender)
        assert user_texts(events) == FORM_SCRIPT[:3]
        assert_stored_once_in_order(events)


def test_the_widget_and_website_channel_are_served_through_the_proxy(cluster: Any) -> None:
    with urllib.request.urlopen(cluster.url + "/webchat/", timeout=10) as page:
        assert page.status == 200 and b"widget.js" in page.read()
    message = {"sender": f"cluster-web-{uuid.uuid4().hex[:8]}", "message": "does it hurt?"}
    request = urllib.request.Request(
        cluster.url + "/webhooks/website/webhook", data=json.dumps(message).encode(),
        headers={"Content-Type": "application/json", "Origin": cluster.url})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert "uncomfortable" in text_of(json.loads(response.read()))
    too_big = urllib.request.Request(cluster.url + "/webhooks/website/webhook", data=b"x" * 100_000,
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(too_big, timeout=10)
    assert refused.value.code == 413
    assert "error" in json.loads(refused.value.read())
    # the plain REST channel (trusted integrations) is never offered through the proxy
    rest = urllib.request.Request(cluster.url + "/webhooks/rest/webhook", data=json.dumps(message).encode(),
                                  headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as not_there:
        urllib.request.urlopen(rest, timeout=10)
    assert not_there.value.code == 404


def test_rate_limits_are_counted_in_redis_across_the_servers(cluster: Any) -> None:
    """Visitors from one address, half on each server (as nginx reports them):
    the servers share one count (in each server alone it would be half)."""
    address = {"X-Forwarded-For": "198.51.100.61"}
    codes = []
    for index in range(CLUSTER_LIMITS_NEW_CONVERSATIONS + 2):
        try:
            web(cluster.server_url(index % 2), f"cluster-limit-{index}-{uuid.uuid4().hex[:6]}", "hello",
                headers=address)
            codes.append(200)
        except urllib.error.HTTPError as refused:
            codes.append(refused.code)
    assert codes == [200] * CLUSTER_LIMITS_NEW_CONVERSATIONS + [429, 429]
    import redis

    databases = cluster.databases
    store = redis.Redis(host=databases.redis_host, port=databases.redis_port,
                        password=databases.redis_password or None, db=databases.redis_db)
    counters = [key.decode() for key in store.scan_iter("LIMITS*")]
    assert any("new_conversations_per_ip" in key for key in counters), counters[:5]
    assert not any("198.51.100.61" in key for key in counters)  # addresses only as keyed hashes


def test_call_back_requests_per_address_are_limited_in_the_cluster(cluster: Any) -> None:
    address = {"X-Forwarded-For": "198.51.100.62"}
    done = []
    for attempt in range(3):
        sender = f"cluster-cb-limit-{attempt}-{uuid.uuid4().hex[:6]}"
        replies = [text_of(web(cluster.server_url(turn % 2), sender, message, headers=address))
                   for turn, message in enumerate(["how do i book", "/request_callback", "Sam Example",
                                                   f"0412 555 3{attempt:02d}", "Evenings", "skip",
                                                   "/affirm"])]
        done.append(replies[-1])
    assert ["saved (reference CB-" in reply for reply in done] == [True, True, False]
    assert "can't take another call-back request" in done[2]


def test_staff_tools_work_on_the_production_databases(cluster: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`make retention` and `make report` with the production profile's PostgreSQL."""
    from assistant.insights import cli
    from assistant.ops import retention

    for name, value in cluster.databases.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REQUESTS_DB_URL", cluster.databases.postgres_url())
    old = f"cluster-old-{uuid.uuid4().hex[:8]}"
    query(cluster.databases, "INSERT INTO events (sender_id, type_name, timestamp, data) "
          "VALUES (%s, 'action', 1000.0, '{}') RETURNING id", old)
    assert retention.main(["--days", "30", "--endpoints", "endpoints.production.yml"]) == 0
    assert query(cluster.databases, "SELECT COUNT(*) FROM events WHERE sender_id = %s", old) == [(0,)]

    assert cli.report(["--db", cluster.databases.postgres_url(), "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert summary["funnel"]["confirmed_callback"] >= 1  # the form completed across two servers
    assert summary["totals"]["conversations"] >= 24
