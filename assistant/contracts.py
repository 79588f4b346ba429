"""Names both sides of a process boundary use: the Rasa server (domain, rules,
NLU components) and the action server. Import them instead of repeating the
string, so a rename can't silently break the other side.
"""

from __future__ import annotations

# Follow-up questions ("is that normal?"): the intent the model predicts, the
# action that resolves them, and the slot that remembers what it resolved to.
INTENT_FOLLOW_UP = "follow_up"
ACTION_FOLLOW_UP = "action_follow_up"
SLOT_LAST_TOPIC = "last_topic"

# Thumbs up/down under an answer: the website channel records it in the
# conversation as this slot, "up:<utter action>" or "down:<utter action>"
# (assistant/website.py), and the report counts them (assistant/insights/).
SLOT_ANSWER_FEEDBACK = "answer_feedback"
FEEDBACK_RATINGS = ("up", "down")
