""""All of it" or "how long will that take?" in answer to "Do you want me to
delete this conversation...?".

"delete my data" is asked first (utter_confirm_forget_me, data/rules/safety.yml),
and blind-set writers then answer the question as a person would: "all of it",
"everything please", "all of it pls, I don't want to be contacted again", or they
ask "how long will that take" and "confirm when it's done". Read alone, such a
reply names nothing to delete, so config.yml's ``strict_intent_words`` rightly
refuses it as a deletion request (after any other answer "all of it?" is no such
request), and the visitor got "Did you mean...?": 11 conversations of the 82
readable blind sets, with the round-36 model.

This component, after the models and before the red flags, reads the
conversation (Rasa hands an NLU component the tracker when ``process`` takes one):
right after that question, a reply that starts by asking for all of it, or asks
how long it takes, is the deletion request again, so the bot asks its yes-or-no
question again (which says it happens straight away). It never deletes: only a
yes to the question does, as before. The evaluation (assistant/quality/sealed.py)
applies ``answers_the_question`` after its own forget_me turns.
"""

from __future__ import annotations

import re
from typing import List, Optional

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.contracts import INTENT_FORGET_ME, UTTER_CONFIRM_FORGET_ME
from assistant.nlu.component_settings import WithoutSettings

# "yes, all of it", "everything please", "the lot", "all of it, phone number too":
# the start of the message asks for all of it. A bare "all" only as the whole
# reply ("all good" is not one), and not "everything's fine".
EVERYTHING = re.compile(
    r"^\W*((yes|yeah|yep|yup|ya|yea|ok|okay|sure|please|pls|plz|delete|remove)\W+)*"
    r"(all of (it|that|them|this|my \w+)|all(?=\W*$)|everything(?!\W*(is|s)\b)|every thing"
    r"|the (whole )?lot|the whole thing)(?!\w)")
# "how long will that take", "and confirm when its done": the question says when.
WHEN_DONE = re.compile(
    r"\bhow long (will|does|would|is|do) (that|it|this|the deletion|deleting|you)( \w+)? (take|need)\b"
    r"|\bhow (soon|quickly|fast) (will|is|does|would|can)\b"
    r"|\bwhen will (it|that|this|everything|my \w+) be (done|deleted|gone|removed|erased)\b"
    r"|\b(confirm|tell me|let me know|message me|email me) (when|once) "
    r"(its|it s|it\W?s|it is|thats|that\W?s|that is|everything is) (done|gone|deleted)\b")


def answers_the_question(text: str) -> bool:
    lowered = text.lower()
    return bool(EVERYTHING.search(lowered) or WHEN_DONE.search(lowered))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class DeletionReplyReader(WithoutSettings):
    def process(self, messages: List[Message],
                tracker: Optional[DialogueStateTracker] = None) -> List[Message]:
        replies = [m for m in messages if answers_the_question(m.get(TEXT) or "")]
        if tracker is None or not replies:
            return messages
        last = tracker.get_last_event_for(ActionExecuted, action_names_to_exclude=[ACTION_LISTEN_NAME])
        if last is None or last.action_name != UTTER_CONFIRM_FORGET_ME:
            return messages
        for message in replies:
            asked = {"name": INTENT_FORGET_ME, "confidence": 1.0}
            ranking = [asked, *(i for i in message.get(INTENT_RANKING_KEY) or []
                                if i.get("name") != INTENT_FORGET_ME)]
            message.set(INTENT, asked, add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
