"""Which sentences of a folder of articles does the knowledge base answer?

    make coverage DOCS=path/to/articles        (plain-text files, *.txt)

spaCy splits each article into sentences; each sentence is compared (TF-IDF
cosine similarity over words and word pairs) with every topic and covered
condition of the knowledge base. A sentence whose best match is below the
threshold is reported as "not covered", so a clinic adding its own articles sees
what the bot does not answer yet. Beside each covered sentence the report shows
the answer it matched, so a false match is plain to see.

Shared words alone ("session", "therapist", "pain") are not coverage: an
article about another treatment (cupping, say) shares them with ours. Its
subject gives it away: a word the knowledge base never uses that runs through
the article (in at least SUBJECT_SHARE of its sentences). A sentence naming that
subject is reported as not covered, whatever it shares otherwise; the threshold
is set so that the rest of such an article does not pass either
(tests/fixtures/coverage/cupping.txt). Nothing is written; the articles stay
where they are.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Set, Tuple

import spacy
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from assistant.kb.knowledge import KnowledgeBase, KnowledgeError, load_knowledge, print_knowledge_error

# Tuned on tests/fixtures/coverage/cupping.txt: its best sentence that does not name
# cupping scores 0.14, so 0.16 reports none of it as covered; the articles the
# knowledge base was written from stay 62% covered (66% at 0.15).
DEFAULT_THRESHOLD = 0.16
MIN_WORDS = 5  # headings and fragments are not facts to cover
SUBJECT_SHARE = 0.25  # an unknown word in this share of an article's sentences is its subject
MIN_SUBJECT_SENTENCES = 3


@dataclass
class SentenceCoverage:
    article: str
    sentence: str
    best: Optional[str]  # "topic:<id>" / "condition:<id>", or None when not covered
    score: float
    answer: str = ""  # the matched answer's text, shown beside the sentence
    off_subject: Optional[str] = None  # the article's subject the knowledge base lacks


def knowledge_documents(kb: KnowledgeBase) -> List[Tuple[str, str]]:
    """(label, text) for every answer the bot can give."""
    documents = [
        (f"topic:{t.id}", " ".join([t.title, t.answer, *t.questions])) for t in kb.topics.values()
    ]
    documents += [
        (f"condition:{c.id}", " ".join([c.name, c.answer or "", *c.terms]))
        for c in kb.conditions.values()
        if c.answer
    ]
    return documents


def split_sentences(text: str) -> List[str]:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    sentences = []
    for paragraph in text.splitlines():
        for sentence in nlp(paragraph.strip()).sents:
            words = sentence.text.split()
            if len(words) >= MIN_WORDS:
                sentences.append(" ".join(words))
    return sentences


def answer_texts(kb: KnowledgeBase) -> Dict[str, str]:
    """label -> the answer a patient gets, to show beside a matched sentence."""
    texts = {f"topic:{t.id}": t.answer for t in kb.topics.values()}
    texts.update({f"condition:{c.id}": c.answer for c in kb.conditions.values() if c.answer})
    return texts


def unknown_subjects(sentences: List[str], known: Set[str], analyse: Callable[[str], List[str]]) -> Set[str]:
    """Words the knowledge base never uses that run through the article: its
    subject, when it is not ours ("cupping")."""
    counts = Counter(word for s in sentences for word in set(analyse(s)) if word not in known)
    needed = max(MIN_SUBJECT_SENTENCES, SUBJECT_SHARE * len(sentences))
    return {word for word, count in counts.items() if count >= needed}


def coverage(kb: KnowledgeBase, folder: Path, threshold: float = DEFAULT_THRESHOLD) -> List[SentenceCoverage]:
    labels, texts = zip(*knowledge_documents(kb), strict=True)
    answers = answer_texts(kb)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), stop_words="english", sublinear_tf=True)
    knowledge_matrix = vectorizer.fit_transform(texts)
    known = set(vectorizer.vocabulary_)
    analyse = TfidfVectorizer(stop_words="english").build_analyzer()
    results: List[SentenceCoverage] = []
    for article in sorted(folder.glob("*.txt")):
        sentences = split_sentences(article.read_text(encoding="utf-8", errors="ignore"))
        if not sentences:
            continue
        subjects = unknown_subjects(sentences, known, analyse)
        scores = cosine_similarity(vectorizer.transform(sentences), knowledge_matrix)
        for sentence, row in zip(sentences, scores, strict=True):
            best = int(row.argmax())
            score = float(row[best])
            off = sorted(subjects & set(analyse(sentence)))
            label = labels[best] if score >= threshold and not off else None
            results.append(SentenceCoverage(article.name, sentence, label, score,
                                            answers.get(label or "", ""), off[0] if off else None))
    return results


def print_report(results: List[SentenceCoverage]) -> None:
    article = None
    for item in results:
        if item.article != article:
            article = item.article
            print(f"\n== {article}")
        where = item.best or "-- NOT COVERED --"
        print(f"  [{where:<32} {item.score:.2f}] {item.sentence[:110]}")
        if item.best:
            print(f"  {'':<40} -> {item.answer[:100]}")
        elif item.off_subject:
            print(f"  {'':<40} (about '{item.off_subject}', which the knowledge base never mentions)")
    covered = sum(1 for r in results if r.best)
    share = covered / len(results) if results else 0.0
    print(f"\n{covered} of {len(results)} sentences covered ({share:.0%}).")
    missing = [r for r in results if not r.best]
    if missing:
        print("Not covered yet (add a topic or questions to knowledge/ if patients ask about these):")
        for item in missing:
            print(f"  - {item.article}: {item.sentence[:110]}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Knowledge-base coverage of a folder of articles.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"{args.folder} is not a folder of .txt articles", file=sys.stderr)
        return 2
    try:
        kb = load_knowledge()
    except KnowledgeError as error:
        return print_knowledge_error(error)
    results = coverage(kb, args.folder, args.threshold)
    if not results:
        print(f"No sentences found in {args.folder}/*.txt", file=sys.stderr)
        return 1
    print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
