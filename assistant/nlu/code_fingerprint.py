"""Retrain our NLU components when their code changes, not only their data.

Rasa reuses a trained component from its cache (.rasa/cache) when the
component's config and inputs are unchanged; it does not look at the code. A
change to how our models are built or pickled then loads an old pickle into
new code (found when the n-gram features moved to ngram_features.py: the
cached intent model no longer matched its class). Our components add this
fingerprint of the NLU code (``fingerprint_addon``), so a code change retrains
them; together they train in about 15 seconds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

NLU_CODE = Path(__file__).resolve().parent


def code_fingerprint(directory: Path = NLU_CODE) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
