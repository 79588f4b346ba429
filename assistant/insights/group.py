"""Group similar unanswered messages, so staff see "price for seniors (12)" once
instead of twelve lines.

Messages are compared by their character n-grams (TF-IDF, cosine similarity),
which copes with typos and word order; each group is led by its most frequent
wording. Identical messages are counted first, so a large store costs little.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List

from sklearn.feature_extraction.text import TfidfVectorizer

SIMILAR = 0.5  # cosine similarity at which two messages are the same question
MAX_DISTINCT = 5000  # the rarest wordings beyond this many are grouped as "other"
EXAMPLES = 5


@dataclass
class Group:
    example: str
    count: int = 0
    wordings: Counter = field(default_factory=Counter)
    suggestions: Counter = field(default_factory=Counter)

    @property
    def suggestion(self) -> str:
        return self.suggestions.most_common(1)[0][0] if self.suggestions else ""

    def as_dict(self) -> Dict[str, object]:
        return {"example": self.example, "count": self.count, "suggested_topic": self.suggestion,
                "examples": [text for text, _ in self.wordings.most_common(EXAMPLES)]}


def normalise(text: str) -> str:
    return re.sub(r"[^\w\[\]' ]+", " ", text.lower()).strip()


def group_messages(items: List[tuple]) -> List[Group]:
    """`items`: (text, suggestion) pairs, texts already redacted. Largest group first."""
    counts: Counter = Counter()
    suggestions: Dict[str, Counter] = {}
    shown: Dict[str, str] = {}  # how staff see a wording: as first typed (redacted)
    for text, suggestion in items:
        key = normalise(text)
        if not key:
            continue
        counts[key] += 1
        shown.setdefault(key, " ".join(text.split()))
        suggestions.setdefault(key, Counter())[suggestion] += 1
    if not counts:
        return []
    distinct = [key for key, _ in counts.most_common(MAX_DISTINCT)]
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4)).fit_transform(distinct)
    groups: List[Group] = []
    leaders: List[int] = []  # the row of each group's first (most frequent) wording
    for row, key in enumerate(distinct):
        group = None
        if leaders:
            similarity = (vectors[leaders] @ vectors[row].T).toarray().ravel()
            best = int(similarity.argmax())
            if similarity[best] >= SIMILAR:
                group = groups[best]
        if group is None:
            group = Group(example=shown[key])
            groups.append(group)
            leaders.append(row)
        group.count += counts[key]
        group.wordings[shown[key]] += counts[key]
        group.suggestions.update(suggestions[key])
    kept = set(distinct)
    rest = [key for key in counts if key not in kept]
    if rest:
        other = Group(example="(other, rarer wordings)")
        for key in rest:
            other.count += counts[key]
            other.suggestions.update(suggestions[key])
        groups.append(other)
    return sorted(groups, key=lambda g: -g.count)
