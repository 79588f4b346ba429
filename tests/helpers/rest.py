"""Talking to a running stack over its REST channel."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any, Dict, List

from assistant.settings.clinic import load_clinic


def filled(answer: str) -> str:
    """A knowledge-base answer as the bot sends it: slots such as {emergency_number} filled."""
    return answer.format(**load_clinic().slots())


def say(stack: Any, sender: str, message: str) -> List[Dict[str, Any]]:
    request = urllib.request.Request(
        stack.url + "/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": message}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def texts(replies: List[Dict[str, Any]]) -> List[str]:
    return [r.get("text", "") for r in replies]


def new_sender(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
