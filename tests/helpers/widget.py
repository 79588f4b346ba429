"""Driving the chat widget in Chromium."""

from __future__ import annotations

from typing import Any

WIDGET = "#dry-needling-chat"


SHADOW = "document.getElementById('dry-needling-chat').shadowRoot"


def wait_for_reply(page: Any, before: int) -> None:
    page.wait_for_function(
        f"{SHADOW}.querySelectorAll('.message.bot').length > {before}"
        f" && {SHADOW}.querySelector('.typing').hidden", timeout=30_000)


def ask(page: Any, text: str) -> str:
    """Type a message and press Enter like a visitor; the bot's first new message."""
    before = page.locator(f"{WIDGET} .message.bot").count()
    page.locator(f"{WIDGET} #dnw-input").fill(text)
    page.locator(f"{WIDGET} #dnw-input").press("Enter")
    wait_for_reply(page, before)
    return str(page.locator(f"{WIDGET} .message.bot").nth(before).inner_text())


def open_chat(page: Any) -> None:
    page.locator(f"{WIDGET} button.launcher").click()
    page.locator(f"{WIDGET} #dnw-input").wait_for(state="visible")
