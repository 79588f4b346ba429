"""Website replies don't spell out a link that a button right below carries.

Replies name the booking page in their text ("book online at https://...") for
channels without buttons (the REST API, the terminal). In the widget the same
address sits in a "Book online" button, and the raw URL in the bubble only
wraps mid-word on a phone. The website channel drops it from the text, with the
little word that led to it; other channels keep it.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List

LINK_PREFIX = "https://"


def _without(text: str, url: str) -> str:
    escaped = re.escape(url)
    text = re.sub(rf"\bgo to {escaped}", "book online", text)
    text = re.sub(rf"\s*\b(?:at|on|via|here:)?\s*{escaped}", "", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)  # "book online ." -> "book online."
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def without_button_links(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each message's text without the https addresses its own buttons carry."""
    result = []
    for message in messages:
        text = message.get("text")
        urls = [str(b.get("payload")) for b in message.get("buttons") or []
                if isinstance(b, dict) and str(b.get("payload", "")).startswith(LINK_PREFIX)]
        if isinstance(text, str) and urls:
            for url in sorted(set(urls), key=len, reverse=True):
                text = _without(text, url)
            message = {**message, "text": text}
        result.append(message)
    return result
