"""Load and validate the knowledge base in ``knowledge/``.

The knowledge base is the single source of truth for what the bot says about
dry needling. It is read by:

* ``assistant.kb.build_data``     -> Rasa training data and ``utter_faq/*`` responses
* ``assistant.kb.spacy_pipeline`` -> the entity ruler's condition/body-area patterns
* ``actions.conditions``       -> condition-specific answers
* ``assistant.kb.coverage``       -> which article sentences the answers cover

``topics/*.yml`` hold what the articles answer; ``long_tail.yml`` the subjects
visitors ask about that the articles don't (prices, aftercare, a collapsed
lung...). Both are trained as ``faq/<id>``; a subject's reply is an honest
deferral naming who can answer, unless the clinic gives its own answer in
clinic.yml (``answers:``).

Every problem found is reported with the file and field that caused it, so a
clinic editing the YAML gets told exactly what to fix.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple
from urllib.parse import urlparse

import yaml

from assistant.paths import KNOWLEDGE_DIR

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
MIN_QUESTIONS = 10
MAX_BUTTON_TITLE = 40


class KnowledgeError(ValueError):
    """The knowledge base is invalid; the message names the file and field."""


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    publisher: str
    # The clinic's own page for this article, if it has one: answers resting on
    # it carry a "Read more" link there, so the attribution lives in the link and
    # the answer itself reads as the clinic speaking.
    url: Optional[str] = None


@dataclass(frozen=True)
class Topic:
    id: str
    theme: str
    title: str
    answer: str
    sources: List[str]
    related: List[str]
    questions: List[str]
    file: str = "knowledge/topics"  # where it is written, for error messages

    @property
    def payload(self) -> str:
        """The button payload that asks for this topic directly (see assistant.nlu)."""
        return topic_payload(self.id)


WHO_CAN_ANSWER = ("front_desk", "therapist")


@dataclass(frozen=True)
class Subject:
    """Something visitors ask that the articles don't answer (knowledge/long_tail.yml)."""

    id: str
    title: str  # button label
    subject: str  # the subject as a phrase ("prices and fees")
    who: str  # one of WHO_CAN_ANSWER
    reply: str  # the honest deferral
    questions: List[str]

    @property
    def payload(self) -> str:
        return topic_payload(self.id)


@dataclass(frozen=True)
class Condition:
    id: str
    name: str
    terms: List[str]
    areas: List[str]
    answer: Optional[str]
    sources: List[str]
    related: List[str]
    see: List[str]
    topic: Optional[str] = None  # answered by this FAQ topic instead of `answer`

    @property
    def covered(self) -> bool:
        """True when the articles say something about this condition."""
        return self.answer is not None or self.topic is not None


@dataclass
class KnowledgeBase:
    sources: Dict[str, Source]
    topics: Dict[str, Topic]
    conditions: Dict[str, Condition]
    subjects: Dict[str, Subject] = field(default_factory=dict)
    # normalised term or body area -> condition id
    condition_index: Dict[str, str] = field(default_factory=dict)

    def title_of(self, answer_id: str) -> Optional[str]:
        """The button title of an FAQ topic or a long-tail subject, if it exists."""
        entry = self.topics.get(answer_id) or self.subjects.get(answer_id)
        return entry.title if entry else None

    def find_condition(self, text: str) -> Optional[Condition]:
        """The condition a term names ("Migranes", "sore neck", "sciatica"), if any."""
        key = normalise_term(text)
        for candidate in (key, key[:-1] if key.endswith("s") else key):
            condition_id = self.condition_index.get(candidate)
            if condition_id:
                return self.conditions[condition_id]
        return None


def topic_payload(topic_id: str) -> str:
    """Payload of a button that asks for one FAQ topic, e.g. ``/faq/what_is``."""
    return f"/faq/{topic_id}"


def related_buttons(kb: KnowledgeBase, topic_ids: List[str]) -> List[Dict[str, str]]:
    """Follow-up buttons (title + /faq/<id> payload) for topic or subject ids."""
    return [{"title": kb.title_of(t) or t, "payload": topic_payload(t)} for t in topic_ids]


READ_MORE = "Read more"


def read_more_buttons(kb: KnowledgeBase, source_ids: List[str]) -> List[Dict[str, str]]:
    """A "Read more" link button to the clinic's page of the first listed source
    that has one (sources.yml `url`); none when no source has a page."""
    for source_id in source_ids:
        source = kb.sources.get(source_id)
        if source is not None and source.url:
            return [{"title": READ_MORE, "payload": source.url}]
    return []


def answer_buttons(kb: KnowledgeBase, related: List[str], sources: List[str]) -> List[Dict[str, str]]:
    """An answer's buttons: its related topics, then "Read more" where there is a page."""
    return related_buttons(kb, related) + read_more_buttons(kb, sources)


def condition_payload(condition_id: str) -> str:
    """Payload of a button that asks about one condition."""
    return f'/ask_condition{{"condition":"{condition_id}"}}'


def normalise_term(text: str) -> str:
    """Lower-case, drop apostrophes and collapse spaces/hyphens: "Bell's-palsy" -> "bells palsy"."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def term_variants(term: str) -> List[str]:
    """The term plus its plural ("migraine" -> "migraines", "injury" -> "injuries")."""
    base = normalise_term(term)
    variants = [base]
    if base.endswith("y") and not base.endswith(("ay", "ey", "oy", "uy")):
        variants.append(base[:-1] + "ies")
    elif not base.endswith("s"):
        variants.append(base + "s")
    return variants


def count_sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s])


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def display_path(path: Path) -> str:
    """How errors name a file: "knowledge/topics/cupping.yml" (the folder the
    clinic edits and the file), wherever the knowledge base lives."""
    parts = path.parts
    if "topics" in parts[-2:-1]:
        return f"knowledge/topics/{path.name}"
    return f"knowledge/{path.name}"


def _read_yaml(path: Path) -> Dict[str, Any]:
    where = display_path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnowledgeError(f"{where}: file not found") from None
    except yaml.YAMLError as error:
        # one line: the YAML parser's own message spans several
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "syntax error"
        raise KnowledgeError(f"{where}: not valid YAML{line}: {problem}") from None
    if not isinstance(data, dict):
        raise KnowledgeError(f"{where}: expected a mapping at the top level")
    return data


def _require(entry: Dict[str, Any], key: str, where: str, kind: type = str) -> Any:
    value = entry.get(key)
    if value is None or (isinstance(value, (str, list)) and not value):
        raise KnowledgeError(f"{where}: missing '{key}'")
    if not isinstance(value, kind):
        raise KnowledgeError(f"{where}: '{key}' must be a {kind.__name__}")
    return value


def _string_list(entry: Dict[str, Any], key: str, where: str) -> List[str]:
    value = entry.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise KnowledgeError(f"{where}: '{key}' must be a list of non-empty strings")
    return [v.strip() for v in value]


def _source_url(entry: Dict[str, Any], where: str) -> Optional[str]:
    url = entry.get("url")
    if url is None:
        return None
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme != "https" or not parsed.netloc or " " in url:
        raise KnowledgeError(f"{where}: 'url' must be a full https:// URL of the clinic's page")
    return str(url)


def _load_sources(directory: Path) -> Dict[str, Source]:
    path = directory / "sources.yml"
    raw = _require(_read_yaml(path), "sources", display_path(path), dict)
    sources: Dict[str, Source] = {}
    for sid, entry in raw.items():
        where = f"{display_path(path)}: source '{sid}'"
        if not isinstance(entry, dict):
            raise KnowledgeError(f"{where}: expected title, publisher and an optional url")
        sources[sid] = Source(sid, _require(entry, "title", where), _require(entry, "publisher", where),
                              _source_url(entry, where))
    return sources


def _load_topics(directory: Path) -> Dict[str, Topic]:
    topics: Dict[str, Topic] = {}
    files = sorted((directory / "topics").glob("*.yml"))
    if not files:
        raise KnowledgeError("knowledge/topics: no topic files found")
    for path in files:
        data = _read_yaml(path)
        name = display_path(path)
        theme = _require(data, "theme", name)
        for index, entry in enumerate(_require(data, "topics", name, list)):
            where = f"{name}: topic #{index + 1}"
            if not isinstance(entry, dict):
                raise KnowledgeError(f"{where}: expected id, title, answer, sources, related, questions")
            topic_id = _require(entry, "id", where)
            where = f"{name}: topic '{topic_id}'"
            if topic_id in topics:
                raise KnowledgeError(f"{where}: id is used twice")
            topics[topic_id] = Topic(
                id=topic_id,
                theme=theme,
                title=_require(entry, "title", where),
                answer=" ".join(_require(entry, "answer", where).split()),
                sources=_string_list(entry, "sources", where),
                related=_string_list(entry, "related", where),
                questions=_string_list(entry, "questions", where),
                file=name,
            )
    return topics


def _entries(path: Path, key: str, kind: str) -> Iterator[Tuple[str, str, Dict[str, Any]]]:
    """(id, where, entry) for each entry of a file's `key` list; an id used twice
    is an error naming the file and the entry."""
    seen: Set[str] = set()
    name = display_path(path)
    for index, entry in enumerate(_require(_read_yaml(path), key, name, list)):
        if not isinstance(entry, dict):
            raise KnowledgeError(f"{name}: {kind} #{index + 1}: expected a mapping with an id")
        entry_id = _require(entry, "id", f"{name}: {kind} #{index + 1}")
        where = f"{name}: {kind} '{entry_id}'"
        if entry_id in seen:
            raise KnowledgeError(f"{where}: id is used twice")
        seen.add(entry_id)
        yield entry_id, where, entry


def _load_subjects(directory: Path) -> Dict[str, Subject]:
    path = directory / "long_tail.yml"
    if not path.exists():
        return {}
    subjects: Dict[str, Subject] = {}
    for subject_id, where, entry in _entries(path, "subjects", "subject"):
        subjects[subject_id] = Subject(
            id=subject_id,
            title=_require(entry, "title", where),
            subject=_require(entry, "subject", where),
            who=_require(entry, "who", where),
            reply=" ".join(_require(entry, "reply", where).split()),
            questions=_string_list(entry, "questions", where),
        )
    return subjects


def _load_conditions(directory: Path) -> Dict[str, Condition]:
    path = directory / "conditions.yml"
    conditions: Dict[str, Condition] = {}
    for condition_id, where, entry in _entries(path, "conditions", "condition"):
        answer = entry.get("answer")
        conditions[condition_id] = Condition(
            id=condition_id,
            name=_require(entry, "name", where),
            terms=_string_list(entry, "terms", where),
            areas=_string_list(entry, "areas", where),
            answer=" ".join(answer.split()) if isinstance(answer, str) else None,
            sources=_string_list(entry, "sources", where),
            related=_string_list(entry, "related", where),
            see=_string_list(entry, "see", where),
            topic=entry.get("topic"),
        )
    return conditions


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _validate_topic(topic: Topic, kb: KnowledgeBase, seen_questions: Dict[str, str]) -> None:
    where = f"{topic.file}: topic '{topic.id}'"
    if not ID_PATTERN.match(topic.id):
        raise KnowledgeError(f"{where}: id must be lower_snake_case")
    if len(topic.title) > MAX_BUTTON_TITLE:
        raise KnowledgeError(
            f"{where}: 'title' is a button label, keep it under {MAX_BUTTON_TITLE} characters"
        )
    if not 2 <= count_sentences(topic.answer) <= 4:
        raise KnowledgeError(f"{where}: 'answer' should be 2-4 short sentences")
    if len(topic.questions) < MIN_QUESTIONS:
        raise KnowledgeError(f"{where}: 'questions' needs at least {MIN_QUESTIONS} examples"
                             f" (has {len(topic.questions)})")
    if not 2 <= len(topic.related) <= 3:
        raise KnowledgeError(f"{where}: 'related' should list 2-3 topics (has {len(topic.related)})")
    for related in topic.related:
        if related not in kb.topics or related == topic.id:
            raise KnowledgeError(f"{where}: 'related' names unknown topic '{related}'")
    _validate_sources(topic.sources, kb, where)
    for question in topic.questions:
        key = normalise_term(question)
        if key in seen_questions:
            raise KnowledgeError(
                f"{where}: question '{question}' is also listed under '{seen_questions[key]}'"
            )
        seen_questions[key] = topic.id


def _validate_subject(subject: Subject, kb: KnowledgeBase, seen_questions: Dict[str, str]) -> None:
    where = f"knowledge/long_tail.yml: subject '{subject.id}'"
    if not ID_PATTERN.match(subject.id):
        raise KnowledgeError(f"{where}: id must be lower_snake_case")
    if subject.id in kb.topics:
        raise KnowledgeError(f"{where}: id is also an FAQ topic's id")
    if len(subject.title) > MAX_BUTTON_TITLE:
        raise KnowledgeError(
            f"{where}: 'title' is a button label, keep it under {MAX_BUTTON_TITLE} characters")
    if subject.who not in WHO_CAN_ANSWER:
        raise KnowledgeError(f"{where}: 'who' must be one of {', '.join(WHO_CAN_ANSWER)}")
    if len(subject.questions) < MIN_QUESTIONS:
        raise KnowledgeError(f"{where}: 'questions' needs at least {MIN_QUESTIONS} examples")
    for question in subject.questions:
        key = normalise_term(question)
        if key in seen_questions:
            raise KnowledgeError(
                f"{where}: question '{question}' is also listed under '{seen_questions[key]}'")
        seen_questions[key] = subject.id


def _validate_sources(source_ids: List[str], kb: KnowledgeBase, where: str) -> None:
    if not source_ids:
        raise KnowledgeError(f"{where}: 'sources' must name at least one article")
    for source_id in source_ids:
        if source_id not in kb.sources:
            raise KnowledgeError(f"{where}: 'sources' names unknown article '{source_id}'"
                                 " (list it in knowledge/sources.yml)")


def _validate_condition(condition: Condition, kb: KnowledgeBase) -> None:
    where = f"knowledge/conditions.yml: condition '{condition.id}'"
    if not ID_PATTERN.match(condition.id):
        raise KnowledgeError(f"{where}: id must be lower_snake_case")
    if not condition.terms:
        raise KnowledgeError(f"{where}: 'terms' must list at least one term")
    if condition.topic is not None and condition.topic not in kb.topics:
        raise KnowledgeError(f"{where}: 'topic' names unknown topic '{condition.topic}'")
    if condition.answer is not None:
        _validate_sources(condition.sources, kb, where)
        for related in condition.related:
            if related not in kb.topics:
                raise KnowledgeError(f"{where}: 'related' names unknown topic '{related}'")
    for other in condition.see:
        if other not in kb.conditions or not kb.conditions[other].covered:
            raise KnowledgeError(f"{where}: 'see' must name a covered condition, not '{other}'")


def _index_conditions(kb: KnowledgeBase) -> None:
    """Map every term, plural and body area to its condition; a clash is an error."""
    for condition in kb.conditions.values():
        keys = [condition.id.replace("_", " ")]
        for term in condition.terms + condition.areas:
            keys.extend(term_variants(term))
        for key in keys:
            owner = kb.condition_index.setdefault(key, condition.id)
            if owner != condition.id:
                raise KnowledgeError(
                    f"knowledge/conditions.yml: condition '{condition.id}': "
                    f"term '{key}' already belongs to '{owner}'"
                )


def load_knowledge(directory: Path = KNOWLEDGE_DIR) -> KnowledgeBase:
    """Read and validate the whole knowledge base (raises KnowledgeError)."""
    kb = KnowledgeBase(
        sources=_load_sources(directory),
        topics=_load_topics(directory),
        conditions=_load_conditions(directory),
        subjects=_load_subjects(directory),
    )
    seen_questions: Dict[str, str] = {}
    for topic in kb.topics.values():
        _validate_topic(topic, kb, seen_questions)
    for subject in kb.subjects.values():
        _validate_subject(subject, kb, seen_questions)
    for condition in kb.conditions.values():
        _validate_condition(condition, kb)
    _index_conditions(kb)
    return kb


GUIDE = "docs/knowledge-base.md"


def print_knowledge_error(error: KnowledgeError) -> int:
    """Report an invalid knowledge base as one line (file, entry, rule) on
    stderr, never a traceback; the exit status for the command line (1)."""
    print(f"knowledge base: {error} (rules: {GUIDE})", file=sys.stderr)
    return 1


@cache
def cached_knowledge(directory: Path = KNOWLEDGE_DIR) -> KnowledgeBase:
    """The knowledge base, read once per process (actions call this per turn)."""
    return load_knowledge(directory)
