"""When is the assistant too unsure to answer? One definition, used everywhere.

Two checks, both configured in ``config.yml``:

* the intent (Rasa's ``FallbackClassifier``): top confidence below
  ``threshold``, or the top two closer than ``ambiguity_threshold``;
* for FAQ questions, the chosen answer (our ``FaqAnswerGuard``): the
  answer ranking's top confidence below its ``threshold``, or its top two
  answers closer than its ``ambiguity_threshold``.

* intents whose action can't be undone (``strict_intents`` of the guard, e.g.
  ``forget_me``) need their own, higher confidence: a name like "Morgan
  Forgetme" typed into the call-back form must not delete the conversation.
  They must also name what they act on (``strict_intent_words``): once the model
  had learnt "all of it please" as an answer to "delete my data", "all of it?" and
  "everything" after any answer read as forget_me at 0.87 to 1.0.

Any of these makes the message ``nlu_fallback``, and the bot asks "Did you mean..."
instead of guessing. ``decide`` replays both checks on a stored parse result so
the thresholds can be tuned on the held-out sets without retraining
(``tests/test_uncertainty.py`` prints the trade-off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Pattern, Tuple

import yaml

from assistant.contracts import RETRIEVAL_INTENT, faq_selection
from assistant.paths import PROJECT_ROOT

FALLBACK = "nlu_fallback"
# Below this an intent or answer is noise: never offered as a "Did you mean"
# choice, and no FAQ answer is chosen (assistant/nlu/linear_classifier.py).
MIN_PLAUSIBLE = 0.05
CONFIG = PROJECT_ROOT / "config.yml"
GUARD = "assistant.nlu.answer_guard.FaqAnswerGuard"


@dataclass(frozen=True)
class Thresholds:
    intent: float
    intent_ambiguity: float
    answer: float
    answer_ambiguity: float
    strict: Tuple[Tuple[str, float], ...] = ()  # (intent, minimum confidence)
    strict_words: Tuple[Tuple[str, Pattern[str]], ...] = ()  # (intent, what it must name)

    @classmethod
    def from_config(cls, path: Path = CONFIG) -> Thresholds:
        pipeline = {c["name"]: c for c in yaml.safe_load(path.read_text())["pipeline"]}
        fallback, guard = pipeline["FallbackClassifier"], pipeline[GUARD]
        return cls(
            intent=float(fallback["threshold"]),
            intent_ambiguity=float(fallback["ambiguity_threshold"]),
            answer=float(guard["threshold"]),
            answer_ambiguity=float(guard["ambiguity_threshold"]),
            strict=tuple((name, float(value)) for name, value in (guard.get("strict_intents") or {}).items()),
            strict_words=tuple(compile_strict_words(guard.get("strict_intent_words"),
                                                    guard.get("strict_intents")).items()),
        )


def compile_strict_words(raw: Any, strict_intents: Any) -> Dict[str, Pattern[str]]:
    """config.yml ``strict_intent_words`` ({intent: [word or phrase, ...]}) as one
    whole-word pattern per intent; a malformed entry, or an intent that isn't one
    of ``strict_intents`` (a misspelt key would turn the check off), is an error
    that names it."""
    if not isinstance(raw, Mapping):
        if raw is None:
            return {}
        raise ValueError("config.yml: strict_intent_words must map an intent to a list of words")
    patterns = {}
    for intent, words in raw.items():
        if intent not in (strict_intents or {}):
            raise ValueError(f"config.yml: strict_intent_words.{intent} is not one of strict_intents")
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip()
                                                               for w in words):
            raise ValueError(f"config.yml: strict_intent_words.{intent} must be a list of words")
        alternatives = "|".join(re.escape(w.strip().lower()) for w in words)
        patterns[str(intent)] = re.compile(rf"\b({alternatives})\b")
    return patterns


def unsure(ranking: List[Dict[str, Any]], threshold: float, ambiguity: float) -> bool:
    """Rasa's FallbackClassifier test, for any ranking of {"confidence": ...} dicts."""
    if not ranking:
        return True
    first = float(ranking[0].get("confidence", 0.0))
    if first < threshold:
        return True
    return len(ranking) >= 2 and first - float(ranking[1].get("confidence", 0.0)) < ambiguity


def too_unsure_for(intent: Dict[str, Any], strict: Dict[str, float], text: str,
                   words: Optional[Mapping[str, Pattern[str]]] = None) -> bool:
    """An intent with an irreversible action, below its own threshold, or whose
    message doesn't name what the action acts on (``strict_words``)."""
    name = str(intent.get("name"))
    if name in strict and float(intent.get("confidence", 0.0)) < strict[name]:
        return True
    named = (words or {}).get(name)
    return named is not None and not named.search(text.lower().replace("\u2019", "'"))


def raw_intent_ranking(parse: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The model's intent ranking without the fallback entries our checks insert."""
    return [i for i in parse.get("intent_ranking") or [] if i.get("name") != FALLBACK]


def answer_ranking(parse: Dict[str, Any]) -> List[Dict[str, Any]]:
    return list(faq_selection(parse).get("ranking") or [])


def decide(parse: Dict[str, Any], thresholds: Thresholds) -> str:
    """The label the bot would act on: an intent, `faq/<topic>`, or nlu_fallback."""
    intents = raw_intent_ranking(parse)
    if unsure(intents, thresholds.intent, thresholds.intent_ambiguity):
        return FALLBACK
    if too_unsure_for(intents[0], dict(thresholds.strict), str(parse.get("text") or ""),
                      dict(thresholds.strict_words)):
        return FALLBACK
    top = intents[0]["name"]
    if top != RETRIEVAL_INTENT:
        return str(top)
    answers = answer_ranking(parse)
    if unsure(answers, thresholds.answer, thresholds.answer_ambiguity):
        return FALLBACK
    return str(answers[0]["intent_response_key"])


def top_answers(parse: Dict[str, Any], limit: int = 3, floor: float = MIN_PLAUSIBLE) -> List[str]:
    """The most likely FAQ topics ("faq/<topic>"), best first, for "Did you mean...?"."""
    keys = [a["intent_response_key"] for a in answer_ranking(parse)
            if float(a.get("confidence", 0.0)) >= floor]
    return keys[:limit]

