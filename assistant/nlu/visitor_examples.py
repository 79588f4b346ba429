"""The tuned-on blind sets' questions as training examples for the intent model.

Each blind set (``tests/dev*/``) was written by a different writer, from the
label list alone, in a visitor's voice the project had not seen: text-speak,
voice-to-text, second-language English, long stories. A round of phrasings
written for one set's misses rarely helped the next set's writer
(docs/testing.md); the blind sets themselves are thousands of such voices, each
labelled with its answer. The intent model reads them next to data/nlu.

Only what needs no context: every single message (``messages.yml``) and the
first turn of every conversation. A later turn ("how long for?") means what the
answer before it makes it mean, so it would teach the one-message model noise;
the stays-on-topic model reads those. A set's label is the sealed evaluation's
(``long_tail/<subject>`` is the ``faq/<subject>`` answer); one the model does not
learn (a warning sign, which the red-flag rules decide) is skipped, and so is a
text the curated data already has.

Writers who never saw each other's sets still write the same short questions:
111 of the sealed set's 266 messages ("is it covered by medicare", "should i eat
before") are word for word in a tuned-on set, and 63 of the held-out dev50 and
dev51's 260; more differ only in punctuation, case or an emoji. No twin of a
text of a set that must stay unseen (``unseen_sets`` in config.yml: the sealed
set, the held-out ones, tests/nlu) is ever learnt, so their figures still
measure questions the model has not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, List, Sequence, Set, Tuple

import yaml

from assistant.contracts import INTENT_FORGET_ME, RETRIEVAL_INTENT
from assistant.kb.knowledge import normalise_term
from assistant.nlu.phone_words import spelled_out

MESSAGES_FILE = "messages.yml"
CONVERSATIONS_FILE = "conversations.yml"
LONG_TAIL = "long_tail/"
Example = Tuple[str, str]  # (text, the model's label)
# Deleting a visitor's data can't be undone, so its intent learns only from the
# curated examples: with the sets' short "forget me" and "delete my data" learnt
# too, a name typed into the call-back form ("Ray Forget") read as forget_me at 0.90,
# above its own threshold (0.85).
CURATED_ONLY = {INTENT_FORGET_ME}


def model_label(set_label: str) -> str:
    """A blind set's label as the intent model names it."""
    if set_label.startswith(LONG_TAIL):
        return f"{RETRIEVAL_INTENT}/{set_label[len(LONG_TAIL):]}"
    return set_label


def _context_free_items(directory: Path) -> Iterator[dict]:
    messages = directory / MESSAGES_FILE
    if messages.exists():
        yield from yaml.safe_load(messages.read_text(encoding="utf-8")) or []
    conversations = directory / CONVERSATIONS_FILE
    if conversations.exists():
        for conversation in yaml.safe_load(conversations.read_text(encoding="utf-8")) or []:
            yield conversation["turns"][0]


def same_words(text: str) -> str:
    """What tells two texts apart for the model's words: case, punctuation, emoji and
    phone shorthand aside ("How long does a session take?" and "how long does a sesh
    take 🤔" are twins)."""
    return normalise_term(spelled_out(text))


def set_texts(directory: Path) -> Set[str]:
    """Every text of a set as ``same_words`` reads it: each ``text`` of its YAML
    files, and each example of an NLU file (tests/nlu)."""
    texts: Set[str] = set()
    for path in sorted(directory.glob("*.yml")):
        _collect(yaml.safe_load(path.read_text(encoding="utf-8")), texts)
    return texts


def _collect(node: object, texts: Set[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("text"), str):
            texts.add(same_words(node["text"]))
        if isinstance(node.get("examples"), str):  # Rasa's NLU format: "- example" lines
            texts.update(same_words(line.strip()[2:]) for line in node["examples"].splitlines()
                         if line.strip().startswith("- "))
        for value in node.values():
            _collect(value, texts)
    elif isinstance(node, list):
        for value in node:
            _collect(value, texts)


def visitor_examples(directories: Sequence[Path], labels: Set[str], known: Iterable[str]) -> List[Example]:
    """(text, label) for each context-free question of the sets whose label is one
    of ``labels``, once, and with no twin among the ``known`` texts (``same_words``)."""
    seen = {same_words(text) for text in known}
    learnt = labels - CURATED_ONLY
    examples: List[Example] = []
    for directory in directories:
        for item in _context_free_items(directory):
            text, label = str(item["text"]).strip(), model_label(str(item["expect"]))
            words = same_words(text)
            if label in learnt and words not in seen:
                seen.add(words)
                examples.append((text, label))
    return examples


def with_visitor_examples(examples: List[Example], directories: Sequence[Path],
                          unseen: Sequence[Path] = ()) -> List[Example]:
    """The curated examples, then the sets' questions for the labels they train,
    leaving out every text of the ``unseen`` sets."""
    known = [text for text, _ in examples] + [text for d in unseen for text in set_texts(d)]
    return examples + visitor_examples(directories, {label for _, label in examples}, known)
