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
    return _post(stack, "rest", {"sender": sender, "message": message})


def _post(stack: Any, channel: str, body: Dict[str, Any]) -> List[Dict[str, Any]]:
    request = urllib.request.Request(
        f"{stack.url}/webhooks/{channel}/webhook",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def texts(replies: List[Dict[str, Any]]) -> List[str]:
    return [r.get("text", "") for r in replies]


def new_sender(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def say_on_website(stack: Any, sender: str, message: str) -> List[Dict[str, Any]]:
    """As the widget sends it: the website channel, with the conversation's token. It
    follows a "/..." payload only when the bot's latest turn offered it as a button."""
    from tests.conftest import conversation_token

    return _post(stack, "website", {"sender": sender, "message": message,
                                    "token": conversation_token(stack, sender)})


def stored_user_texts(stack: Any, sender: str) -> List[str]:
    """The visitor's messages as the conversation stored them: a followed button's
    payload ("/faq/x") as sent, anything else as text ("faq/x")."""
    import sqlite3

    with sqlite3.connect(stack.settings.tracker_db) as store:
        rows = store.execute("SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id",
                             (sender,)).fetchall()
    return [json.loads(data).get("text") or "" for (data,) in rows]
