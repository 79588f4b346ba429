"""A learned second opinion on after-session warning signs, for the reports the
patterns in ``knowledge/red_flags.yml`` have no words for.

Patterns only catch the phrasings someone thought of. Each blind development
set in ``data/safety/`` found reports the patterns of the day missed: 111 of
1,160 over the eleven sets (dev9 to dev19) whose pre-tuning patterns still run.
Visitors invent new ways to say "it stabs when I breathe in" faster than
patterns can follow, so this model learns from the reports themselves.

It is one logistic regression over word and character n-grams (the characters
for phone typos) with three classes: quiet (a question, a normal after-effect,
every NLU training example, every message of the tuned-on blind question sets),
"see a doctor today" and "emergency". It is
trained with the NLU model, but the patterns still come first and are still
read at start-up without retraining; this only adds alarms where they are silent.

The numbers behind the settings, leave-one-set-out over the nineteen sets
(each set predicted by a model trained on the other eighteen), measured once
when the model was chosen: at C=16 and P(report) >= 0.9 it caught 90 of the 111
reports the patterns of the day had missed in the eleven sets dev9 to dev19
(88 at the right urgency) and raised 2 alarms on their 1,185 quiet messages
that the patterns had left alone. At 0.8 it caught 97 but alarmed on 14 (1.2%);
a C of 2 or 8 caught fewer at every threshold. On twenty-four later blind sets
(dev20 to dev43), before anything was tuned on them, the model trained on the
sets before them caught 118 of the 142 reports the patterns missed. Re-measured
over 31 sets (leave-one-set-out, model alone): C=32, or extra character 3-6-grams
or word trigrams, stayed within 0.006 recall and one alarm of these settings; a
threshold of 0.8 caught 0.963 for 18 alarms instead of 0.940 for 13, but on
dev32-dev35 before tuning any threshold from 0.7 to 0.9 left the whole pipeline
the same 2 misses. So the settings stood.

Re-chosen over twelve rounds of four blind sets (dev20 to dev67), each replayed
as it stood before anyone tuned on it: the patterns of the day (red_flags.yml at
the commit that added the round) and this model trained on the sets before it.
At C=16 and 0.9 the pipeline missed 44 of 5,129 reports, 19 of them emergencies,
and alarmed on 119 of 5,546 quiet messages; C=32 missed 39 for the same 119 (C=8:
49 for 117). One lower threshold buys each catch with about one alarm (0.8: 26
missed, 137 alarms), mostly ordinary after-effects told with "no weakness" or
"back to normal now" that the n-grams cannot read. But the model is rarely
unsure of an emergency it calls one: an emergency threshold of 0.8, with 0.9
kept for "see a doctor today", missed 32 (10 emergencies) for 123 alarms, and
0.7 only 31 for 125. So C=32, 0.8 for an emergency and 0.9 otherwise. On
dev68-dev71, written before the change and measured before their tuning, the
pipeline missed 2 of 429 (3 with the old settings) for the same 13 alarms. `make test`
prints the model's own leave-one-set-out figures over all the sets
(``assistant/quality/warning_signs_cv.py``; the patterns of the day are in git
history only).

A message that is only body parts ("my neck and chest": an answer to "which
problem?" or to the call-back note) is left to the patterns: the model learned
that "chest" comes with reports and gave such lists 0.94-0.99. So is a message
of fewer than three words that are not fillers: follow-ups such as "and
saturdays?" after the opening hours (0.99 urgent), "and swelling?" or "and
neck pain" got alarms; the 7 of the 8,755 blind reports that short ("lips
swelling", "cant breath") are all caught by patterns.

Round 39: the words a denial reaches count apart ("no numbness or tingling" ->
"no neg_numbness neg_or neg_tingling", ``marked_denials``), as one more set of word
features next to the others. The n-grams alone read "numbness" in "no numbness since"
as they read it in "numbness since", and the model alarmed on such after-effects told
with a denial. Leave-one-set-out over the 83 sets, with the settings above: 8,996 of
9,219 reports caught and 30 alarms on 9,606 quiet messages before, 9,011 and 29 with
them (a reach of 2 words: 9,007 and 32; 5: 9,005 and 27; the marked words instead of
the plain ones, not beside them: 9,002 and 29).

Like the patterns, it is deterministic: the same text always gets the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np
import yaml
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from assistant.kb.spacy_pipeline import BODY_AREA_LABEL
from assistant.nlu.fingerprints import files_fingerprint
from assistant.nlu.ngram_features import NgramFeatures
from assistant.nlu.red_flag_rules import INTENTS, URGENCY, normalise

# The groups a report set may have, and the urgency level each stands for (a
# crisis is the patterns' job: its reply is not the emergency one).
LEVELS: Dict[str, int] = {"normal": 0, "question": 0, "urgent": URGENCY["urgent"],
                          "emergency": URGENCY["emergency"]}
CATEGORY_OF_LEVEL = {URGENCY["urgent"]: "urgent", URGENCY["emergency"]: "emergency"}
LEARNED_FLAG_ID = "learned_report"  # in the parse data's red_flag entry, next to the patterns' ids
# Body words the conditions' areas (the `body_area` lookup table) lack, and the
# words that join a list of them.
OTHER_BODY_WORDS = frozenset([
    "chest", "chets", "ribs", "rib", "side", "sides", "lung", "lungs", "breathing", "breath", "collarbone",
    "collarbones", "armpit", "armpits", "face", "lips", "lip", "throat", "tongue", "arm", "arms", "back",
    "stomach", "tummy", "belly", "groin", "bum", "bottom", "glutes", "glute", "traps", "trap", "pec",
    "pecs", "spine", "forearm", "forearms", "calves", "quad", "quads", "ankle", "ankles", "rhomboid",
    "rhomboids", "lat", "lats", "temple", "temples", "butt", "buttock", "buttocks", "lumbar", "thoracic",
    "hammy", "hammies",
])
LIST_WORDS = frozenset(["my", "and", "n", "the", "both", "left", "right", "upper", "lower", "mid", "middle",
                        "a", "also", "plus", "or"])
# Words that carry nothing of a report in a short follow-up ("ok what about infection").
FILLER_WORDS = frozenset(["ok", "okay", "so", "what", "about", "how", "then", "too", "but", "is", "it",
                          "that"])
# Fewer content words than this: left to the patterns ("and saturdays?" got 0.99).
MIN_CONTENT_WORDS = 3
# What a message opening a burst says before any sign: who, when, where the needles
# went. "had needling on my shoulder blade today" got the emergency reply, "the needle
# site on my shoulder" the urgent one. On the burst sets (tests/safety/split_reports*.yml)
# quiet bursts with a message that alarmed: 21 -> 15 of 121, and 20 -> 14 of 114 on the
# set held out from this choice. No report in the 81 blind sets is made only of these
# words and missed by the patterns ("a needle is in my back" has a pattern of its own).
CONTEXT_WORDS = frozenset([
    "i", "im", "me", "my", "he", "hes", "him", "his", "she", "shes", "her", "they", "them", "their", "we",
    "our", "you", "your", "its", "it", "a", "an", "the", "this", "that", "these", "had", "have", "has",
    "got", "get", "did", "do", "done", "was", "were", "been", "am", "is", "are", "just", "only", "quick",
    "q", "question", "questions", "about", "re", "dry", "needling", "needled", "needles", "needle",
    "session", "sessions", "appointment", "appt", "treatment", "physio", "physios", "chiro", "therapist",
    "pt", "put", "went", "go", "in", "into", "on", "at", "of", "to", "for", "from", "with", "by", "where",
    "when", "since", "after", "before", "spot", "spots", "site", "sites", "area", "areas", "bit", "place",
    "point", "points", "one", "ones", "some", "few", "couple", "both", "today", "yesterday", "yday",
    "tonight", "morning", "afternoon", "evening", "night", "last", "week", "weeks", "day", "days", "hour",
    "hours", "ago", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mon",
    "tue", "tues", "wed", "thu", "thurs", "fri", "sat", "sun", "hi", "hey", "hello", "hiya", "there",
    "again"
])

# Words that deny what follows them, and the words that end a denial's reach ("no fever
# but the redness is spreading"): ``marked_denials``. Not "cant" or "unable": "cant get a
# full breath" is the sign itself.
DENIALS = frozenset(["no", "not", "never", "without", "nothing", "none", "nor", "neither", "didnt", "dont",
                     "doesnt", "hasnt", "havent", "wasnt", "werent", "isnt", "arent", "aint", "wont", "nope"])
DENIAL_ENDS = frozenset(["but", "tho", "though", "although", "however", "except", "just", "only", "now",
                         "still", "and"])
DENIAL_REACH = 3  # words

Example = Tuple[str, int]  # (text, level)
QUESTION_SET_FILES = ("messages.yml", "conversations.yml")
SOLVER = "newton-cg"


@dataclass(frozen=True)
class Thresholds:
    """How sure the model must be that a message reports a sign, P(urgent) +
    P(emergency), before it alarms: less sure when the likelier level is the
    emergency, since a missed emergency costs more than a false alarm."""

    report: float
    emergency: float

    def for_level(self, level: int) -> float:
        return self.emergency if level == URGENCY["emergency"] else self.report

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> Thresholds:
        return cls(float(config["threshold"]), float(config["emergency_threshold"]))


class ReportSetError(ValueError):
    """A report set is malformed; the message names the file and the group."""


def load_report_set(path: Path) -> List[Example]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ReportSetError(f"{path.name}: expected groups {', '.join(LEVELS)}")
    examples = []
    for group, texts in raw.items():
        if group not in LEVELS:
            raise ReportSetError(f"{path.name}: unknown group '{group}' (expected {', '.join(LEVELS)})")
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ReportSetError(f"{path.name}: '{group}' must be a list of messages")
        examples += [(text, LEVELS[group]) for text in texts]
    return examples


def question_set_texts(directories: Sequence[Path]) -> List[str]:
    """Every message and turn of blind question sets (``tests/dev*/``): visitors'
    ordinary questions, none of them a report. On dev17-dev18, held out, a model
    trained with dev to dev16 as quiet examples alarmed on 2 of their 1,039 messages
    instead of 8 ("is it safe to drive home after a session?", "can you put me through
    to someone?" had got the emergency reply); leave-one-set-out recall 0.974 either way."""
    texts: List[str] = []
    for directory in directories:
        for name in QUESTION_SET_FILES:
            path = directory / name
            items = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
            for item in items or []:
                turns = item.get("turns", [item])
                texts += [str(turn["text"]) for turn in turns]
    return texts


def question_set_files(directories: Sequence[Path]) -> List[Path]:
    return [directory / name for directory in directories for name in QUESTION_SET_FILES
            if (directory / name).exists()]


def report_set_files(directory: Path) -> List[Path]:
    return sorted(directory.glob("*.yml"))


def fingerprint(directory: Path) -> str:
    """Changes whenever a report set does, so Rasa retrains this model then."""
    return files_fingerprint(report_set_files(directory))


def quiet_texts(training_data: TrainingData) -> List[str]:
    """The NLU examples: questions, requests, small talk; none reports a sign.
    (Adding the lookup tables' condition and body-area names moved the
    leave-one-set-out recall by 0.002 and the false alarms not at all, but
    raised one more alarm on the sealed set's quiet messages: left out.)"""
    return [m.get(TEXT) for m in training_data.intent_examples
            if m.get(TEXT) and m.get(INTENT) not in INTENTS]


def body_words(training_data: TrainingData) -> FrozenSet[str]:
    areas = [str(e) for table in training_data.lookup_tables if table.get("name") == BODY_AREA_LABEL
             and isinstance(table.get("elements"), list) for e in table["elements"]]
    return OTHER_BODY_WORDS | {word for area in areas for word in normalise(area).split()}


def assessment(probabilities: np.ndarray) -> Tuple[float, int]:
    """From P(quiet), P(urgent), P(emergency): (the probability that the message
    reports a warning sign, the likelier of its two levels)."""
    _, urgent, emergency = probabilities
    return float(urgent + emergency), 2 if emergency >= urgent else 1


def decided_level(assessed: Tuple[float, int], thresholds: Thresholds) -> int:
    probability, level = assessed
    return level if probability >= thresholds.for_level(level) else 0


def marked_denials(normalised: str) -> str:
    """The words a denial reaches (DENIAL_REACH, up to DENIAL_ENDS) marked as denied:
    "bit sore no numbness or anything" -> "bit sore no neg_numbness neg_or neg_anything"."""
    words: List[str] = []
    reach = 0
    for word in normalised.split():
        if word in DENIALS:
            words.append(word)
            reach = DENIAL_REACH
            continue
        if word in DENIAL_ENDS:
            reach = 0
        words.append(f"neg_{word}" if reach else word)
        reach = max(reach - 1, 0)
    return " ".join(words)


class WarningSignModel:
    def __init__(self, c: float = 32.0, body: FrozenSet[str] = OTHER_BODY_WORDS) -> None:
        self.features = NgramFeatures([
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="word", sublinear_tf=True, preprocessor=marked_denials),
        ])
        # Balanced: the quiet messages outnumber the reports about two to one.
        # Newton-CG reaches the same optimum as sklearn's default (lbfgs) in 17
        # steps instead of 164, 8.4 s instead of 19.4 on 19,411 texts; the
        # probabilities differ by at most 0.0002 and no decision changes
        # (tests/test_learned_warning_signs.py compares them).
        self.classifier = LogisticRegression(C=c, max_iter=3000, class_weight="balanced", solver=SOLVER)
        self.body = body

    def fit(self, examples: Sequence[Example]) -> WarningSignModel:
        if {level for _, level in examples} != {0, *CATEGORY_OF_LEVEL}:
            raise ReportSetError("the report sets need quiet, urgent and emergency messages")
        self.classifier.fit(self.features.fit([normalise(text) for text, _ in examples]),
                            [level for _, level in examples])
        return self

    def probabilities(self, text: str) -> np.ndarray:
        """P(quiet), P(urgent), P(emergency): ``predict_proba`` computed directly
        (a multinomial model's softmax over its linear scores; ngram_features.py)."""
        return self._probabilities(normalise(text))

    def _probabilities(self, normalised: str) -> np.ndarray:
        classifier = self.classifier
        scores = self.features.linear_scores(normalised, classifier.coef_, classifier.intercept_)
        exp = np.exp(scores - scores.max())
        return exp / exp.sum()  # classes_ are 0, 1, 2: fit() refuses anything else

    def assess(self, text: str) -> Tuple[float, int]:
        """(the probability that it reports a warning sign, the likelier of its two levels)."""
        return self._assess(normalise(text))

    def _assess(self, normalised: str) -> Tuple[float, int]:
        return assessment(self._probabilities(normalised))

    def leaves_to_patterns(self, text: str) -> bool:
        return self._leaves_to_patterns(normalise(text))

    def _leaves_to_patterns(self, normalised: str) -> bool:
        """Body parts only, context only, or too short to judge: the patterns decide alone."""
        words = normalised.split()
        content = [word for word in words if word not in LIST_WORDS and word not in FILLER_WORDS]
        # (a list of body parts is context only too)
        context_only = all(word in self.body or word in LIST_WORDS or word in CONTEXT_WORDS
                           or word.isdigit() for word in words)
        return len(content) < MIN_CONTENT_WORDS or context_only

    def level(self, text: str, thresholds: Thresholds) -> int:
        """0 (quiet), 1 (see a doctor today) or 2 (emergency). The text is normalised once."""
        normalised = normalise(text)
        if self._leaves_to_patterns(normalised):
            return 0
        return decided_level(self._assess(normalised), thresholds)

    def category(self, text: str, thresholds: Thresholds) -> Optional[str]:
        return CATEGORY_OF_LEVEL.get(self.level(text, thresholds))
