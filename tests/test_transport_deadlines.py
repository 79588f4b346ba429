"""The header and body deadlines of assistant/shared/transport.py, driven
directly on Sanic's protocol method so the timing cases the real server hits
only sometimes (tests/test_transport.py) are reproduced every time."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, Optional

import pytest
from sanic.http import Stage

from assistant.shared import transport
from assistant.shared.transport import TransportLimits

LIMIT = 0.3
DRIP = 0.05


class FakeProtocol:
    """The attributes of SanicProtocol that receive_more uses."""

    def __init__(self, stage: Stage, header_started: Optional[float]) -> None:
        self._http = SimpleNamespace(stage=stage, request_body=None, keep_alive=True, exception=None)
        self.conn_info = SimpleNamespace(ctx=SimpleNamespace(transport_header_started=header_started,
                                                              transport_body_started=None))
        self.transport = SimpleNamespace(resume_reading=lambda: None)
        self._data_received = asyncio.Event()


async def stock_receive_more(protocol: Any) -> None:
    await protocol._data_received.wait()


async def drip_until_cut_off(protocol: FakeProtocol) -> float:
    """Deliver a byte every DRIP seconds, as a slowloris client does; the
    seconds until receive_more gave up on the request."""
    receive_more = transport._with_read_deadlines(stock_receive_more)

    async def drip() -> None:
        while True:
            await asyncio.sleep(DRIP)
            protocol._data_received.set()

    dripping = asyncio.ensure_future(drip())
    started = time.monotonic()
    try:
        while time.monotonic() - started < LIMIT * 10:
            try:
                await receive_more(protocol)
            except asyncio.CancelledError:
                return time.monotonic() - started
        raise AssertionError(f"still reading the request after {LIMIT * 10:.1f} s")
    finally:
        dripping.cancel()


@pytest.fixture(autouse=True)
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "_limits", TransportLimits(header_timeout=LIMIT, body_timeout=LIMIT))


@pytest.mark.parametrize("header_started", [None, "now"], ids=["head-came-with-the-connection",
                                                               "head-after-an-idle-wait"])
def test_a_dripping_header_is_cut_off_at_its_deadline(header_started: Optional[str]) -> None:
    # None: the header's first bytes were buffered before Sanic's request loop
    # started, so it skipped the idle wait that would have set the start time.
    protocol = FakeProtocol(Stage.REQUEST, time.monotonic() if header_started else None)
    seconds = asyncio.run(drip_until_cut_off(protocol))
    assert LIMIT - DRIP <= seconds < LIMIT + 3 * DRIP, seconds
    assert protocol._http.keep_alive is False
    assert type(protocol._http.exception).__name__ == "RequestTimeout"


def test_a_dripping_body_is_cut_off_at_its_deadline() -> None:
    protocol = FakeProtocol(Stage.HANDLER, None)
    seconds = asyncio.run(drip_until_cut_off(protocol))
    assert LIMIT - DRIP <= seconds < LIMIT + 3 * DRIP, seconds
    assert type(protocol._http.exception).__name__ == "RequestTimeout"
