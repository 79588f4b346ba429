"""Shared fixtures. Tests run against the model `make test` trained (once per run)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from assistant.kb.knowledge import KnowledgeBase, load_knowledge
from assistant.paths import MODEL, PROJECT_ROOT
from tests.helpers.processes import ALLOWED_ORIGIN, stack_settings  # noqa: F401  (ALLOWED_ORIGIN: for tests)

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ARTIFACTS = PROJECT_ROOT / "test-artifacts"

# Figures measured by tests (accuracy, trade-offs...), printed at the end of the
# run so they are visible in every `make test` log.
FIGURES: List[str] = []


def report_figure(line: str) -> None:
    FIGURES.append(line)
    print(line)


# Every test belongs to one group, so a unit test runs in seconds on its own:
#   unit      needs only the virtualenv (make test-unit)
#   model     loads the trained model in-process (make test-model)
#   services  starts real servers: the Rasa stack, SMTP, PostgreSQL, Redis, nginx
#   browser   drives Chromium (make test-browser)
# The group follows from the fixtures a test uses; a test that starts servers
# without one says so with a mark (pytestmark = pytest.mark.services). A mark
# lighter than the fixtures need is an error, so `-m unit` never pulls in a model.
GROUPS = ("unit", "model", "services", "browser")
FIXTURE_GROUPS = {
    "model_path": "model",
    "stack": "services", "webhook": "services", "smtp": "services", "receiver": "services",
    "redis_server": "services", "cluster": "services", "stock_stack": "services", "launched": "services",
    "small_cluster": "services", "guarded": "services", "hardened": "services",
    "walkthrough_stack": "services",
    "browser": "browser", "page": "browser",
}


def group_of(item: pytest.Item) -> str:
    needed = [FIXTURE_GROUPS[name] for name in getattr(item, "fixturenames", ()) if name in FIXTURE_GROUPS]
    marked = [mark.name for mark in item.iter_markers() if mark.name in GROUPS]
    group = max(needed + marked + ["unit"], key=GROUPS.index)
    if marked and max(marked, key=GROUPS.index) != group:
        raise pytest.UsageError(f"{item.nodeid} is marked {marked[0]} but its fixtures need {group}")
    return group


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    for item in items:
        group = group_of(item)
        if group not in [mark.name for mark in item.iter_markers()]:
            item.add_marker(group)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_knowledge()


@pytest.fixture(scope="session")
def model_path() -> Path:
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run the tests with `make test`, which trains it")
    return MODEL


@pytest.fixture(scope="session")
def agent(model_path: Path) -> Any:
    """The trained model, loaded once for all NLU tests."""
    from assistant.quality.evaluation import load_agent

    return load_agent(model_path)


@pytest.fixture(scope="session")
def parse(agent: Any) -> Any:
    """parse("text") -> Rasa's parse data, using the trained model."""
    loop = asyncio.new_event_loop()

    def _parse(text: str) -> Dict[str, Any]:
        return loop.run_until_complete(agent.parse_message(text))

    yield _parse
    loop.close()


@pytest.fixture(scope="session")
def webhook() -> Iterator[Any]:
    """The clinic's system, as far as the running stack knows: a real HTTP receiver."""
    from tests.webhook_receiver import WebhookReceiver

    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, model_path: Path, webhook: Any) -> Iterator[Any]:
    """The real Rasa server, action server and webhook notifier on free ports, with
    fresh SQLite stores and the shipped clinic.yml plus a webhook to `webhook`."""
    from assistant.ops.launcher import Stack

    workdir = tmp_path_factory.mktemp("stack")
    settings = stack_settings(workdir, model_path, clinic_extra=f"\ncallback_webhook_url: {webhook.url}\n",
                              NOTIFIER_POLL_SECONDS="0.5")
    running = Stack(settings, log_dir=workdir / "logs").start()
    yield running
    running.stop()


SERVED_EXTRA = ["asdkjh qwe zzz", "/faq/soreness_after", "does it hurt", "thanks", "/request_callback",
                "Sam", "stop", "what about my headache", "bye"]


@pytest.fixture(scope="module")
def served_events(stack: Any, agent: Any) -> List[Any]:
    """The events of one conversation the stack served (about 50 turns): the input
    on which the speed-ups are compared with stock Rasa, turn by turn."""
    import uuid

    from rasa.shared.core.events import ActiveLoop

    from assistant.quality.bench.load import VISITOR_SCRIPT
    from assistant.quality.bench.long_conversation import converse
    from assistant.rasa_server.tracker_store import PrivacySQLTrackerStore

    sender = f"state-cache-{uuid.uuid4().hex[:8]}"
    latencies = asyncio.run(converse(stack.url, sender, VISITOR_SCRIPT * 4 + SERVED_EXTRA, channel="rest"))
    assert None not in latencies
    domain = agent.processor.domain
    store = PrivacySQLTrackerStore(domain=domain, dialect="sqlite", db=str(stack.settings.tracker_db))
    tracker = asyncio.run(store.retrieve(sender))
    assert tracker is not None and len(tracker.events) > 300
    assert any(isinstance(event, ActiveLoop) and event.name for event in tracker.events)  # the form ran
    return list(tracker.events)


def conversation_token(stack: Any, sender: str) -> str:
    """The token the website channel gives `sender`'s conversation (from the
    secret the running stack generated next to its tracker store)."""
    from assistant.rasa_server.conversation_token import SECRET_FILE_NAME, _read_or_create, token_for

    # made by the server on its first website request, or here first (atomically,
    # as two workers would): a test module run alone may come before any request
    secret = _read_or_create(stack.settings.tracker_db.with_name(SECRET_FILE_NAME))
    return token_for(sender, secret)


def require_services() -> None:
    """Skip (or, where REQUIRE_SERVICES=1 as in CI, fail) without the Debian
    PostgreSQL, Redis and nginx packages that `make services` installs."""
    from assistant.ops.local_services import missing_binaries

    missing = missing_binaries()
    if missing:
        message = f"needs {', '.join(missing)} (Debian packages; `make services` installs them)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


# Debian's Chromium, driven by Playwright (never a browser download). Without
# the background-networking flags Chromium keeps trying Google's hosts, which
# this closed network refuses.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (`make browser` installs Debian's package). Per module:
    Playwright's sync API keeps an event loop running while it is open, and
    other tests' asyncio.run() would fail."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()
