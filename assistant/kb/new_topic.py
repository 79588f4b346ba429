"""Start a topic of the clinic's own: ``make new-topic TOPIC=cupping``.

Writes ``knowledge/topics/<id>.yml``, a template whose comments say what each
field is for and which rule it must meet, so a clinic can add a topic without a
developer. Until it is filled in, `make data` says what is missing, one line at
a time (file, topic, rule); the rules are in docs/knowledge-base.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from assistant.kb.knowledge import (
    GUIDE,
    ID_PATTERN,
    MIN_QUESTIONS,
    KnowledgeError,
    load_knowledge,
    print_knowledge_error,
)
from assistant.paths import KNOWLEDGE_DIR

TEMPLATE = """\
# A topic of the clinic's own. Fill in every field below, then run `make data`
# and `make model` (or just `make run`). A mistake is reported in one line that
# names this file, the topic and the rule; all the rules: {guide}.
theme: Our own topics           # a heading for the topics in this file
topics:
  - id: {id}                    # lower_snake_case and unique; asked for as /faq/{id}
    # The button label: a short question, under 40 characters.
    title: {title}
    # The answer, in the clinic's own words: 2-4 short sentences, at most
    # grade 8 reading level (`make test` measures it). Speak as the clinic; no
    # "one article says": the "Read more" link shows where it comes from.
    answer: >-
      Write the answer here, in two to four short sentences. Keep every fact
      from your article and add none.
    # The articles it rests on: ids from knowledge/sources.yml. Add your own
    # article there first (title, publisher, and the url of your page for a
    # "Read more" link).
    sources: [your_article_id]
    # 2-3 other topics offered as follow-up buttons: ids from knowledge/topics/.
    related: [what_is, does_it_hurt]
    # At least {min_questions} questions as patients really type them, typos
    # and all. A question may be listed under one topic only. Keep 3 more
    # questions out of this list and put them in tests/nlu/holdout.yml as
    # faq/{id}: `make test` warns until they are there.
    questions:
      - what is {words}
      - tell me about {words}
"""


def render_template(topic_id: str) -> str:
    words = topic_id.replace("_", " ")
    return TEMPLATE.format(id=topic_id, title=f"What is {words}?"[:39], words=words,
                           guide=GUIDE, min_questions=MIN_QUESTIONS)


def write_topic(topic_id: str, directory: Path = KNOWLEDGE_DIR) -> Path:
    """Write the template for a new topic; KnowledgeError when the id is taken or invalid."""
    if not ID_PATTERN.match(topic_id):
        raise KnowledgeError(f"topic '{topic_id}': id must be lower_snake_case, e.g. cupping")
    path = directory / "topics" / f"{topic_id}.yml"
    if path.exists():
        raise KnowledgeError(f"knowledge/topics/{path.name}: already exists; edit it instead")
    if topic_id in load_knowledge(directory).topics:
        raise KnowledgeError(f"topic '{topic_id}': id is already used by a topic")
    path.write_text(render_template(topic_id), encoding="utf-8")
    return path


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Write a commented template for a new topic.")
    parser.add_argument("topic", nargs="?", help="the new topic's id, e.g. cupping")
    args = parser.parse_args(argv)
    if not args.topic:
        print("Name the topic: make new-topic TOPIC=cupping", file=sys.stderr)
        return 2
    try:
        path = write_topic(args.topic)
    except KnowledgeError as error:
        return print_knowledge_error(error)
    print(f"wrote knowledge/topics/{path.name}: fill it in (see {GUIDE}), then `make data`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
