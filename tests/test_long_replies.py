"""Never a different reply (issue 20): one conversation of about 170 turns
(FAQ answers and their follow-ups, conditions, out of scope, the fallback,
the call-back form started and cancelled, one kept open across many
questions and confirmed, one closed by an emergency, small talk) gets word
for word the same replies, buttons included, from stock Rasa (plain `rasa
run`, none of assistant/rasa_server/speedups.py's patches) as from the
project's server with all of them."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, List

import aiohttp
import pytest

from assistant.ops.launcher import Settings, Stack, free_port
from assistant.quality.bench.load import VISITOR_SCRIPT
from tests.helpers.conversations import look_back_script

SCRIPT = VISITOR_SCRIPT * 8 + ["asdkjh qwe zzz", "/faq/soreness_after", "does it hurt", "thanks",
                               "/request_callback", "Sam", "stop", "what about my headache", "bye",
                               *look_back_script("0491 570 156")]


async def replies(base_url: str, sender: str) -> List[Any]:
    url = f"{base_url}/webhooks/rest/webhook"
    answers = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for text in SCRIPT:
            async with session.post(url, json={"sender": sender, "message": text}) as reply:
                assert reply.status == 200, text
                answers.append((text, await reply.json()))
    return answers


@pytest.fixture(scope="module")
def stock_stack(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Any:
    workdir = tmp_path_factory.mktemp("stock")
    settings = Settings(rasa_port=free_port(), actions_port=free_port(), tracker_db=workdir / "tracker.db",
                        model=model_path, stock_rasa=True, workers=1,
                        extra_env={"REQUESTS_DB_URL": f"sqlite:///{workdir / 'requests.db'}"})
    running = Stack(settings, log_dir=workdir / "logs").start()
    yield running
    running.stop()


def test_a_long_conversation_gets_stock_rasas_replies(stack: Any, stock_stack: Any) -> None:
    ours = asyncio.run(replies(stack.url, "long-replies-1"))
    stock = asyncio.run(replies(stock_stack.url, "long-replies-1"))
    assert len(ours) == len(SCRIPT)
    for (text, mine), (_, rasas) in zip(ours, stock, strict=True):
        assert same_reference(mine) == same_reference(rasas), (ours.index((text, mine)), text)


def same_reference(replies: Any) -> Any:
    """The replies with call-back references as CB-n: the project's stack is shared
    with other tests' call-backs, so its numbering runs ahead."""
    return json.loads(re.sub(r"CB-[0-9]+", "CB-n", json.dumps(replies)))
