"""What Rasa's training cache must notice: our NLU code and the report sets.

Rasa reuses a trained component from its cache (.rasa/cache) when the
component's config, its inputs and its class's own source are unchanged. It
does not see the helper modules our components use, nor files they read
themselves. A change to how a model is built or pickled then loaded an old
pickle into new code: found when the n-gram features moved into
ngram_features.py and the cached intent model no longer matched its class.
Our components add these fingerprints (``fingerprint_addon``), so such a change
retrains them (about four minutes, most of it the intent model's embeddings).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

NLU_CODE = Path(__file__).resolve().parent


def files_fingerprint(paths: Iterable[Path]) -> str:
    """Changes when a file's name or content does, or one is added or removed."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_fingerprint() -> str:
    return files_fingerprint(NLU_CODE.glob("*.py"))
