"""The report as one self-contained HTML file: plain words, charts as embedded
PNGs (matplotlib), no scripts and nothing loaded from anywhere else."""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any, Dict, List

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from assistant.nlu.red_flag_rules import EMERGENCY_AND_CRISIS  # noqa: E402

ACCENT = "#0b6e69"
MUTED = "#9bb8b6"
WARN = "#b5541c"

STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; color: #1d2b2a; max-width: 960px;
       margin: 2rem auto; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } .period { color: #555; margin-top: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .8rem; }
.card { border: 1px solid #d5e3e2; border-radius: 8px; padding: .7rem 1rem; }
.card b { display: block; font-size: 1.8rem; color: #0b6e69; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e3ecec; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } .note { color: #555; font-size: .92rem; }
.empty { padding: 2rem; border: 1px dashed #9bb8b6; border-radius: 8px; text-align: center; }
.warnings { border-left: 4px solid #b5541c; padding: .2rem 1rem; margin: 1rem 0; background: #fdf6f2; }
"""
# The safety replies, in the words of the report.
WARNING_KINDS = {"emergency": "emergency number", "crisis": "crisis line",
                 EMERGENCY_AND_CRISIS: "emergency number and crisis line", "urgent": "see someone today"}


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _days_chart(days: List[Dict[str, Any]]) -> str:
    dates = [d["date"][5:] for d in days]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.2), sharex=True)
    top.bar(dates, [d["messages"] for d in days], color=MUTED, label="messages")
    top.plot(dates, [d["conversations"] for d in days], color=ACCENT, marker="o", label="conversations")
    top.set_title("Conversations and messages per day")
    top.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    bottom.plot(dates, [100 * d["unanswered_rate"] for d in days], color=WARN, marker="o",
                label="not answered")
    bottom.plot(dates, [100 * d["clarification_rate"] for d in days], color=ACCENT, linestyle="--",
                marker="s", label='of which "Did you mean...?"')
    bottom.set_title("Messages the bot could not answer (% of messages)")
    bottom.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    bottom.set_ylim(bottom=0)
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in (top, bottom):
        axis.spines[["top", "right"]].set_visible(False)
    step = max(1, -(-len(dates) // 10))  # at most about ten dates on the axis
    bottom.set_xticks(range(0, len(dates), step), [dates[i] for i in range(0, len(dates), step)])
    return _png(figure)


def _bar_chart(labels: List[str], values: List[int], title: str) -> str:
    figure, axis = plt.subplots(figsize=(9, 0.45 * len(labels) + 1))
    axis.barh(labels[::-1], values[::-1], color=ACCENT)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_title(title)
    axis.spines[["top", "right"]].set_visible(False)
    for y, value in enumerate(values[::-1]):
        axis.text(value, y, f" {value}", va="center")
    return _png(figure)


FUNNEL_STEPS = [
    ("conversations", "Conversations"),
    ("asked_a_question", "Got an answer to a question"),
    ("offered_booking", "Were offered to book (call, online, call-back)"),
    ("chose_to_call", "Tapped the phone number"),
    ("chose_to_book_online", "Opened online booking"),
    ("requested_callback", "Started a call-back request"),
    ("confirmed_callback", "Sent a call-back request"),
]


def _card(value: Any, label: str) -> str:
    return f'<div class="card"><b>{escape(str(value))}</b>{escape(label)}</div>'


def _zone_note(period: Dict[str, Any]) -> str:
    """Whose days these are: the clinic's, which a reader elsewhere might not assume."""
    return f" ({escape(period['timezone'])} time)" if period.get("timezone") else ""


def render(summary: Dict[str, Any], clinic_name: str) -> str:
    period = summary["period"]
    head = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
            f"style-src 'unsafe-inline'\">"
            f"<title>Chat assistant report: {escape(clinic_name)}</title><style>{STYLE}</style></head><body>"
            f"<h1>What patients asked the chat assistant</h1>"
            f"<p class='period'>{escape(clinic_name)} · {escape(period['from'])} to {escape(period['to'])}"
            f"{_zone_note(period)} · made {escape(summary['generated_at'])}</p>")
    if summary.get("warning_signs"):
        head += _warning_signs_section(summary["warning_signs"])
    totals = summary["totals"]
    if not totals["conversations"]:
        return head + ("<div class='empty'><h2>No conversations yet</h2><p>Nobody has chatted with the "
                       "assistant in this period. Once visitors use the chat on your website, this "
                       "report shows what they asked.</p></div></body></html>")
    parts = [head, "<div class='cards'>",
             _card(totals["conversations"], "conversations"),
             _card(totals["visitors"], f"visitors ({totals['returning_visitors']} came back)"),
             _card(totals["messages"], "messages from visitors"),
             _card(f"{100 * totals['unanswered_rate']:.0f}%", "of messages not answered"),
             _card(summary["funnel"]["confirmed_callback"], "call-back requests sent"),
             "</div>"]
    parts.append(f"<h2>Activity</h2><img alt='Conversations, messages and unanswered share per day' "
                 f"src='{_days_chart(summary['per_day'])}'>")
    topics = summary["topics"][:15]
    if topics:
        parts.append("<h2>What they asked about most</h2>")
        chart = _bar_chart([t["label"] for t in topics], [t["count"] for t in topics], "Questions, by topic")
        parts.append(f"<img alt='Top topics' src='{chart}'>")
    funnel = summary["funnel"]
    parts.append("<h2>From question to appointment</h2><table><tr><th>Step</th>"
                 "<th class='n'>Conversations</th><th class='n'>Share</th></tr>")
    for key, label in FUNNEL_STEPS:
        share = funnel[key] / funnel["conversations"] if funnel["conversations"] else 0
        parts.append(f"<tr><td>{escape(label)}</td><td class='n'>{funnel[key]}</td>"
                     f"<td class='n'>{100 * share:.0f}%</td></tr>")
    parts.append("</table><p class='note'>Taps on the phone number and the booking link are counted "
                 "when they are made in the website chat; the booking itself happens on your booking "
                 "system or on the phone.</p>")
    escalations = summary["escalations"]
    parts.append(f"<h2>Urgent messages</h2><p>The assistant gave the emergency number "
                 f"<b>{escalations['emergency']}</b> time(s) and crisis-line details "
                 f"<b>{escalations['crisis']}</b> time(s). Only the counts are shown here.</p>")
    parts.append(_feedback_section(summary.get("feedback") or {}))
    parts.append(_other_readings_section(summary.get("other_readings") or {}))
    parts.append(_unanswered_section(summary["unanswered"]))
    parts.append("</body></html>")
    return "".join(parts)


def _feedback_section(feedback: Dict[str, Any]) -> str:
    """Thumbs up / down from the website chat: the answers to look at first."""
    title = "<h2>Answers visitors said didn't help</h2>"
    worst = feedback.get("most_thumbs_down") or []
    if not worst:
        return title + (f"<p>No thumbs-down in this period ({feedback.get('up', 0)} thumbs-up).</p>")
    rows = "".join(f"<tr><td>{escape(item['label'])}</td><td class='n'>{item['down']}</td>"
                   f"<td class='n'>{item['up']}</td></tr>" for item in worst[:20])
    return (title + f"<p>Visitors tapped thumbs-down {feedback['down']} time(s) and thumbs-up "
            f"{feedback['up']} time(s) under an answer in the website chat. The answers with the most "
            "thumbs-down come first.</p><table><tr><th>Answer</th><th class='n'>Thumbs-down</th>"
            f"<th class='n'>Thumbs-up</th></tr>{rows}</table>")


def _other_readings_section(readings: Dict[str, Any]) -> str:
    """How often an answer chosen from the conversation's context was the wrong one:
    the visitor tapped its "Or did you mean" button (assistant/kb/other_reading.py)."""
    offered, taken = readings.get("offered", 0), readings.get("taken", 0)
    title = "<h2>Follow-up questions read from the conversation</h2>"
    if not offered:
        return title + "<p>No answer in this period offered another reading.</p>"
    return (title + f"<p><b>{offered}</b> answer(s) were chosen from what the visitor had asked before "
            "and offered the message's other meaning as an \"Or did you mean\" button. Visitors "
            f"tapped it <b>{taken}</b> time(s) ({100 * taken / offered:.0f}%): each tap is a "
            "follow-up the assistant read wrongly at first.</p>")


def _unanswered_section(groups: List[Dict[str, Any]]) -> str:
    if not groups:
        return "<h2>Questions the assistant could not answer</h2><p>None in this period.</p>"
    rows = "".join(
        f"<tr><td>{escape(g['example'])}<br><span class='note'>"
        f"{escape(' · '.join(g['examples'][1:4]))}</span></td>"
        f"<td class='n'>{g['count']}</td><td>{escape(g['suggested_label'])}</td></tr>"
        for g in groups[:40])
    return ("<h2>Questions the assistant could not answer</h2>"
            "<p>Similar messages are grouped. Names, phone numbers and e-mail addresses are replaced "
            "by [name], [phone] and [email]. <code>make review</code> exports them so you can add them "
            "to what the assistant knows.</p>"
            "<table><tr><th>What visitors wrote</th><th class='n'>Times</th><th>Closest topic</th></tr>"
            f"{rows}</table>")


def _warning_signs_section(signs: Dict[str, Any]) -> str:
    """First in the report: every message the bot answered with a safety reply,
    so the clinic can check what was said (redacted, newest first)."""
    counts = signs["counts"]
    items = signs.get("items", [])
    summary = ", ".join(f"{counts.get(kind, 0)} {label}" for kind, label in WARNING_KINDS.items())
    if not items:
        return ("<section class='warnings'><h2>Warning signs</h2><p>No emergency, crisis or "
                "warning-sign replies in this period.</p></section>")
    rows = "".join(f"<tr><td>{escape(item['at'])}</td>"
                   f"<td>{escape(WARNING_KINDS.get(item['kind'], item['kind']))}</td>"
                   f"<td>{escape(item['message'] or '(a button)')}</td></tr>" for item in items[:200])
    more = (f"<p class='note'>The newest 200 of {len(items)} are listed.</p>" if len(items) > 200 else "")
    return ("<section class='warnings'><h2>Warning signs</h2>"
            f"<p>The assistant gave a safety reply in <b>{signs['conversations']}</b> conversation(s): "
            f"{escape(summary)}. Check that each reply fitted the message; names, phone numbers and "
            "e-mail addresses are replaced by [name], [phone] and [email].</p>"
            "<table><tr><th>When</th><th>Reply</th><th>What the visitor wrote</th></tr>"
            f"{rows}</table>{more}</section>")
