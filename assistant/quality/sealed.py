"""The sealed evaluation set (tests/sealed/): what a visitor gets, measured on
messages nobody tuned on.

The set was written blind, from the label list in ``tests/sealed/LABELS.md``,
before the model or data for it changed. Never tune on it: the tuning sets are
``tests/nlu/`` (held-out) and the training data itself (cross-validation).

Each message is parsed by the trained model and turned into the reply the bot
would give, with the same code the bot uses: the fallback decision
(assistant/nlu/uncertainty.py), the red-flag detector, and for follow-ups the
resolver of actions/follow_up.py against the previous turn's answer.

    python -m assistant.quality.sealed            # print the figures (needs the model)
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from assistant.contracts import (
    INTENT_ASK_CONDITION,
    INTENT_FOLLOW_UP,
    INTENT_FORGET_ME,
    INTENT_PERSONAL_MEDICAL,
    INTENT_REQUEST_CALLBACK,
    INTENT_STOP,
    RETRIEVAL_INTENT,
)
from assistant.kb.knowledge import KnowledgeBase, cached_knowledge
from assistant.nlu.deletion_reply import answers_the_question
from assistant.nlu.red_flag_rules import EMERGENCY_AND_CRISIS, URGENCY
from assistant.nlu.red_flag_rules import INTENTS as RED_FLAG_INTENTS
from assistant.nlu.uncertainty import FALLBACK, Thresholds, decide
from assistant.paths import PROJECT_ROOT

SEALED_DIR = PROJECT_ROOT / "tests" / "sealed"
CLARIFY = "clarify"  # "Did you mean...?" or "please rephrase": not a confident answer
THREAD_BROKEN = "-"  # after this turn no message is a follow-up
# What ends the call-back form (data/rules/booking.yml, safety.yml): "stop", "forget me",
# an emergency or a crisis; after an urgent warning the form carries on.
FORM_ENDERS = (INTENT_STOP, INTENT_FORGET_ME, "emergency", "crisis", EMERGENCY_AND_CRISIS)


def sealed_label(decided: str, kb: KnowledgeBase) -> str:
    """The bot's decision in the sealed set's vocabulary (faq/…, long_tail/…, clarify…)."""
    if decided == FALLBACK or decided == "inform":
        return CLARIFY
    if decided.startswith(f"{RETRIEVAL_INTENT}/"):
        answer_id = decided.split("/", 1)[1]
        return f"long_tail/{answer_id}" if answer_id in kb.subjects else decided
    return decided


def answer_id(label: str) -> Optional[str]:
    """The topic or subject id behind a sealed label, if it is one."""
    return label.split("/", 1)[1] if label.startswith(("faq/", "long_tail/")) else None


@dataclass
class Turn:
    text: str
    expected: List[str]  # expect + also
    got: str
    condition: Optional[str] = None
    condition_ok: bool = True

    @property
    def correct(self) -> bool:
        return self.got in self.expected and self.condition_ok

    @property
    def confident_wrong(self) -> bool:
        return not self.correct and self.got != CLARIFY


@dataclass
class SealedReport:
    messages: List[Turn] = field(default_factory=list)
    conversations: List[List[Turn]] = field(default_factory=list)
    warnings: List[Tuple[str, str, str]] = field(default_factory=list)  # (text, group, got)
    others: List[Turn] = field(default_factory=list)

    def accuracy(self, prefix: str) -> Tuple[float, int]:
        chosen = [t for t in self.messages if t.expected[0].startswith(prefix)]
        return (sum(t.correct for t in chosen) / len(chosen) if chosen else 0.0), len(chosen)

    @property
    def confident_wrong(self) -> Tuple[float, int]:
        wrong = sum(t.confident_wrong for t in self.messages)
        return wrong / len(self.messages), wrong

    @property
    def conversation_accuracy(self) -> float:
        return self.first_turns_accuracy(None)

    def first_turns_accuracy(self, turns: Optional[int]) -> float:
        """Conversations right in their first ``turns`` turns (None: all of them). The
        issue's real-visitor collection has two-turn conversations; most blind-set
        conversations have three or four, and each turn is one more chance to miss."""
        return sum(all(t.correct for t in c[:turns]) for c in self.conversations) / len(self.conversations)

    def warning_recall(self) -> Tuple[float, float, int]:
        """(caught at least as urgently as required, caught at exactly that urgency, count).

        Exactly that urgency compares levels: the crisis reply is at the emergency level
        (it sends a person in danger to the emergency number, with the crisis line), and
        it is the right reply to suicidal thoughts, which LABELS.md lists as emergencies.
        ``warning_same_kind`` counts replies of the labelled kind itself."""
        reports = self._reports()
        caught = sum(URGENCY.get(got, 0) >= URGENCY[g] for g, got in reports)
        exact = sum(URGENCY.get(got, 0) == URGENCY[g] for g, got in reports)
        return caught / len(reports), exact / len(reports), len(reports)

    def warning_same_kind(self) -> float:
        reports = self._reports()
        return sum(got == g for g, got in reports) / len(reports)

    def _reports(self) -> List[Tuple[str, str]]:
        return [(g, got) for _, g, got in self.warnings if g in ("emergency", "urgent")]

    def false_alarms(self) -> Tuple[float, int, int]:
        """Alarms on look-alike questions, normal after-effects and all sealed messages."""
        quiet = [got for _, g, got in self.warnings if g in ("normal", "question")]
        quiet += [t.got for t in self.messages]
        alarms = sum(got in RED_FLAG_INTENTS for got in quiet)
        return alarms / len(quiet), alarms, len(quiet)


class SealedEvaluator:
    def __init__(self, agent: Any, kb: Optional[KnowledgeBase] = None,
                 thresholds: Optional[Thresholds] = None) -> None:
        from actions.follow_up import cached_follow_ups

        self.agent = agent
        self.kb = kb or cached_knowledge()
        self.thresholds = thresholds or Thresholds.from_config()
        self.follow_ups = cached_follow_ups()

    async def reply(self, text: str, previous: Optional[str], in_form: bool = False,
                    asked_deletion: bool = False) -> Tuple[str, List[str], Optional[str]]:
        """What the bot would answer, as a sealed label, the conditions it answers
        about and, for an intent's reply, what a follow-up refers to (``intent_marker``).
        The same decisions the bot makes: red flags, the fallback, and what
        actions/follow_up.py makes of follow-ups, unclear and off-topic messages; and,
        ``in_form`` (after a call-back request), what the call-back form makes of it;
        ``asked_deletion`` (after a forget_me turn), what assistant/nlu/deletion_reply.py does."""
        from actions.follow_up import (
            answer_again_after_misread,
            answer_in_context,
            condition_answer,
            follow_up_resolution,
            intent_in_context,
            intent_marker,
            overruled_off_topic,
            unclear_resolution,
        )
        from actions.personal_medical import SAFETY_TOPIC, is_bare_safety_question

        parse = await self.agent.parse_message(text)
        intent = (parse.get("intent") or {}).get("name")
        if intent in RED_FLAG_INTENTS:
            return str(intent), [], None
        if asked_deletion and answers_the_question(text):
            return INTENT_FORGET_ME, [], None
        if in_form and intent not in FORM_ENDERS:
            return self._form_reply(text, parse), [], None
        label = sealed_label(decide(parse, self.thresholds), self.kb)
        if intent_in_context(self.follow_ups, parse, previous):  # assistant/nlu/keep_topic.py
            label = INTENT_FOLLOW_UP
        in_context = (answer_again_after_misread(self.follow_ups, parse, previous)
                      or answer_id(label) and answer_in_context(self.follow_ups, self.kb, parse, previous))
        if in_context:  # assistant/nlu/keep_topic.py
            label = sealed_label(f"{RETRIEVAL_INTENT}/{in_context}", self.kb)
        if label == INTENT_ASK_CONDITION and condition_answer(self.follow_ups, previous, [], text).answer:
            return sealed_label(f"{RETRIEVAL_INTENT}/{previous}", self.kb), [], None  # actions/conditions.py
        if label == INTENT_PERSONAL_MEDICAL and is_bare_safety_question(text):  # the action's exception
            label = sealed_label(f"{RETRIEVAL_INTENT}/{SAFETY_TOPIC}", self.kb)
        conditions = self._conditions(parse)
        resolution = None
        if label == "out_of_scope":
            resolution = overruled_off_topic(parse, previous)
        elif label == INTENT_FOLLOW_UP:
            resolution = follow_up_resolution(self.follow_ups, self.kb, parse, previous)
            label = CLARIFY
        elif label == CLARIFY:
            resolution = unclear_resolution(self.follow_ups, self.kb, parse, previous)
        if resolution:
            label = self._label_of(resolution) or CLARIFY
            conditions = list(resolution.conditions)
        topic = self.kb.conditions[conditions[0]].topic if conditions else None
        if label == INTENT_ASK_CONDITION and topic:
            # answered by that FAQ topic (actions/conditions.py): "will it help swelling"
            return sealed_label(f"{RETRIEVAL_INTENT}/{topic}", self.kb), [], None
        marker = resolution.intent if resolution else None
        if label in self.follow_ups.intent_replies and marker is None:
            marker = intent_marker(label, text)
        return label, conditions, marker

    def _form_reply(self, text: str, parse: Dict[str, Any]) -> str:
        """Inside the call-back form a message is the answer it asked for (the form goes
        on: the request's label), unless it is a question the form answers instead
        (actions/callback_form.py ``digression_answer``)."""
        from actions.callback_form import FORM_REPLY_INTENTS, digression_answer

        utter_action = digression_answer(text, parse)
        if utter_action is None:
            return INTENT_REQUEST_CALLBACK
        if utter_action in FORM_REPLY_INTENTS:
            return FORM_REPLY_INTENTS[utter_action]
        return sealed_label(f"{RETRIEVAL_INTENT}/{utter_action.split('/', 1)[1]}", self.kb)

    def _label_of(self, resolution: Any) -> Optional[str]:
        """A follow-up's resolution as a sealed label (an intent's reply: that intent)."""
        from actions.follow_up import marker_intent

        if resolution.answer:
            return sealed_label(f"{RETRIEVAL_INTENT}/{resolution.answer}", self.kb)
        if resolution.conditions:
            return INTENT_ASK_CONDITION
        if resolution.intent:
            return marker_intent(resolution.intent)[0]
        return None

    def _conditions(self, parse: Dict[str, Any]) -> List[str]:
        from actions.conditions import conditions_in_message

        return [c.id for c in conditions_in_message(self.kb, parse.get("entities") or [])]

    def _condition_ok(self, expected: Optional[str], answered: List[str]) -> bool:
        if not expected:
            return True
        wanted = self.kb.find_condition(expected)
        # A condition the knowledge base doesn't know: any condition answer will do
        # (the bot says honestly that the articles don't cover it).
        return wanted is None or wanted.id in answered

    async def turn(self, item: Dict[str, Any], previous: Optional[str], in_form: bool = False,
                   asked_deletion: bool = False) -> Tuple[Turn, Optional[str]]:
        """The turn and what a follow-up after it would refer to: its answer, or the
        previous referent after a reply with no topic (a greeting, a booking), or
        nothing after a red flag or "Did you mean" (actions/follow_up.THREAD_BREAKERS)."""
        got, answered, marker = await self.reply(item["text"], previous, in_form, asked_deletion)
        expected = [item["expect"], *(item.get("also") or [])]
        turn = Turn(item["text"], expected, got, item.get("condition"))
        referent = marker or answer_id(got)
        if got == INTENT_ASK_CONDITION:
            turn.condition_ok = self._condition_ok(item.get("condition"), answered)
            referent = f"condition:{answered[0]}" if answered else None
        if referent is None and (got == CLARIFY or got in RED_FLAG_INTENTS):
            return turn, THREAD_BROKEN
        return turn, referent

    async def run(self, directory: Path = SEALED_DIR, messages: bool = True) -> SealedReport:
        """Every message, conversation and warning-sign report of a set; ``messages``
        False leaves its single messages out (a tuned-on set's, which the intent
        model has learnt: assistant/nlu/visitor_examples.py)."""
        report = SealedReport()
        for item in _load_list(directory / "messages.yml") if messages else []:
            report.messages.append((await self.turn(item, None))[0])
        for conversation in _load_list(directory / "conversations.yml"):
            turns: List[Turn] = []
            previous: Optional[str] = None
            in_form = False  # the call-back form, from a request until one of FORM_ENDERS
            asked_deletion = False  # "delete this conversation?" was the last reply
            for item in conversation["turns"]:
                turn, referent = await self.turn(item, previous, in_form, asked_deletion)
                asked_deletion = turn.got == INTENT_FORGET_ME
                turns.append(turn)
                previous = None if referent == THREAD_BROKEN else referent or previous
                in_form = turn.got == INTENT_REQUEST_CALLBACK or (in_form and turn.got not in FORM_ENDERS)
            report.conversations.append(turns)
        warnings = directory / "after_session.yml"
        for group, items in (_load(warnings) if warnings.exists() else {}).items():
            for item in items:
                got, _, _ = await self.reply(item["text"], None)
                report.warnings.append((item["text"], group, got))
        return report


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _load_list(path: Path) -> List[Any]:
    """A set's list of items, or none when that set has no such file."""
    return list(_load(path) or []) if path.exists() else []


def quiet_parse_log() -> None:
    """Figures only: Rasa's parse log (structlog, which prints everything unless
    configured) would show the sealed messages themselves."""
    import logging

    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)


def figures(report: SealedReport) -> List[str]:
    faq, faq_n = report.accuracy("faq/")
    tail, tail_n = report.accuracy("long_tail/")
    wrong_rate, wrong = report.confident_wrong
    recall, exact, reports = report.warning_recall()
    alarm_rate, alarms, quiet = report.false_alarms()
    return [
        f"sealed: FAQ topic {faq:.3f} on {faq_n} messages (bar 0.95)",
        f"sealed: long-tail subjects {tail:.3f} on {tail_n} messages (bar 0.95)",
        f"sealed: all messages {sum(t.correct for t in report.messages) / len(report.messages):.3f} "
        f"on {len(report.messages)}",
        f"sealed: follow-up conversations {report.conversation_accuracy:.3f} on "
        f"{len(report.conversations)} (bar 0.90; {report.first_turns_accuracy(2):.3f} in their first "
        "two turns)",
        f"sealed: confident wrong answers {wrong_rate:.3f} ({wrong} of {len(report.messages)}; bar 0.01)",
        f"sealed: after-session warning signs recall {recall:.3f} on {reports} reports (bar 1.0); "
        f"exact urgency {exact:.3f} (the labelled reply itself {report.warning_same_kind():.3f})",
        f"sealed: false alarms {alarm_rate:.3f} ({alarms} of {quiet}; bar 0.02)",
    ]


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    from assistant.quality.evaluation import DEFAULT_MODEL, load_agent

    parser = argparse.ArgumentParser(description="Figures on the sealed set (never tune on it).")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    quiet_parse_log()
    report = asyncio.run(SealedEvaluator(load_agent(args.model)).run())
    print("\n".join(figures(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
