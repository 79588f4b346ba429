"""A report of how the visitor feels after a session, then a question of their own.

"had my neck done yesterday, bit stiff and sore this morning. is it ok to drive to
work" asks about driving, but the intent model reads the whole message, and the
report's many soreness words win: it answered "some soreness afterwards is normal".
Patients write this way all the time (the issue: "many have already had a session
and write about what they feel now"). So when the whole message reads as a report
(follow_ups.yml ``reports``) and its last sentence is a question, that question is
read alone, and its answer is given when the bot would give it to the question
asked on its own: an FAQ answer, not "Did you mean" (the same thresholds,
assistant/nlu/uncertainty.py ``decide``), and not the report's own.

A question that points back at the report ("how long will that last?", "is that a
side effect?": follow_ups.yml ``short_follow_up.refers``) is about the report, so
the whole message's answer stands. The red-flag detector still reads the whole
message, after every model.

Measured with the round-25 model on the first messages of the blind sets, before
dev61-dev63 were tuned on: of the 78 held-out messages (sealed, dev55-dev58,
dev61-dev63) that read as a report and end in a question, 12 wrong answers became
right and none of the right ones changed; of the 54 in the tuned-on sets (all right,
as the model has learnt them), none changed. Without the points-back check 4 of
those were lost ("how long til it goes?" got the session's length).

Round 38 (follow_ups.yml ``report_stories``): patients who write after a session
often tell of good results, and the model read "had 2 sessions on my IT band and
my knee pain is basically gone. will it come back tho?" as asking about the knee
(three blind sets of such patients, dev106-dev108, scored 0.71 before the round).
Such a story counts as a report when it tells of a past session and asks nothing
before its last question, and the question after any report may also get a
listed intent (the opening hours, booking). With the round-37 model, over the
conversations of 87 readable blind sets: 2 more right in dev106-dev108 and none
lost elsewhere; without the "asks nothing before" check one was lost (a
sister-in-law's needling, then "does it help with sciatica? And could I claim
it?").

Round 46: a one-sentence message ("had my second session tuesday and my hamstring
still feels a bit bruised, is it ok if i go to the gym tomorrow") has its question
after the last comma, and an aftercare question after a mark ("got a small bruise,
should i ice it?") points back yet asks about ice (follow_ups.yml
``report_stories.aftercare``). With the round-45 model, over every blind set: the
98 readable ones 8,933 to 8,936 of 9,625 conversations (none lost), the 20
never-read ones 957 to 959 of 1,050, their single messages 651 to 654 of 660 and
confident wrong answers 7 to 5. With three words of report before the comma rather
than five, "and the soreness, how many days is normal" was read alone (dev8).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable, Dict, FrozenSet, Optional, Pattern, Set, Tuple

from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

from assistant.contracts import (
    QUESTION_AFTER_REPORT_KEY,
    RESPONSE_SELECTOR,
    RETRIEVAL_INTENT,
)
from assistant.nlu.uncertainty import (
    FALLBACK,
    MIN_PLAUSIBLE,
    Thresholds,
    answer_ranking,
    decide,
    raw_intent_ranking,
    unsure,
)

logger = logging.getLogger(__name__)

SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
QUESTION_START = re.compile(
    r"^\W*(can|could|will|would|is|are|am|do|does|did|how|what|whats|when|where|why|who|should|shall"
    r"|any|anything|so|and|ok|but)\b")

CLAUSE_QUESTION = re.compile(
    r",\s*(?:(?:and|but|so|also|just|ok|okay)\s+)?(?=(?:can|could|will|would|is|are|am|do|does|how|what|whats"
    r"|when|where|why|should|shall|any)\b)", re.IGNORECASE)

MIN_REPORT_WORDS = 5

Parse = Dict[str, Any]


@dataclass(frozen=True)
class ReportStories:
    """follow_ups.yml ``report_stories``: a report the model read as one of ``intents``
    ("had 2 sessions on my IT band and my knee is basically fine now. will it come
    back?" read as asking about the knee) is a report when ``told`` finds a past
    session in it; the question after any report may get one of ``answers`` (an
    intent: "... what time do you open on saturday?") as well as an FAQ answer."""
    intents: FrozenSet[str] = frozenset()
    told: Optional[Pattern[str]] = None
    answers: FrozenSet[str] = frozenset()
    # subjects a question after a report is answered with even when it points back: "got a
    # small bruise from the needles, should i ice it?" asks about ice, not about the bruise
    aftercare: FrozenSet[str] = frozenset()

    def tells_of_a_session(self, intent: str, text: str) -> bool:
        """Whether ``text``, read as ``intent``, is a story of a session. Not when it asks a
        question of its own: "my sister-in-law had dry needling ... does it help with
        sciatica? And would I be able to claim it?" asks about sciatica first."""
        return (intent in self.intents and self.told is not None and "?" not in text
                and bool(self.told.search(text.lower())))


def last_question(text: str) -> Optional[str]:
    """The message's last sentence when it is a question and something comes before it;
    in a message of one sentence, its last clause after a comma that starts as a
    question does ("calf still tender from the needles, how much is the next session")."""
    sentences = [s.strip() for s in SENTENCE_BREAK.split(text) if s.strip()]
    if len(sentences) < 2:
        return question_clause(text)
    last = sentences[-1]
    return last if "?" in last or QUESTION_START.match(last.lower()) else None


def question_clause(text: str) -> Optional[str]:
    """The text from the last comma followed by a question's first word (an "and", "but"
    or "so" between them dropped), when a report of at least ``MIN_REPORT_WORDS`` words
    comes before it ("and the soreness, how many days is normal" asks about the soreness)."""
    starts = list(CLAUSE_QUESTION.finditer(text))
    if not starts or len(text[:starts[-1].start()].split()) < MIN_REPORT_WORDS:
        return None
    return text[starts[-1].end():].strip() or None


def question_reading(parse: Parse, reports: Tuple[str, ...], refers_back: Callable[[str], bool],
                     read: Callable[[str], Parse], thresholds: Thresholds,
                     stories: ReportStories = ReportStories()) -> Optional[Tuple[str, Parse]]:
    """The question and its own parse, when the whole message (``parse``) is answered
    as one of ``reports``, or is a report of a session that ``stories`` knows the model
    reads otherwise, and the question alone gets another FAQ answer (or one of the
    intents ``stories`` allows); else None. ``read`` parses a text with the same model."""
    report_labels = {f"{RETRIEVAL_INTENT}/{answer}" for answer in reports}
    text = str(parse.get("text") or "")
    decided = decide(parse, thresholds)
    question = last_question(text)
    # Unsure between the report and one other answer: the question alone must pick that one.
    other = torn(parse, report_labels, thresholds)[1] if decided == FALLBACK else None
    story = question is not None and stories.tells_of_a_session(decided, text[:text.rfind(question)])
    if decided not in report_labels and other is None and not story:
        return None
    # A question that points back is about the report ("how long will that last?"), but
    # not when the model read the report as something else: "will it come back tho?", nor
    # when read alone it asks about aftercare ("should i ice it?")
    if question is None:
        return None
    points_back = refers_back(question) and not story
    if points_back and not stories.aftercare:
        return None
    alone = read(question)
    answer = decide(alone, thresholds)
    if points_back and answer.split("/", 1)[-1] not in stories.aftercare:
        return None
    if answer in report_labels or answer == decided:
        return None
    if not answer.startswith(f"{RETRIEVAL_INTENT}/") and answer not in stories.answers:
        return None
    return (question, alone) if other is None or answer == other else None


def report_reading(parse: Parse, report_labels: Set[str], thresholds: Thresholds) -> Optional[str]:
    """The report the whole message reads as: the answer the bot gives it, or, when the
    bot is unsure between a report and one other answer, that report."""
    decided = decide(parse, thresholds)
    if decided in report_labels:
        return decided
    return torn(parse, report_labels, thresholds)[0] if decided == FALLBACK else None


def torn(parse: Parse, report_labels: Set[str],
         thresholds: Thresholds) -> Tuple[Optional[str], Optional[str]]:
    """(report, other) when the model is sure it is an FAQ question but unsure between
    two plausible answers, a report first and another close behind ("so sore and achy
    after the needles yesterday, like i did a huge leg day. can i have a hot bath?":
    soreness 0.53, the bath 0.47, once the model had learnt dev65-dev70); else (None,
    None). Not when it was unsure of the intent: a personal medical question keeps
    its "Did you mean"."""
    intents = raw_intent_ranking(parse)
    if not intents or intents[0].get("name") != RETRIEVAL_INTENT:
        return None, None
    if unsure(intents, thresholds.intent, thresholds.intent_ambiguity):
        return None, None
    ranking = answer_ranking(parse)[:2]
    if len(ranking) < 2 or str(ranking[0].get("intent_response_key")) not in report_labels:
        return None, None
    first, second = (float(a.get("confidence", 0.0)) for a in ranking)
    if second < MIN_PLAUSIBLE or first - second >= thresholds.answer_ambiguity:
        return None, None
    return str(ranking[0].get("intent_response_key")), str(ranking[1].get("intent_response_key"))


@cache
def _thresholds() -> Thresholds:
    return Thresholds.from_config()


def answer_question_after_report(message: Message, read: Callable[[str], Parse]) -> None:
    """Give ``message`` its question's reading (intent, ranking, answer) when
    ``question_reading`` finds one, and say so in the parse data. An error leaves the
    model's reading of the whole message standing."""
    from actions.follow_up import cached_follow_ups  # (it imports the NLU's neighbours)

    try:
        follow_ups = cached_follow_ups()
        whole = message.as_dict()
        found = question_reading(whole, follow_ups.reports, follow_ups.refers_back, read, _thresholds(),
                                 follow_ups.report_stories)
        if found is None:
            return
        question, alone = found
        for key in (INTENT, INTENT_RANKING_KEY, RESPONSE_SELECTOR):
            message.set(key, alone.get(key), add_to_output=True)
        reports = {f"{RETRIEVAL_INTENT}/{answer}" for answer in follow_ups.reports}
        said = {"question": question, "instead_of": report_reading(whole, reports, _thresholds())}
        message.set(QUESTION_AFTER_REPORT_KEY, said, add_to_output=True)
    except Exception:  # an improvement, never a reason to fail the message (or its red flag)
        logger.exception("reading the question after a report failed; the whole message's reading stands")
